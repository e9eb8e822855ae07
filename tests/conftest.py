"""Test-wide determinism: fixed torch threads and seeds, so results do not depend on the host."""

from __future__ import annotations

import atexit
import os
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Caches the libraries write (Hugging Face, matplotlib) go to a private temp dir of this session,
# never to $HOME: the suite must pass with HOME unset, read-only or someone else's.
_CACHE = tempfile.mkdtemp(prefix="reasonrl-test-cache-")
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
for _var, _sub in (("HF_HOME", "hf"), ("MPLCONFIGDIR", "mpl"), ("XDG_CACHE_HOME", "xdg")):
    os.environ[_var] = os.path.join(_CACHE, _sub)

import torch  # noqa: E402  (after the environment above is set)

torch.set_num_threads(int(os.environ.get("REASONRL_TEST_THREADS", "2")))

REPO_ROOT = Path(__file__).resolve().parents[1]


def _origin_checkout(repo: Path) -> Path | None:
    """The local checkout this one was cloned from (`git clone /path/main x`), if any."""
    import subprocess

    try:
        url = subprocess.run(
            ["git", "-C", str(repo), "config", "--get", "remote.origin.url"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    local = url.removeprefix("file://")
    if not local or "://" in local or not Path(local).is_dir():
        return None  # no origin, or a remote one
    return Path(local).resolve()


def find_shared_data() -> Path | None:
    """The read-only benchmark files: $REASONRL_SHARED_DATA, else `shared/data` beside the checkout
    or beside the checkout it was cloned from (a fresh clone in a temp dir has no neighbours)."""
    if os.environ.get("REASONRL_SHARED_DATA"):
        return Path(os.environ["REASONRL_SHARED_DATA"])
    roots = [REPO_ROOT, _origin_checkout(REPO_ROOT)]
    for root in (r for r in roots if r is not None):
        candidate = root.parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return None


SHARED_DATA = find_shared_data()


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture
def shared_data() -> Path:
    """The read-only benchmark files (see `find_shared_data`); tests that need them skip, with the
    reason in the summary, only where no copy can be found."""
    if SHARED_DATA is None:
        pytest.skip("benchmark data not found: set REASONRL_SHARED_DATA or place shared/data "
                    "beside the checkout")  # fmt: skip
    assert SHARED_DATA.is_dir(), f"REASONRL_SHARED_DATA={SHARED_DATA} is not a directory"
    return SHARED_DATA


@pytest.fixture
def shared_data_or_none() -> Path | None:
    """Where the benchmark data is, or None (for tests that pass it on rather than read it)."""
    return SHARED_DATA
