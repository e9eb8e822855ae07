"""A worker pool for sandboxed runs and slow rewards.

Each sandbox run is a child process; the pool's threads only wait on pipes, so threads (not
processes) are enough and the GIL is not a bottleneck. Each concurrent run gets its own sandbox
uid (see `sandbox.run._Slots`), so one run's fork bomb cannot starve another's process budget.
Throughput on this project's 2-core CI machine is in benchmarks/README.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from reasonrl.rewards.api import RewardStats, call_reward
from reasonrl.rewards.code_tests import TestReport, run_tests
from reasonrl.rewards.sandbox import SandboxResult, run_python
from reasonrl.types import Completion, RewardResult, Sample


class SandboxPool:
    """Run many sandboxed programs / test suites / rewards concurrently.

    Args:
        workers: concurrent sandboxes (about 2x the cores is a good start: runs wait on I/O
            and process start-up as much as they compute).
    """

    def __init__(self, workers: int = 4) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox")

    def submit(self, code: str, **kwargs: Any) -> Future[SandboxResult]:
        """`run_python(code, **kwargs)` in the pool."""
        return self._pool.submit(run_python, code, **kwargs)

    def run_many(self, codes: Sequence[str], **kwargs: Any) -> list[SandboxResult]:
        """`run_python` on each program, results in input order."""
        return [f.result() for f in [self.submit(c, **kwargs) for c in codes]]

    def run_tests_many(
        self, jobs: Sequence[tuple[str, str | Sequence[str], str | None]], **kwargs: Any
    ) -> list[TestReport]:
        """`run_tests(code, tests, entry_point=...)` for each (code, tests, entry_point)."""
        futures = [
            self._pool.submit(run_tests, code, tests, entry_point=entry, **kwargs)
            for code, tests, entry in jobs
        ]
        return [f.result() for f in futures]

    def score(
        self,
        reward_fn: Callable[[Sample, Completion], object],
        samples: Sequence[Sample],
        completions: Sequence[Completion],
        *,
        stats: RewardStats | None = None,
    ) -> list[RewardResult]:
        """`call_reward` on each (sample, completion) pair concurrently; never raises."""
        if len(samples) != len(completions):
            raise ValueError(f"{len(samples)} samples but {len(completions)} completions")
        futures = [
            self._pool.submit(call_reward, reward_fn, s, c)
            for s, c in zip(samples, completions, strict=True)
        ]
        results = [f.result() for f in futures]
        if stats is not None:
            for r in results:
                stats.record(r)
        return results

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def measure_throughput(n: int = 64, workers: int = 4, code: str = "pass") -> dict[str, float]:
    """Programs per second for `n` runs of `code` on a pool of `workers` (after a warm-up run).

    Returns:
        {"programs_per_s", "mean_wall_s", "n", "workers", "ok_frac"}.
    """
    run_python(code)  # warm-up: probes the interpreter and isolation once
    with SandboxPool(workers) as pool:
        start = time.perf_counter()
        results = pool.run_many([code] * n)
        elapsed = time.perf_counter() - start
    return {
        "programs_per_s": n / elapsed,
        "mean_wall_s": sum(r.wall_s for r in results) / n,
        "n": float(n),
        "workers": float(workers),
        "ok_frac": sum(r.status == "ok" for r in results) / n,
    }
