"""Wall-clock timing of the phases of a step (reported as perf/time_<phase>)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager


class Timer:
    """Accumulates seconds per named phase; phases may nest (rollout contains generate)."""

    def __init__(self) -> None:
        self._seconds: dict[str, float] = defaultdict(float)
        self._start = time.perf_counter()

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._seconds[name] += time.perf_counter() - t0

    def add(self, name: str, seconds: float) -> None:
        """Count `seconds` measured elsewhere (another thread's timer) under `name`."""
        self._seconds[name] += seconds

    def seconds(self, name: str) -> float:
        return self._seconds.get(name, 0.0)

    def total(self) -> float:
        return time.perf_counter() - self._start

    def metrics(self) -> dict[str, float]:
        return {f"perf/time_{k}": v for k, v in self._seconds.items()}
