"""A rich progress bar for training steps: reward, pass rate, tokens/s and ETA."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class StepProgress:
    """`with StepProgress(total) as bar: bar.update(step, metrics)`; a no-op when disabled."""

    def __init__(self, total: int, *, initial: int = 0, enabled: bool = True, label: str = "RL"):
        self._enabled = enabled
        self._progress = Progress(
            TextColumn(f"[bold]{label}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            disable=not enabled,
        )
        self._task = self._progress.add_task(label, total=total, completed=initial, stats="")

    def __enter__(self) -> StepProgress:
        self._progress.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.__exit__(exc_type, exc, tb)

    def update(self, step: int, metrics: dict[str, float]) -> None:
        parts = [f"reward {metrics.get('reward/mean', float('nan')):.3f}"]
        if "reward/verified_correct" in metrics:
            parts.append(f"strict {metrics['reward/verified_correct']:.3f}")
        if "reward/outcome" in metrics:
            parts.append(f"pass {metrics['reward/outcome']:.3f}")
        parts.append(f"{metrics.get('perf/gen_tokens_per_s', 0.0):,.0f} tok/s")
        self._progress.update(self._task, completed=step, stats=" | ".join(parts))
