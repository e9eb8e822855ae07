"""Reward throughput: sandboxed programs/s, HumanEval suites/s, math grades/s, countdown checks/s.

Usage:
    python benchmarks/rewards_bench.py [--data ../shared/data] [--workers 1,2,4,8] [--n 96]

Prints a markdown table (append it to benchmarks/README.md with the command and the machine).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from reasonrl.data.benchmarks import load_benchmark
from reasonrl.rewards.countdown import countdown_reward
from reasonrl.rewards.math import MathGrader, grade_answer
from reasonrl.rewards.pool import SandboxPool, measure_throughput
from reasonrl.rewards.sandbox import detect_mode, run_python
from reasonrl.types import Completion


def bench_sandbox(workers: list[int], n: int) -> list[tuple[str, str, str]]:
    rows = []
    for w in workers:
        r = measure_throughput(n=n, workers=w, code="pass")
        rows.append(
            (
                f"sandbox, trivial program, {w} workers",
                f"{r['programs_per_s']:.1f} programs/s",
                f"mean wall {r['mean_wall_s'] * 1000:.0f} ms, ok {r['ok_frac']:.0%}",
            )
        )
    return rows


def bench_humaneval(data: Path, workers: int) -> tuple[str, str, str]:
    probs = load_benchmark("humaneval", data)
    jobs = [(p.prompt + p.answer, p.meta["test"], p.meta["entry_point"]) for p in probs]
    with SandboxPool(workers) as pool:
        start = time.perf_counter()
        reports = pool.run_tests_many(jobs)
        elapsed = time.perf_counter() - start
    ok = sum(r.passed for r in reports)
    return (
        f"HumanEval canonical suites, {workers} workers",
        f"{len(jobs) / elapsed:.1f} suites/s",
        f"{ok}/{len(jobs)} pass, {elapsed:.1f} s total",
    )


def bench_math(data: Path) -> list[tuple[str, str, str]]:
    grader = MathGrader()
    grader.equivalent("x", "y")  # start the worker outside the timing
    rows = []
    gsm = load_benchmark("gsm8k_test", data)
    start = time.perf_counter()
    ok = sum(grade_answer(s.meta["solution"], s.answer, grader=grader).score == 1.0 for s in gsm)
    el = time.perf_counter() - start
    rows.append(
        (
            "math: GSM8K golds (fast paths, no math-verify)",
            f"{len(gsm) / el:,.0f} grades/s",
            f"{ok}/{len(gsm)} correct",
        )
    )
    m5 = load_benchmark("math500", data)
    start = time.perf_counter()
    ok = sum(grade_answer(s.meta["solution"], s.answer, grader=grader).score == 1.0 for s in m5)
    el = time.perf_counter() - start
    rows.append(
        (
            "math: MATH500 golds (fast paths, no math-verify)",
            f"{len(m5) / el:,.0f} grades/s",
            f"{ok}/{len(m5)} correct",
        )
    )
    # force the math-verify worker on every gold answer (one IPC round trip + parse + verify)
    start = time.perf_counter()
    ok = sum(grader._math_verify(f"\\boxed{{{s.answer}}}", s.answer) for s in m5)
    el = time.perf_counter() - start
    rows.append(
        (
            "math: MATH500 via math-verify worker",
            f"{len(m5) / el:,.1f} grades/s",
            f"{ok}/{len(m5)} equal",
        )
    )
    grader.close()
    return rows


def bench_countdown(data: Path) -> tuple[str, str, str]:
    samples = load_benchmark("countdown", data)
    comp = Completion(text="<answer>(1 + 2) * 3</answer>", token_ids=(), logprobs=())
    start = time.perf_counter()
    for _ in range(20):
        for s in samples:
            countdown_reward(s, comp)
    el = time.perf_counter() - start
    return (
        "countdown checker",
        f"{20 * len(samples) / el:,.0f} checks/s",
        "AST walk, exact fractions",
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    ap.add_argument("--workers", default="1,2,4,8")
    ap.add_argument("--n", type=int, default=96)
    args = ap.parse_args()
    workers = [int(w) for w in args.workers.split(",")]
    iso = run_python("pass").isolation
    load = os.getloadavg()[0]
    print(f"isolation: {detect_mode()}/{iso.level}; cores={os.cpu_count()}; load={load:.1f}")
    rows = bench_sandbox(workers, args.n)
    rows.append(bench_humaneval(args.data, max(workers)))
    rows += bench_math(args.data)
    rows.append(bench_countdown(args.data))
    print("| what | throughput | notes |\n|---|---|---|")
    for what, rate, note in rows:
        print(f"| {what} | {rate} | {note} |")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
