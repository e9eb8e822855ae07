"""Benchmark of the synthetic task: generator speed and tokens per problem, by op and mode.

Usage (single core; writes a markdown table to stdout and, with --out, to a file):
    python benchmarks/synth_task_bench.py --ops 2-20 --n 200 [--out bench.md]

Measures, for each mode and op: problems generated per second (one process, one thread,
`generate_problem` only, timed with perf_counter over --n problems cycling the three contexts),
and the mean number of tokens of the prompt and of the gold completion (+1 for EOS) under the
task tokenizer. Target from issue 7: >= 200 problems/s for op <= 10 in forward mode.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from reasonrl.cli.data_synth import parse_ops
from reasonrl.tasks.synth.generator import generate_problem
from reasonrl.tasks.synth.render import completion_text, prompt_text

CONTEXTS = ("zoo", "school", "movie")


def problems_per_second(op: int, mode: str, n: int, seed: int) -> tuple[float, list]:
    """Generate n problems of `op` (contexts round-robin); returns (problems/s, problems)."""
    rng = random.Random(f"bench:{seed}:{mode}:{op}")
    start = time.perf_counter()
    out = [generate_problem(op, rng=rng, context=CONTEXTS[i % 3], mode=mode) for i in range(n)]
    return n / (time.perf_counter() - start), out


def tokens_per_problem(tok, problems: list) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Mean prompt tokens and mean completion tokens (+1 for the EOS the trainer appends)."""
    prompts = [len(tok.encode(prompt_text(p))) for p in problems]
    completions = [len(tok.encode(completion_text(p))) + 1 for p in problems]
    return statistics.fmean(prompts), statistics.fmean(completions)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=parse_ops, default=parse_ops("2-20"))
    parser.add_argument("--modes", default="forward,reverse")
    parser.add_argument("--n", type=int, default=200, help="problems per (mode, op)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="also write the markdown table here")
    args = parser.parse_args(argv)

    from reasonrl.tasks.synth.tokenizer import build_synth_tokenizer

    tok = build_synth_tokenizer()
    lines = [
        f"Synthetic task generator ({platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, 1 process; n={args.n} per cell; "
        f"tokenizer vocab {len(tok)})",
        "",
        "| mode | op | problems/s | prompt tokens | completion tokens (+EOS) | total tokens |",
        "|---|---|---|---|---|---|",
    ]
    for mode in args.modes.split(","):
        for op in args.ops:
            rate, problems = problems_per_second(op, mode, args.n, args.seed)
            p_tok, c_tok = tokens_per_problem(tok, problems)
            lines.append(
                f"| {mode} | {op} | {rate:,.0f} | {p_tok:.0f} | {c_tok:.0f} | {p_tok + c_tok:.0f} |"
            )
            print(lines[-1], file=sys.stderr, flush=True)
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
