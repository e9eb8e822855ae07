"""`reasonrl data synth`: write a JSONL dataset of synthetic problems.

    reasonrl data synth --ops 2-8 --per-op 1000 --context zoo --mode forward --seed 0 \\
        --out data/synth_train.jsonl --split train

The tool task (issue 18): `--magnitude large` draws 3-digit constants and products;
`--tool-traces` writes completions with `<code>` calls answered by the real tool's `<output>`
(tasks/synth/tooltrace.py); `--behaviour-rich` keeps only traces with a verification or a
recovery (Behavior Priming, arXiv 2510.06534), redrawing a problem's behaviours until it has one.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reasonrl.cli import common
from reasonrl.tasks.synth.dataset import iter_rows
from reasonrl.tasks.synth.forward import MAGNITUDES
from reasonrl.tasks.synth.generator import MODES
from reasonrl.tasks.synth.tooltrace import (
    behaviour_rich,
    tag_behaviours,
    tool_completion,
    tool_trace,
)
from reasonrl.tasks.synth.vocab import CONTEXTS


def parse_ops(text: str) -> list[int]:
    """ "2-8" -> [2..8]; "2,4,6" -> [2, 4, 6]; "2-4,7" -> [2, 3, 4, 7] (order kept, no repeats)."""
    ops: list[int] = []
    for part in text.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        try:
            span = range(int(lo), int(hi) + 1) if sep else [int(lo)]
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad --ops {text!r}: use e.g. 2-8 or 2,4,6") from None
        ops.extend(op for op in span if op not in ops)
    if not ops or min(ops) < 1:
        raise argparse.ArgumentTypeError(f"bad --ops {text!r}: need op counts >= 1")
    return ops


def _choices(allowed: tuple[str, ...] | list[str], what: str):  # type: ignore[no-untyped-def]
    def parse(text: str) -> list[str]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        bad = [t for t in items if t not in allowed]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"bad {what} {text!r}: choose from {list(allowed)}")
        return items

    return parse


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of `reasonrl data synth`."""
    p = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="reasonrl data synth",
        formatter_class=common.HelpFormatter,
        description="Generate synthetic reasoning problems (arXiv 2512.07783) as JSONL rows: "
        "id, prompt, completion, trace, answer, op, context, mode.",
    )
    p.add_argument("--ops", type=parse_ops, required=True, help="op counts, e.g. 2-8 or 2,4,6")
    p.add_argument("--per-op", type=int, required=True, help="rows per op count")
    p.add_argument("--context", type=_choices(sorted(CONTEXTS), "--context"), default=["zoo"],
                   help="zoo|school|movie, comma-separated to mix (round-robin)")  # fmt: skip
    p.add_argument("--mode", type=_choices(MODES, "--mode"), default=["forward"],
                   help="forward|reverse, comma-separated to mix (round-robin)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="generation seed")
    p.add_argument("--split", choices=("train", "heldout", "all"), default="all",
                   help="hash split: heldout = 10%% of problems, never in train")  # fmt: skip
    p.add_argument("--out", type=Path, required=True, help="output .jsonl path")
    p.add_argument("--number-range", type=int, default=None,
                   help="constants up to N-1 (default: the magnitude's, 5 for small)")  # fmt: skip
    p.add_argument("--max-value", type=int, default=None,
                   help="largest value (default: the magnitude's, 99 for small)")  # fmt: skip
    p.add_argument("--magnitude", choices=sorted(MAGNITUDES), default="small",
                   help="large: 3-digit constants and products (the tool task)")  # fmt: skip
    p.add_argument("--tool-traces", action="store_true",
                   help="completions with <code> calls and <output> answers")  # fmt: skip
    p.add_argument("--behaviour-rich", action="store_true",
                   help="with --tool-traces: only traces that verify or recover")  # fmt: skip
    p.add_argument("--depth", type=int, choices=(2, 3), default=2,
                   help="layers: 3 adds 'average number of <unit> per <kind>'")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run `reasonrl data synth`; returns 0 on success, 2 on usage errors, 1 on failure."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage message
        return int(exc.code or 0)
    if args.per_op < 1:
        parser.print_usage(sys.stderr)
        print("reasonrl data synth: error: --per-op must be >= 1", file=sys.stderr)
        return 2
    if args.behaviour_rich and not args.tool_traces:
        parser.print_usage(sys.stderr)
        print("reasonrl data synth: error: --behaviour-rich needs --tool-traces", file=sys.stderr)
        return 2
    total = len(args.ops) * args.per_op
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    start = time.perf_counter()
    try:
        rows = iter_rows(
            args.ops, args.per_op, contexts=args.context, modes=args.mode, seed=args.seed,
            split=args.split, number_range=args.number_range, max_value=args.max_value,
            depth=args.depth, magnitude=args.magnitude,
        )  # fmt: skip
        if args.tool_traces:
            rows = tool_rows(rows, seed=args.seed, rich=args.behaviour_rich)
        with tmp.open("w", encoding="utf-8") as fh:
            written = _write(rows, fh, total, show=not args.no_progress)
        os.replace(tmp, args.out)
    except ValueError as err:
        tmp.unlink(missing_ok=True)
        print(f"reasonrl data synth: error: {err}", file=sys.stderr)
        return 1
    secs = time.perf_counter() - start
    print(f"wrote {written} rows to {args.out} in {secs:.1f}s (ops {args.ops}, split {args.split})")
    return 0


def tool_rows(
    rows: Iterator[dict[str, Any]], *, seed: int, rich: bool, tries: int = 20
) -> Iterator[dict[str, Any]]:
    """Rows with tool-using completions; observations from the real tools through the tag format.

    The calculator answers the demonstration cells: on these (integer arithmetic, or a dangling
    operator) its output is the Python tool's, byte for byte (tests/envs/tools/test_demos.py),
    without starting a sandbox per call. rich: redraw a row's behaviours up to `tries` times
    until it has a verification or a recovery; rows that never do are dropped.
    """
    from reasonrl.envs.tools import CalculatorTool, TagFormat

    session, fmt = CalculatorTool().open(), TagFormat()

    def observe(code: str) -> str:
        return fmt.render(session.call(code))

    rng = random.Random(f"{seed}:tools")
    for row in rows:
        for _ in range(tries if rich else 1):
            trace = tool_trace(row["trace"], rng, observe)
            if not rich or behaviour_rich(trace):
                break
        else:
            continue
        yield {**row, "completion": tool_completion(trace, row["answer"]),
               "behaviours": tag_behaviours(trace)}  # fmt: skip


def _write(rows, fh, total: int, *, show: bool) -> int:  # type: ignore[no-untyped-def]
    """Write the rows as JSONL; returns how many (tool rows may drop some)."""
    written = 0
    if not show:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            written += 1
        return written
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        task = progress.add_task("generating", total=total)
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            written += 1
            progress.advance(task)
    return written


if __name__ == "__main__":
    raise SystemExit(main())
