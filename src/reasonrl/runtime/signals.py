"""Graceful stops: SIGINT (Ctrl-C) and SIGTERM (what SLURM and Kubernetes send) end a run after
the step in flight, which the loop then checkpoints; a second signal exits at once.

    with StopSignals() as stop:
        while ...:
            step()
            if stop.signum is not None:
                save(); raise ...

The first signal only sets `signum` (and prints one line saying so), so no step, reward call or
checkpoint write is torn by it. The second calls `os._exit(128 + signum)` straight away: nothing
half-written can be published, because a checkpoint only appears by an atomic rename
(`runtime.checkpoint`), so the last finished checkpoint stays valid. Handlers are installed only
in the main thread (Python delivers signals there) and the previous ones are restored on exit.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def exit_code(signum: int) -> int:
    """The shell's code for death by a signal: 128 + signum (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + signum


class StopSignals:
    """Context manager: the first SIGINT/SIGTERM sets `signum`, a second one exits at once."""

    def __init__(self, signals: tuple[int, ...] = STOP_SIGNALS) -> None:
        self.signals = signals
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.signum is not None:
            sys.stdout.flush()
            sys.stderr.write(
                f"reasonrl: second {name}: exiting now (the last checkpoint stays valid)\n"
            )
            sys.stderr.flush()
            os._exit(exit_code(signum))
        self.signum = signum
        sys.stderr.write(f"reasonrl: {name}: stopping after this step to save a checkpoint "
                         f"(send it again to exit at once)\n")  # fmt: skip
        sys.stderr.flush()

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
