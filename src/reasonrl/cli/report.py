"""`reasonrl report RUN_DIR`: write a static HTML report of a run."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from reasonrl.cli import common


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="reasonrl report",
        formatter_class=common.HelpFormatter,
        description="Write RUN_DIR/report/index.html: curves, config, eval tables, rollouts.",
    )
    parser.add_argument("run_dir", help="a run directory (holds metrics.jsonl, config.yaml)")
    parser.add_argument("--out", default=None, help="output folder (default RUN_DIR/report)")
    parser.add_argument("--samples", type=int, default=200, help="most rollouts shown")
    args = parser.parse_args(list(argv) if argv is not None else None)
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise common.UsageError(f"{run_dir}: no such run directory")
    from reasonrl.report.report import write_report

    print(write_report(run_dir, out_dir=args.out, max_samples=args.samples))
    return common.EXIT_OK
