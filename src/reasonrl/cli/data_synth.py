"""`reasonrl data synth`: write a JSONL dataset of synthetic problems.

    reasonrl data synth --ops 2-8 --per-op 1000 --context zoo --mode forward --seed 0 \\
        --out data/synth_train.jsonl --split train
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from reasonrl.cli import common
from reasonrl.tasks.synth.dataset import iter_rows
from reasonrl.tasks.synth.generator import MODES
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
    p.add_argument("--number-range", type=int, default=5, help="constants 1..N-1 (default 5)")
    p.add_argument("--max-value", type=int, default=99, help="largest quantity value")
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
    total = len(args.ops) * args.per_op
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    start = time.perf_counter()
    try:
        rows = iter_rows(
            args.ops, args.per_op, contexts=args.context, modes=args.mode, seed=args.seed,
            split=args.split, number_range=args.number_range, max_value=args.max_value,
            depth=args.depth,
        )  # fmt: skip
        with tmp.open("w", encoding="utf-8") as fh:
            _write(rows, fh, total, show=not args.no_progress)
        os.replace(tmp, args.out)
    except ValueError as err:
        tmp.unlink(missing_ok=True)
        print(f"reasonrl data synth: error: {err}", file=sys.stderr)
        return 1
    secs = time.perf_counter() - start
    print(f"wrote {total} rows to {args.out} in {secs:.1f}s (ops {args.ops}, split {args.split})")
    return 0


def _write(rows, fh, total: int, *, show: bool) -> None:  # type: ignore[no-untyped-def]
    if not show:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        task = progress.add_task("generating", total=total)
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            progress.advance(task)


if __name__ == "__main__":
    raise SystemExit(main())
