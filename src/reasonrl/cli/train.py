"""`reasonrl train RECIPE [KEY=VALUE ...] [--resume]`: an RL run from a YAML recipe."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from reasonrl.cli import common

EPILOG = """\
overrides are dotted KEY=VALUE pairs applied on top of the recipe; VALUE is read as YAML:
  reasonrl train recipes/grpo.yaml algo.clip_high=0.28 rollout.n=8 data.ops=[3,4,5]
The run directory is trainer.out_dir/trainer.run_name (run_name defaults to the recipe's name).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reasonrl train",
        description="Run RL training from a YAML recipe plus dotted overrides.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("recipe", help="recipe YAML path, or a name from `reasonrl recipes`")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    parser.add_argument(
        "--resume", action="store_true", help="continue from the run's latest valid checkpoint"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    from reasonrl.config import load_config  # pydantic stays out of `reasonrl --help`

    cfg = load_config(common.resolve_recipe(args.recipe), args.overrides)
    run_dir = cfg.run_dir
    started = (run_dir / "config.yaml").exists() or (run_dir / "checkpoints").exists()
    if started and not args.resume:
        raise common.UsageError(
            f"run directory {run_dir} already holds a run: pass --resume to continue it, "
            "or choose another with trainer.run_name=NAME"
        )
    train_main = common.load_target("reasonrl.rl.run:train_main")
    result = train_main(cfg, resume=args.resume)
    return result if isinstance(result, int) else common.EXIT_OK
