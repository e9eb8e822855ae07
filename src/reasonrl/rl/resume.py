"""Strict resume: which checkpoint a run continues from, checked before anything loads or is
written (docs/reliability.md).

`resume_point` needs the run directory, a checkpoint that verifies (checksums and finite weights)
and a config equal to the run's saved config.yaml, up to the keys in `RESUME_MAY_CHANGE` (or
`allow_config_change`); otherwise `ResumeError` names the directory and why each checkpoint was
rejected, and nothing on disk changes. A fresh run refuses a directory that already holds a run
(`RunDirExistsError`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from reasonrl.config import RLConfig
from reasonrl.runtime.checkpoint import (
    checkpoint_candidates,
    checkpoint_dir,
    checkpoint_problem,
    weights_finite,
)
from reasonrl.runtime.nested import flatten_dotted

# Keys a resumed run may change without --allow-config-change: how long it runs and what it
# logs or keeps, never what it computes.
RESUME_MAY_CHANGE = (
    "trainer.steps",
    "trainer.time_budget_s",
    "trainer.log_every",
    "trainer.save_every",
    "trainer.keep_last",
    "trainer.sample_every",
    "trainer.max_nonfinite_steps",
    "trainer.report_to",
)


class RunDirExistsError(RuntimeError):
    """A fresh run would overwrite an earlier run's checkpoints."""


class ResumeError(RuntimeError):
    """`resume=True` cannot continue this run (exit 2); nothing on disk was changed."""


def _same(a: Any, b: Any) -> bool:
    both_nan = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    return a == b or both_nan


def config_changes(cfg: RLConfig, saved_path: Path) -> list[tuple[str, Any, Any]]:
    """(dotted key, saved value, new value) for every key where `cfg` differs from a run's saved
    config.yaml; keys the saved file lacks (written by an older version) count at their default.
    A run without a saved config.yaml has nothing to compare: no changes.

    Raises ResumeError when the file exists but cannot be read.
    """
    if not saved_path.exists():
        return []
    try:
        raw = yaml.safe_load(saved_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ResumeError(f"--resume: cannot read {saved_path}: {exc}") from None
    try:  # fill in the defaults of keys added since the run started
        saved = type(cfg).model_validate(raw).model_dump(mode="json")
    except Exception:  # a schema that got stricter: compare the file as it is
        saved = raw if isinstance(raw, dict) else {}
    old, new = flatten_dotted(saved), flatten_dotted(cfg.model_dump(mode="json"))
    missing = object()
    changes = []
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key, missing), new.get(key, missing)
        if not _same(a, b):
            changes.append((key, None if a is missing else a, None if b is missing else b))
    return changes


def describe_changes(changes: list[tuple[str, Any, Any]]) -> str:
    return ", ".join(f"{key}: {a!r} -> {b!r}" for key, a, b in changes)


def _usable_checkpoint(run_dir: Path) -> tuple[Path | None, list[str]]:
    """The newest checkpoint that verifies and holds finite weights, and why each newer (or, when
    none is usable, every) checkpoint was rejected."""
    rejected = []
    for path in reversed(checkpoint_candidates(run_dir)):
        problem = checkpoint_problem(path, deep=True)
        if problem is None and not weights_finite(path):
            problem = "its weights hold NaN/inf"
        if problem is None:
            return path, rejected
        rejected.append(f"{path.name}: {problem}")
    root = checkpoint_dir(run_dir)
    if root.is_dir():
        unfinished = [p.name for p in root.iterdir() if p.name.startswith(".tmp-")]
        rejected += [f"{name}: an unfinished save" for name in sorted(unfinished)]
    return None, rejected


def resume_point(cfg: RLConfig, *, resume: bool, allow_config_change: bool = False) -> Path | None:
    """The checkpoint a run continues from (None: a fresh run), checked before anything is
    loaded or written; raises RunDirExistsError or ResumeError (nothing on disk changed)."""
    run_dir = cfg.run_dir
    started = (run_dir / "config.yaml").exists() or bool(checkpoint_candidates(run_dir))
    if not resume:
        if started:
            raise RunDirExistsError(
                f"{run_dir} already holds a run: pass --resume to continue it, "
                "or choose another trainer.run_name"
            )
        return None
    if not run_dir.is_dir():
        parent = run_dir.parent
        runs = sorted(p.name for p in parent.iterdir() if p.is_dir()) if parent.is_dir() else []
        known = f"; runs in {parent}: {', '.join(runs[:10])}" if runs else f"; {parent} has none"
        raise ResumeError(
            f"--resume: there is no run {run_dir} (trainer.run_name={run_dir.name!r}){known}; "
            "nothing was started"
        )
    ckpt, rejected = _usable_checkpoint(run_dir)
    if ckpt is None:
        why = "; ".join(rejected) if rejected else "no checkpoint was ever saved"
        raise ResumeError(
            f"--resume: {checkpoint_dir(run_dir)} holds no valid checkpoint ({why}); nothing was "
            f"changed: start a new run (another trainer.run_name) or delete {run_dir}"
        )
    saved = run_dir / "config.yaml"
    changes = config_changes(cfg, saved)
    blocked = [c for c in changes if c[0] not in RESUME_MAY_CHANGE]
    if blocked and not allow_config_change:
        raise ResumeError(
            f"--resume: the config differs from {saved} in {describe_changes(blocked)}; resume "
            "with the saved values, or pass --allow-config-change to continue with the new ones"
        )
    return ckpt
