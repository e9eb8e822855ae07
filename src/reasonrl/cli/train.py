"""`reasonrl train RECIPE [KEY=VALUE ...] [--resume [--allow-config-change]] [--print-config]`:
an RL run from a YAML recipe (`--print-config`: show the resolved config and exit).

Exit codes: 0 done; 2 a usage or config error, or a refused resume (nothing on disk changed);
1 the run failed or stopped (non-finite updates, a full disk); 130 / 143 SIGINT / SIGTERM (the
step in flight was finished and checkpointed).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from reasonrl.cli import common

EPILOG = """\
overrides are dotted KEY=VALUE pairs applied on top of the recipe; VALUE is read as YAML:
  reasonrl train recipes/grpo.yaml algo.clip_high=0.28 rollout.n=8 data.ops=[3,4,5]
The run directory is trainer.out_dir/trainer.run_name (run_name defaults to the recipe's name).
--resume continues it from its newest valid checkpoint; it refuses (exit 2, nothing changed) a
missing run, a run without a valid checkpoint, and a config that differs from the run's
config.yaml in anything but trainer.steps, time_budget_s, log_every, save_every, keep_last,
sample_every, max_nonfinite_steps, report_to (unless --allow-config-change).
Ctrl-C or SIGTERM: the current step finishes and is checkpointed (exit 130 / 143); a second
signal exits at once.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="reasonrl train",
        description="Run RL training from a YAML recipe plus dotted overrides.",
        epilog=EPILOG,
        formatter_class=common.HelpFormatter,
    )
    parser.add_argument("recipe", help="recipe YAML path, or a name from `reasonrl recipes`")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    parser.add_argument(
        "--resume", action="store_true", help="continue from the run's latest valid checkpoint"
    )
    parser.add_argument(
        "--allow-config-change",
        action="store_true",
        help="with --resume: continue even though the config differs from the run's config.yaml",
    )
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved config (recipe + overrides, presets expanded) as YAML and exit; "
        "nothing is loaded or written",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.allow_config_change and not args.resume:
        raise common.UsageError("--allow-config-change only applies with --resume")
    from reasonrl.config import load_config  # pydantic stays out of `reasonrl --help`

    recipe = common.resolve_recipe(args.recipe)
    cfg = load_config(recipe, args.overrides)
    if args.print_config:
        import yaml

        print(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False), end="")
        return common.EXIT_OK
    from reasonrl.cli.checks import check_rl

    check_rl(cfg, recipe)  # device, model and data paths: exit 2 before the model loads
    run_dir = cfg.run_dir
    started = (run_dir / "config.yaml").exists() or (run_dir / "checkpoints").exists()
    if started and not args.resume:
        raise common.UsageError(
            f"run directory {run_dir} already holds a run: pass --resume to continue it, "
            "or choose another with trainer.run_name=NAME"
        )
    loop = "reasonrl.es.run" if cfg.algo.kind == "es" else "reasonrl.rl.run"  # ES: issue 21
    if cfg.trainer.backend == "ray":  # Ray actors for rollouts and rewards (issue 19)
        loop = "reasonrl.distributed_ray.run"
    train_main = common.load_target(f"{loop}:train_main")
    refusals = _refusals()
    try:
        result = train_main(cfg, resume=args.resume, allow_config_change=args.allow_config_change)
    except refusals as exc:  # checked before anything was loaded or written
        raise common.UsageError(str(exc)) from None
    return result if isinstance(result, int) else common.EXIT_OK


def _refusals() -> tuple[type[Exception], ...]:
    """The loop's "will not start" errors (a refused resume, an occupied run directory)."""
    try:
        from reasonrl.rl.resume import ResumeError, RunDirExistsError
    except ImportError:  # a partial install: the loop itself reports what is missing
        return ()
    return (ResumeError, RunDirExistsError)
