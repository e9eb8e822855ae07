"""Atomic, verifiable checkpoints for exact resume.

Layout of one checkpoint (`RUN_DIR/checkpoints/step_00000040/`):

    model.safetensors   policy weights (tied weights stored once)
    config.json, ...    whatever `side_files` writes: the RL loop adds the model's config,
                        generation config and tokenizer, so the directory is also a Hugging Face
                        model directory (`AutoModelForCausalLM.from_pretrained(step_dir)`)
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

Faults a save refuses or survives:
- non-finite weights are never written (`NonFiniteWeightsError`); the manifest records
  `"finite": true`, and pruning always keeps the newest checkpoint whose weights are finite
  (checkpoints of older versions, without the flag, are checked by reading their weights);
- a disk too full for the checkpoint: before writing, the free space is compared with the size of
  the newest checkpoint (an estimate from the tensors for the first one), and ENOSPC during the
  write (an OSError, safetensors' "os error 28", or torch.save's "unexpected pos") removes the
  partial directory; both raise `DiskFullError`, and the previous checkpoint stays as it was;
- debris of a crashed save (`.tmp-*`, `.old-*` directories) is removed by `remove_stale`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import re
import shutil
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_model, save_model

FORMAT = 1
MARKER = "COMPLETE"
_STEP_DIR = re.compile(r"^step_(\d+)$")
_OLD_DIR = re.compile(r"^\.old-(step_(\d+))-")
STATE_FILES = ("optimizer.pt", "scheduler.pt", "state.pt")  # every checkpoint has these ...
# ... and one weights file: the whole model, or (a LoRA run) the adapter alone, in peft's format
WEIGHT_FILES = ("model.safetensors", "adapter_model.safetensors")


class NonFiniteWeightsError(ValueError):
    """The model holds NaN or inf: such weights are never checkpointed."""


class DiskFullError(RuntimeError):
    """Not enough free space for a checkpoint; nothing partial is left behind.

    Attributes: `directory` (where the checkpoint was going), `needed` and `free` (bytes).
    """

    def __init__(self, directory: Path, needed: int, free: int, step: int) -> None:
        self.directory, self.needed, self.free, self.step = directory, needed, free, step
        super().__init__(
            f"no space left in {directory} for checkpoint step {step}: it needs about "
            f"{needed:,} bytes and {free:,} are free"
        )


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


def _write_manifest(tmp: Path, step: int, *, finite: bool | None = None) -> None:
    # every file written, the core ones and any side files, is listed and checksummed
    names = sorted(p.name for p in tmp.iterdir() if p.is_file() and p.name != MARKER)
    files = {name: {"sha256": _sha256(tmp / name), "bytes": (tmp / name).stat().st_size}
             for name in names}  # fmt: skip
    manifest: dict[str, Any] = {"format": FORMAT, "step": step, "files": files}
    if finite is not None:
        manifest["finite"] = finite
    marker = tmp / MARKER
    with marker.open("w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=1)
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
    side_files: Callable[[Path], None] | None = None,
    write_weights: Callable[[Path], None] | None = None,
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
        side_files: writes more files into the (temporary) checkpoint directory it is given,
            before the manifest: they are checksummed and published atomically with the rest.
        write_weights: writes the weights into the directory it is given instead of the default
            `model.safetensors` of `model` (a LoRA run writes `adapter_model.safetensors`).
    """
    if not tensors_finite(model.state_dict().values()):
        raise NonFiniteWeightsError(f"refusing to checkpoint step {step}: the weights hold NaN/inf")
    root = checkpoint_dir(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    state = {
        "step": step,
        "rng": rng_state(),
        "sampler_state": sampler_state,
        "engine_state": engine_state,
        "extra": extra or {},
    }
    previous = list_checkpoints(run_dir)
    if previous:  # the newest checkpoint's size: this one is as large
        needed = checkpoint_bytes(previous[-1])
    else:  # the first one: the bytes of its tensors (serialisation adds little)
        needed = _tensor_bytes([model.state_dict(), optimizer_state(optimizer), state])
    free = shutil.disk_usage(root).free
    if free < needed:
        raise DiskFullError(root, needed, free, step)
    tmp = root / f".tmp-step_{step:08d}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        if write_weights is None:
            save_model(model, str(tmp / "model.safetensors"))
        else:
            write_weights(tmp)
        for name in WEIGHT_FILES:
            if (tmp / name).is_file():
                with (tmp / name).open("rb+") as fh:
                    os.fsync(fh.fileno())
        _torch_save(optimizer_state(optimizer), tmp / "optimizer.pt")
        _torch_save(scheduler.state_dict() if scheduler is not None else {}, tmp / "scheduler.pt")
        _torch_save(state, tmp / "state.pt")
        if side_files is not None:
            side_files(tmp)
        _write_manifest(tmp, step, finite=True)
    except BaseException as exc:
        free = shutil.disk_usage(root).free  # measured before the partial files go
        shutil.rmtree(tmp, ignore_errors=True)
        if is_disk_full(exc):
            raise DiskFullError(root, needed, free, step) from exc
        raise
    final = root / f"step_{step:08d}"
    _publish(tmp, final)
    if keep_last is not None:
        prune_checkpoints(run_dir, keep_last)
    return final


def optimizer_state(optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
    """`optimizer.state_dict()`, or {} without an optimizer."""
    return optimizer.state_dict() if optimizer is not None else {}


def is_disk_full(exc: BaseException) -> bool:
    """True for ENOSPC however it surfaces: an OSError with errno 28 (also in the cause chain),
    safetensors' "No space left on device (os error 28)", or torch.save's
    "[enforce fail at inline_container.cc] unexpected pos" (a short write of its zip writer)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(seen)
        if "No space left on device" in text or "os error 28" in text:
            return True
        if isinstance(seen, RuntimeError) and "unexpected pos" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def tensors_finite(tensors: Any) -> bool:
    """True if no floating tensor among `tensors` holds NaN or inf (one device sync)."""
    checks = [torch.isfinite(t).all() for t in tensors if t.is_floating_point() and t.numel()]
    return bool(torch.stack(checks).all()) if checks else True


def _tensor_bytes(obj: Any) -> int:
    """Bytes of every tensor in nested dicts/lists/tuples (shared storages counted once)."""
    seen: set[int] = set()
    total = 0
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            if item.device.type != "meta" and item.data_ptr() not in seen:
                seen.add(item.data_ptr())
                total += item.numel() * item.element_size()
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return total


def checkpoint_bytes(path: str | Path) -> int:
    """Total size of a checkpoint's files (as its manifest lists them) and of the manifest itself;
    0 without a readable manifest."""
    marker = Path(path) / MARKER
    try:
        manifest = json.loads(marker.read_text(encoding="utf-8"))
        listed = sum(int(meta["bytes"]) for meta in manifest["files"].values())
        return listed + marker.stat().st_size
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def weights_finite(path: str | Path) -> bool:
    """True if a checkpoint's weights hold no NaN/inf: its manifest says so (written by this
    version), or, for a manifest without the flag, every tensor of model.safetensors is read."""
    path = Path(path)
    try:
        manifest = json.loads((path / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if isinstance(manifest, dict) and isinstance(manifest.get("finite"), bool):
        return manifest["finite"]
    try:
        with safe_open(str(path / "model.safetensors"), framework="pt") as fh:
            return all(tensors_finite([fh.get_tensor(name)]) for name in fh.keys())  # noqa: SIM118
    except Exception:  # unreadable weights: not usable either
        return False


def remove_stale(run_dir: str | Path) -> list[Path]:
    """Remove the debris of crashed saves: `.tmp-*` directories (never renamed into place) and
    `.old-step_N-*` ones (a replaced same-step checkpoint); an `.old-` directory whose `step_N`
    is missing (killed between the two renames of `_publish`) is renamed back instead.

    Returns the removed paths.
    """
    root = checkpoint_dir(run_dir)
    if not root.is_dir():
        return []
    removed = []
    for path in sorted(root.iterdir()):
        if not path.is_dir() or not path.name.startswith("."):
            continue
        match = _OLD_DIR.match(path.name)
        intact = match is not None and _problem(path, int(match.group(2)), deep=True) is None
        if match and intact and not (root / match.group(1)).exists():  # put it back
            os.rename(path, root / match.group(1))
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _step_of(path: Path) -> int | None:
    match = _STEP_DIR.match(path.name)
    return int(match.group(1)) if match else None


def checkpoint_problem(path: str | Path, *, deep: bool = True) -> str | None:
    """Why `path` is not a finished checkpoint (one short phrase), or None when it is one.

    deep=True also recomputes every file's sha256 (catches truncation and bit rot).
    """
    path = Path(path)
    step = _step_of(path)
    return "not named step_N" if step is None else _problem(path, step, deep=deep)


def _problem(path: Path, step: int, *, deep: bool) -> str | None:
    try:
        text = (path / MARKER).read_text(encoding="utf-8")
    except FileNotFoundError:
        return f"no {MARKER} manifest (the save did not finish)"
    except OSError as exc:
        return f"unreadable {MARKER} manifest ({exc.strerror})"
    try:
        manifest = json.loads(text)
        if manifest["format"] != FORMAT:
            return f"manifest format {manifest['format']!r}, expected {FORMAT}"
        if manifest["step"] != step:
            return f"manifest is for step {manifest['step']}, not {step}"
        files = manifest["files"]
        if not set(STATE_FILES) <= set(files):
            lacks = sorted(set(STATE_FILES) - set(files))
            return f"manifest lists {sorted(files)}, which lacks {lacks}"
        if not set(WEIGHT_FILES) & set(files):
            return f"manifest lists no weights file ({' or '.join(WEIGHT_FILES)})"
        for name, meta in files.items():
            file = path / name
            if not file.exists():
                return f"{name} is missing"
            size = file.stat().st_size
            if size != meta["bytes"]:
                return f"{name} has {size:,} bytes, the manifest says {meta['bytes']:,}"
            if deep and _sha256(file) != meta["sha256"]:
                return f"{name} does not match its sha256 checksum"
    except OSError as exc:
        return f"unreadable ({exc})"
    except (ValueError, KeyError, TypeError):
        return f"malformed {MARKER} manifest"
    return None


def verify_checkpoint(path: str | Path, *, deep: bool = True) -> bool:
    """True if `path` is a finished checkpoint: named step_N, manifest valid, files intact.

    deep=True also recomputes every file's sha256 (catches truncation and bit rot).
    """
    return checkpoint_problem(path, deep=deep) is None


def checkpoint_candidates(run_dir: str | Path) -> list[Path]:
    """Every `step_N` directory of a run (valid or not), oldest first."""
    root = checkpoint_dir(run_dir)
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if _step_of(p) is not None), key=_step_of)


def list_checkpoints(run_dir: str | Path, *, deep: bool = False) -> list[Path]:
    """Valid checkpoints of a run, oldest first (temp and partial directories are skipped)."""
    return [p for p in checkpoint_candidates(run_dir) if verify_checkpoint(p, deep=deep)]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest checkpoint that verifies (checksums included), or None."""
    for path in reversed(checkpoint_candidates(run_dir)):
        if verify_checkpoint(path, deep=True):
            return path
        warnings.warn(f"skipping invalid checkpoint {path}", stacklevel=2)
    return None


def prune_checkpoints(run_dir: str | Path, keep_last: int) -> list[Path]:
    """Keep the newest `keep_last` valid checkpoints, and the newest valid one whose weights are
    finite (`weights_finite`) even when it is older; delete older, invalid and temp dirs.

    Returns the deleted paths.
    """
    if keep_last < 1:
        raise ValueError(f"keep_last must be >= 1, got {keep_last}")
    root = checkpoint_dir(run_dir)
    valid = list_checkpoints(run_dir)
    keep = set(valid[-keep_last:])
    newest_finite = next((p for p in reversed(valid) if weights_finite(p)), None)
    if newest_finite is not None:
        keep.add(newest_finite)
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
    read_weights: Callable[[Path], None] | None = None,
) -> dict[str, Any]:
    """Restore model, optimizer, scheduler and RNG states from a checkpoint directory.

    `read_weights(path)` restores the weights instead of loading `model.safetensors` into `model`
    (the counterpart of save_checkpoint's `write_weights`).

    Returns:
        {"step", "sampler_state", "engine_state", "extra", "path"} for the loop to restore the rest.

    Raises:
        ValueError: the directory does not verify (partial, corrupt or not a checkpoint).
    """
    path = Path(path)
    if not verify_checkpoint(path, deep=True):
        raise ValueError(f"{path}: not a complete checkpoint (missing marker or bad checksum)")
    if read_weights is not None:
        read_weights(path)
    else:
        device = next(iter(model.parameters())).device
        weights = str(path / "model.safetensors")
        missing, unexpected = load_model(model, weights, device=str(device))
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
