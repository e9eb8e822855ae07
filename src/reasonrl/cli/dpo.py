"""`reasonrl dpo RECIPE [KEY=VALUE ...]`: DPO, IPO or cDPO with a frozen reference."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from reasonrl.cli import common


def main(argv: Sequence[str] | None = None) -> int:
    """Train per the recipe and save `train.out_dir/final`; a config error exits 2."""
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="reasonrl dpo",
        formatter_class=common.HelpFormatter,
        description="Preference optimisation (DPO, IPO, cDPO) on pairs.",
    )
    parser.add_argument("recipe", help="YAML recipe (see recipes/dpo_synth.yaml)")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.epochs=3")
    args = parser.parse_args(list(argv) if argv is not None else None)
    from reasonrl.config import load_config
    from reasonrl.config.rm import DPOConfig

    cfg = load_config(args.recipe, args.overrides, schema=DPOConfig)  # ConfigError: exit 2
    from reasonrl.rm.dpo import run_dpo

    run_dpo(cfg)
    return 0
