"""Throughput of the sandboxed Python tool: calls/s with 1 vs N concurrent sessions (threads).

Each session is one episode: `--calls` cells in a row (`x0 = 312 * 417`, then `x1 = x0 + 1`,
...), so the replay design's cost (every call re-runs the episode's earlier cells) is included;
the calculator is timed too, as the in-process baseline. Prints the machine and a markdown
table (append it to benchmarks/README.md with the command).

Run: python benchmarks/tool_throughput.py [--sessions 1 4] [--episodes 8] [--calls 6]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor

from reasonrl.envs.tools import CalculatorTool, PythonTool
from reasonrl.rewards.sandbox import detect_mode


def episode(tool: PythonTool | CalculatorTool, calls: int) -> int:
    """One episode of `calls` dependent cells; returns how many calls failed."""
    session = tool.open()
    failed = 0
    try:
        for i in range(calls):
            if isinstance(tool, PythonTool):
                code = "x0 = 312 * 417\nx0" if i == 0 else f"x{i} = x{i - 1} + 1\nx{i}"
            else:
                code = f"312 * 417 + {i}"
            result = session.call(code)
            failed += not (result.ok and result.output == str(130104 + i))
    finally:
        session.close()
    return failed


def measure(tool: PythonTool | CalculatorTool, sessions: int, episodes: int, calls: int) -> dict:
    """calls/s and episodes/s with `sessions` episodes running at once (threads)."""
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=sessions) as pool:
        failed = sum(pool.map(lambda _: episode(tool, calls), range(episodes)))
    secs = time.perf_counter() - start
    return {
        "calls_s": episodes * calls / secs,
        "episodes_s": episodes / secs,
        "ms_per_call": 1000 * secs / (episodes * calls) * sessions,
        "failed": failed,
        "secs": secs,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, nargs="+", default=[1, 4])
    p.add_argument("--episodes", type=int, default=8, help="episodes per setting")
    p.add_argument("--calls", type=int, default=6, help="tool calls per episode")
    args = p.parse_args()
    load = os.getloadavg()[0]
    print(
        f"machine: {platform.machine()} {platform.processor() or ''} cores={os.cpu_count()} "
        f"load={load:.1f} python={platform.python_version()} sandbox={detect_mode()}"
    )
    print("| tool | sessions | episodes | calls/ep | calls/s | episodes/s | ms/call | failed |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for tool in (PythonTool(), CalculatorTool()):
        for n in args.sessions:
            episodes = args.episodes if tool.name == "python" else args.episodes * 100
            r = measure(tool, n, episodes, args.calls)
            print(
                f"| {tool.name} | {n} | {episodes} | {args.calls} | {r['calls_s']:.1f} | "
                f"{r['episodes_s']:.2f} | {r['ms_per_call']:.1f} | {r['failed']} |"
            )


if __name__ == "__main__":
    main()
