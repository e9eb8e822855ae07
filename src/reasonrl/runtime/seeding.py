"""Seed every global RNG a run uses (python `random`, numpy, torch) from one integer."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) RNGs; exact resume restores them from
    checkpoints instead (`runtime.checkpoint.rng_state`)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
