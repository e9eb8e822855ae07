"""Test-wide determinism: fixed torch threads and seeds, so results do not depend on the host."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch

torch.set_num_threads(int(os.environ.get("REASONRL_TEST_THREADS", "2")))

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture
def shared_data() -> Path:
    """The read-only benchmark files in ../shared/data (skip nothing: fail loudly if absent)."""
    assert SHARED_DATA.is_dir(), f"expected benchmark data at {SHARED_DATA}"
    return SHARED_DATA
