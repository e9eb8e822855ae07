"""Training: the RL loop, SFT, checkpoints and metrics."""
