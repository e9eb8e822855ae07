"""`reasonrl merge A B OUT [--weight W]`: average two models' weights (Kimi's long2short merge).

A and B are model directories, run directories (their newest checkpoint), `builtin:NAME`s or hub
ids of the same architecture; OUT gets W * A + (1 - W) * B as a Hugging Face directory, with A's
config and tokenizer. Kimi k1.5 (arXiv 2501.12599 §2.4) merges a long-reasoning model with a
short one; see docs/beyond-policy-gradient.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from reasonrl.cli import common


def main(argv: Sequence[str] | None = None) -> int:
    """`reasonrl merge A B OUT [--weight W] [--force]`."""
    p = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="reasonrl merge",
        description=__doc__.split("\n\n")[0].split(": ", 1)[1],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=common.HelpFormatter,
    )
    p.add_argument("a", help="first model (weight W)")
    p.add_argument("b", help="second model (weight 1 - W)")
    p.add_argument("out", type=Path, help="output directory")
    p.add_argument("--weight", type=float, default=0.5, help="W, in [0, 1]")
    p.add_argument("--force", action="store_true", help="write into a non-empty OUT")
    args = p.parse_args(list(argv) if argv is not None else None)
    from reasonrl.models.io import resolve_policy_path

    try:
        if not 0.0 <= args.weight <= 1.0:
            raise ValueError(f"--weight must be in [0, 1], got {args.weight}")
        if args.out.exists() and any(args.out.iterdir()) and not args.force:
            raise ValueError(f"{args.out} exists and is not empty (use --force to write into it)")
        a, b = resolve_policy_path(args.a), resolve_policy_path(args.b)
    except (ValueError, FileNotFoundError) as exc:
        print(f"reasonrl merge: error: {exc}", file=sys.stderr)
        return common.EXIT_USAGE
    from reasonrl.models.merge import merge_models

    try:
        out = merge_models(a, b, args.out, weight=args.weight)
    except ValueError as exc:  # different architectures
        print(f"reasonrl merge: error: {exc}", file=sys.stderr)
        return common.EXIT_USAGE
    print(f"merged {args.weight:g} x {a} + {1 - args.weight:g} x {b} -> {out}")
    return common.EXIT_OK
