"""`reasonrl rm RECIPE [KEY=VALUE ...]`: train a Bradley–Terry reward model (preferences.md)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from reasonrl.cli import common


def main(argv: Sequence[str] | None = None) -> int:
    """Train per the recipe and save `train.out_dir/final`; a config error exits 2."""
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="reasonrl rm",
        formatter_class=common.HelpFormatter,
        description="Reward-model training on preference pairs (Bradley–Terry).",
    )
    parser.add_argument("recipe", help="YAML recipe (see recipes/rm_synth.yaml)")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.epochs=3")
    args = parser.parse_args(list(argv) if argv is not None else None)
    from reasonrl.config import load_config
    from reasonrl.config.rm import RMConfig

    cfg = load_config(args.recipe, args.overrides, schema=RMConfig)  # ConfigError: exit 2
    from reasonrl.rm.train import run_rm

    run_rm(cfg)
    return 0
