"""Atomic, verifiable checkpoints for exact resume.

Layout of one checkpoint (`RUN_DIR/checkpoints/step_00000040/`):

    model.safetensors   policy weights (tied weights stored once)
    optimizer.pt        optimizer.state_dict()
    scheduler.pt        scheduler.state_dict()
    state.pt            step, RNG states (torch, CUDA, numpy, python), sampler/engine state, extra
    COMPLETE            JSON manifest: step, format, sha256 and size of every file above

Why it cannot load wrong after a crash: everything is written into a hidden temporary directory,
each file is fsync'ed, the manifest `COMPLETE` is written last, and only then is the directory
renamed to `step_N` (rename is atomic on POSIX). `latest_checkpoint` accepts a directory only if
its name is `step_N`, its manifest parses and every file matches its size and checksum, so a
process killed at any point leaves either the previous checkpoint or the new one, never half.

State dicts are saved with `torch.save` and read back with `weights_only=True`: `sampler_state`,
`engine_state` and `extra` must hold plain Python values and tensors (no numpy arrays, no objects).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_model, save_model

FORMAT = 1
MARKER = "COMPLETE"
_STEP_DIR = re.compile(r"^step_(\d+)$")
_FILES = ("model.safetensors", "optimizer.pt", "scheduler.pt", "state.pt")


def checkpoint_dir(run_dir: str | Path) -> Path:
    """`RUN_DIR/checkpoints`."""
    return Path(run_dir) / "checkpoints"


def rng_state() -> dict[str, Any]:
    """The global RNG states of python `random`, numpy and torch (CPU and, if present, CUDA)."""
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` captured; the next random numbers are then identical."""
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    npst = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": npst["bit_generator"],
            "state": {"key": npst["key"].numpy().astype(np.uint32), "pos": npst["pos"]},
            "has_gauss": npst["has_gauss"],
            "gauss": npst["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_path(path: Path) -> None:
    # Directories must be fsync'ed too, or a rename may not survive a power cut.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _torch_save(obj: Any, path: Path) -> None:
    with path.open("wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())


def _write_manifest(tmp: Path, step: int) -> None:
    files = {name: {"sha256": _sha256(tmp / name), "bytes": (tmp / name).stat().st_size}
             for name in _FILES}  # fmt: skip
    marker = tmp / MARKER
    with marker.open("w", encoding="utf-8") as fh:
        json.dump({"format": FORMAT, "step": step, "files": files}, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    _fsync_path(tmp)


def _publish(tmp: Path, final: Path) -> None:
    """Rename the finished temp dir into place; an existing same-step dir is replaced."""
    if final.exists():
        old = final.with_name(f".old-{final.name}-{uuid.uuid4().hex[:8]}")
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, final)
    _fsync_path(final.parent)


def save_checkpoint(
    run_dir: str | Path,
    step: int,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    scheduler: Any | None,
    sampler_state: dict[str, Any],
    engine_state: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    keep_last: int | None = None,
) -> Path:
    """Atomically write checkpoint `step` and return its directory `checkpoints/step_{step:08d}`.

    Args:
        run_dir: the run directory; checkpoints go to `run_dir/checkpoints/`.
        step: completed optimizer steps (the resumed run starts at step + 1).
        model, optimizer, scheduler: saved via their state dicts (optimizer/scheduler may be None).
        sampler_state: the data sampler's position (plain values / tensors).
        engine_state: the rollout engine's state (e.g. its sampling generator), or None.
        extra: anything else the loop needs back (plain values / tensors).
        keep_last: if given, delete all but the newest `keep_last` valid checkpoints afterwards.
    """
    root = checkpoint_dir(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-step_{step:08d}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    save_model(model, str(tmp / "model.safetensors"))
    with (tmp / "model.safetensors").open("rb+") as fh:
        os.fsync(fh.fileno())
    _torch_save(optimizer.state_dict() if optimizer is not None else {}, tmp / "optimizer.pt")
    _torch_save(scheduler.state_dict() if scheduler is not None else {}, tmp / "scheduler.pt")
    state = {
        "step": step,
        "rng": rng_state(),
        "sampler_state": sampler_state,
        "engine_state": engine_state,
        "extra": extra or {},
    }
    _torch_save(state, tmp / "state.pt")
    _write_manifest(tmp, step)
    final = root / f"step_{step:08d}"
    _publish(tmp, final)
    if keep_last is not None:
        prune_checkpoints(run_dir, keep_last)
    return final


def _step_of(path: Path) -> int | None:
    match = _STEP_DIR.match(path.name)
    return int(match.group(1)) if match else None


def verify_checkpoint(path: str | Path, *, deep: bool = True) -> bool:
    """True if `path` is a finished checkpoint: named step_N, manifest valid, files intact.

    deep=True also recomputes every file's sha256 (catches truncation and bit rot).
    """
    path = Path(path)
    step = _step_of(path)
    try:
        manifest = json.loads((path / MARKER).read_text(encoding="utf-8"))
        if step is None or manifest["format"] != FORMAT or manifest["step"] != step:
            return False
        for name, meta in manifest["files"].items():
            file = path / name
            if file.stat().st_size != meta["bytes"]:
                return False
            if deep and _sha256(file) != meta["sha256"]:
                return False
        return set(manifest["files"]) == set(_FILES)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def list_checkpoints(run_dir: str | Path, *, deep: bool = False) -> list[Path]:
    """Valid checkpoints of a run, oldest first (temp and partial directories are skipped)."""
    root = checkpoint_dir(run_dir)
    if not root.is_dir():
        return []
    candidates = sorted((p for p in root.iterdir() if _step_of(p) is not None), key=_step_of)
    return [p for p in candidates if verify_checkpoint(p, deep=deep)]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest checkpoint that verifies (checksums included), or None."""
    root = checkpoint_dir(run_dir)
    if not root.is_dir():
        return None
    steps = sorted((p for p in root.iterdir() if _step_of(p) is not None), key=_step_of)
    for path in reversed(steps):
        if verify_checkpoint(path, deep=True):
            return path
        warnings.warn(f"skipping invalid checkpoint {path}", stacklevel=2)
    return None


def prune_checkpoints(run_dir: str | Path, keep_last: int) -> list[Path]:
    """Keep the newest `keep_last` valid checkpoints; delete older, invalid and temp dirs.

    Returns the deleted paths.
    """
    if keep_last < 1:
        raise ValueError(f"keep_last must be >= 1, got {keep_last}")
    root = checkpoint_dir(run_dir)
    keep = set(list_checkpoints(run_dir)[-keep_last:])
    doomed = [
        p
        for p in root.iterdir()
        if p.is_dir() and p not in keep and (_step_of(p) is not None or p.name.startswith("."))
    ]
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    return doomed


def load_checkpoint(
    path: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    restore_rng: bool = True,
) -> dict[str, Any]:
    """Restore model, optimizer, scheduler and RNG states from a checkpoint directory.

    Returns:
        {"step", "sampler_state", "engine_state", "extra", "path"} for the loop to restore the rest.

    Raises:
        ValueError: the directory does not verify (partial, corrupt or not a checkpoint).
    """
    path = Path(path)
    if not verify_checkpoint(path, deep=True):
        raise ValueError(f"{path}: not a complete checkpoint (missing marker or bad checksum)")
    device = next(iter(model.parameters())).device
    missing, unexpected = load_model(model, str(path / "model.safetensors"), device=str(device))
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not match the model ({missing=}, {unexpected=})")
    if optimizer is not None:
        optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True))
    if scheduler is not None:
        scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
    state = torch.load(path / "state.pt", weights_only=True)
    if restore_rng:
        set_rng_state(state["rng"])
    return {
        "step": state["step"],
        "sampler_state": state["sampler_state"],
        "engine_state": state["engine_state"],
        "extra": state["extra"],
        "path": path,
    }
