"""One progress display for every long loop (RL, SFT): a live bar in a terminal, plain lines
elsewhere (nohup, SLURM, CI logs), where a live bar would print nothing until the end.

Where output goes:

    stderr a terminal (and enabled)   live bar on stderr; `log` lines above it
    stdout not a terminal             `log` lines, and with `every=N` one plain step line every
                                      N steps (`step 5/20 | <stats> | elapsed 0:00:03 | ETA
                                      0:00:09`), on stdout: no carriage returns, no truncation

so `cmd > log 2>&1` gets every line, and `cmd > log` in a terminal gets the bar on the screen and
the lines in the file.
"""

from __future__ import annotations

import sys
import time
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
from rich.table import Column


def clock(seconds: float) -> str:
    """`0:03:07` (h:mm:ss), or `?` for a negative or non-finite duration."""
    if not seconds >= 0 or seconds == float("inf"):
        return "?"
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _is_tty(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


class StepProgress:
    """`with StepProgress(total, label="RL") as bar: bar.update(step, "loss 0.1"); bar.log(line)`.

    The bar is live only when `enabled` and stderr is a terminal (`live`). `log` prints a line
    above a live bar, and to stdout whenever there is no live bar or stdout is not a terminal,
    so log lines reach redirected output as they happen. With `every=N`, `update` also prints a
    plain step line at step 1, every N steps and the last step whenever lines go to stdout
    (`plain`); `time_budget_s` caps the ETA.
    """

    def __init__(
        self,
        total: int,
        *,
        label: str = "RL",
        initial: int = 0,
        enabled: bool = True,
        every: int | None = None,
        time_budget_s: float | None = None,
    ) -> None:
        console = Console(stderr=True)
        self.live = enabled and console.is_terminal
        # the real stdout: a live bar redirects sys.stdout onto its own console (the terminal)
        self._stdout = sys.stdout
        self.plain = not self.live or not _is_tty(self._stdout)
        self.total, self.label, self.every = total, label, every
        self.time_budget_s = time_budget_s
        self._progress = Progress(
            TextColumn(f"[bold]{label}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            # the stats wrap onto a second row in a narrow terminal instead of being cut off
            TextColumn("{task.fields[stats]}", table_column=Column(overflow="fold")),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            disable=not self.live,
        )
        self._task = self._progress.add_task(label, total=total, completed=initial, stats="")
        self.start_at(initial)

    def start_at(self, step: int) -> None:
        """Count from `step` (a resumed run): the bar, elapsed time and the ETA's step rate."""
        self._initial, self._t0 = step, time.monotonic()
        self._progress.update(self._task, completed=step)

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
        """Move the bar to `step` completed steps, showing `stats` beside it (and print the
        plain step line when one is due)."""
        self._progress.update(self._task, completed=step, stats=stats)
        if self.every is None or not self.plain:
            return
        if step % self.every == 0 or step == self._initial + 1 or step == self.total:
            print(self.step_line(step, stats), file=self._stdout, flush=True)

    def step_line(self, step: int, stats: str = "") -> str:
        """`step 5/20 | <stats> | elapsed 0:00:03 | ETA 0:00:09`."""
        elapsed = time.monotonic() - self._t0
        done = step - self._initial
        eta = (self.total - step) * elapsed / done if done > 0 else float("nan")
        if self.time_budget_s is not None:
            eta = min(eta, max(0.0, self.time_budget_s - elapsed)) if eta == eta else eta
        parts = [f"step {step}/{self.total}", stats, f"elapsed {clock(elapsed)}",
                 f"ETA {clock(eta)}"]  # fmt: skip
        return " | ".join(p for p in parts if p)

    def log(self, line: str) -> None:
        """Print one line now (above the bar when it is live; on stdout when that is not the
        terminal the bar is on)."""
        if self.live:
            self._progress.console.print(line, highlight=False, soft_wrap=True)
        if self.plain:
            print(line, file=self._stdout, flush=True)
