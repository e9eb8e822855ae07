"""Evaluation: sampling metrics (pass@k, maj@k, avg@k) and evaluation loops."""
