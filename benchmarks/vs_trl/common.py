"""Pieces both benchmark sides share (stdlib only: imported from the TRL venv and the project venv).

Both sides time steps the same way (`StepClock`), save checkpoints at the same marks (`Marks`) and
write one JSON line per optimizer step to `steps.jsonl`, so run.py reads them identically.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SETTINGS = HERE / "settings.json"


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and key in out else value
    return out


def load_settings(path: str | Path = SETTINGS, *, smoke: bool = False) -> dict[str, Any]:
    """The shared settings; `smoke=True` overlays the `smoke` section (tiny sizes)."""
    settings = json.loads(Path(path).read_text())
    smoke_over = settings.pop("smoke", {})
    return _merge(settings, smoke_over) if smoke else settings


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


class StepClock:
    """Training wall clock: starts at the first step, pauses while checkpoints are written.

    `elapsed()` is what the time budget and the time marks are measured on, so both frameworks
    get the same training time regardless of how long their checkpoints take to save.
    """

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.paused = 0.0
        self.last = self.start

    def elapsed(self) -> float:
        return time.perf_counter() - self.start - self.paused

    def pause(self, seconds: float) -> None:
        self.paused += seconds


class Marks:
    """Which checkpoints to save: every `step_every` steps and at each time mark (training clock).

    A time mark is taken at the end of the first step that finishes past it, named `t{mark}`.
    """

    def __init__(self, step_every: int | None, time_marks: list[float]) -> None:
        self.step_every = step_every
        self.pending = sorted(float(t) for t in time_marks)

    def due(self, step: int, elapsed: float) -> list[str]:
        names = []
        if self.step_every and step % self.step_every == 0:
            names.append(f"s{step}")
        while self.pending and elapsed >= self.pending[0]:
            names.append(f"t{int(self.pending.pop(0))}")
        return names


class StepLog:
    """Appends one JSON object per step to `out_dir/steps.jsonl` and saves marked checkpoints.

    `save(name)` is a callable that writes an HF model directory; the seconds it takes are paused
    out of the training clock.
    """

    def __init__(self, out_dir: str | Path, marks: Marks, budget_s: float | None) -> None:
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.dir / "steps.jsonl", "w", encoding="utf-8")  # noqa: SIM115
        self.marks, self.budget_s = marks, budget_s
        self.clock = StepClock()
        self.checkpoints: list[dict[str, Any]] = []

    def restart_clock(self) -> None:
        self.clock = StepClock()

    def end_step(self, step: int, record: dict[str, Any], save) -> bool:
        """Log step `step` (1-based), save due checkpoints; True when the time budget is spent."""
        now = time.perf_counter()
        wall = now - self.clock.last
        self.clock.last = now
        elapsed = self.clock.elapsed()
        row = {"step": step, "wall_s": wall, "elapsed_s": elapsed, **record}
        self.fh.write(json.dumps(row) + "\n")
        self.fh.flush()
        out_of_time = self.budget_s is not None and elapsed >= self.budget_s
        names = self.marks.due(step, elapsed)
        if out_of_time:
            names.append("final")
        if names:
            t0 = time.perf_counter()
            path = self.dir / "ckpt" / names[0]
            save(path)
            for name in names:
                self.checkpoints.append({"name": name, "path": str(path), "step": step,
                                         "elapsed_s": elapsed})  # fmt: skip
            spent = time.perf_counter() - t0
            self.clock.pause(spent)
            self.clock.last += spent
        return out_of_time

    def close(self, extra: dict[str, Any]) -> None:
        self.fh.close()
        summary = {"checkpoints": self.checkpoints, **extra}
        (self.dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
