"""One progress display for every long loop (RL, SFT): a live bar in a terminal, plain lines
elsewhere (nohup, SLURM, CI logs), where a live bar would print nothing until the end."""

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
    """`with StepProgress(total, label="RL") as bar: bar.update(step, "loss 0.1"); bar.log(line)`.

    The bar is live only when `enabled` and stderr is a terminal (`live`); `log` prints a line
    above a live bar, or to stdout otherwise, so log lines reach redirected output as they happen.
    """

    def __init__(
        self, total: int, *, label: str = "RL", initial: int = 0, enabled: bool = True
    ) -> None:
        console = Console(stderr=True)
        self.live = enabled and console.is_terminal
        self._progress = Progress(
            TextColumn(f"[bold]{label}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            disable=not self.live,
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

    def update(self, step: int, stats: str = "") -> None:
        """Move the bar to `step` completed steps, showing `stats` beside it."""
        self._progress.update(self._task, completed=step, stats=stats)

    def log(self, line: str) -> None:
        """Print one line now (above the bar when it is live)."""
        if self.live:
            self._progress.console.print(line, highlight=False, soft_wrap=True)
        else:
            print(line, flush=True)
