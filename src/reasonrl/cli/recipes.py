"""`reasonrl recipes`: list the recipes with the one-line purpose from each file's header."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from reasonrl.cli import common


def recipe_purpose(path: Path) -> str:
    """First line of the recipe's leading comment block (its one-line purpose)."""
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            break
        text = stripped.lstrip("#").strip()
        if text:
            return text.removeprefix("Purpose:").strip()
    return "(no header comment)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="reasonrl recipes",
        description="List recipes/*.yaml.",
        formatter_class=common.HelpFormatter,
    )
    parser.add_argument("--dir", default=None, help="recipes folder (default ./recipes)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    folder = Path(args.dir) if args.dir else common.repo_recipes_dir()
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise common.UsageError(f"{folder}: no recipes (*.yaml) found")
    width = max(len(p.stem) for p in files)
    for path in files:
        print(f"{path.stem:<{width}}  {recipe_purpose(path)}")
    return common.EXIT_OK
