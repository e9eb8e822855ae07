"""`reasonrl sft RECIPE [KEY=VALUE ...]`: supervised training (e.g. the shipped base checkpoint)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from reasonrl.cli import common


def main(argv: Sequence[str] | None = None) -> int:
    """Train per the recipe and save `train.out_dir/final`; a config error exits 2."""
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="reasonrl sft",
        formatter_class=common.HelpFormatter,
        description="Supervised fine-tuning / pre-training from a recipe.",
    )
    parser.add_argument("recipe", help="YAML recipe (see recipes/pretrain_synth_micro.yaml)")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.max_steps=100")
    args = parser.parse_args(list(argv) if argv is not None else None)
    from reasonrl.config import SFTConfig, load_config

    cfg = load_config(args.recipe, args.overrides, schema=SFTConfig)  # ConfigError: exit 2
    from reasonrl.cli.checks import check_sft

    check_sft(cfg, args.recipe)  # model and data paths: exit 2 before anything is built
    from reasonrl.sft.run import run_sft

    run_sft(cfg)
    return 0
