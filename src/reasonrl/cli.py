"""`reasonrl` command line: train | eval | quickstart | data synth | sft | report | recipes.

Each subcommand imports its module only when it runs, so `reasonrl --help` stays fast.
Exit codes: 0 ok, 2 usage or configuration error, 1 run failure, 130 interrupted.
Set REASONRL_DEBUG=1 to see the full traceback of a run failure.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

# Commands whose own parser owns every argument after the command word: "module:function".
DELEGATED: dict[str, tuple[str, str]] = {
    "eval": ("reasonrl.eval.evaluate:main", "evaluate a checkpoint: pass@k / maj@k per op"),
    "quickstart": ("reasonrl.trainer.quickstart:main", "a few-minute RL run on CPU, end to end"),
    "sft": ("reasonrl.trainer.sft:main", "supervised fine-tuning (e.g. the base checkpoint)"),
    "data synth": ("reasonrl.tasks.synth.cli:main", "generate synthetic DAG reasoning problems"),
}

TRAIN_EPILOG = """\
overrides are dotted KEY=VALUE pairs applied on top of the recipe; VALUE is read as YAML:
  reasonrl train recipes/grpo.yaml algo.clip_high=0.28 rollout.n=8 data.ops=[3,4,5]
The run directory is trainer.out_dir/trainer.run_name (run_name defaults to the recipe's name).
"""


class UsageError(Exception):
    """Bad command-line usage (exit 2)."""


def repo_recipes_dir() -> Path:
    """`./recipes` when it exists, else the checkout's recipes/ next to src/."""
    here = Path.cwd() / "recipes"
    return here if here.is_dir() else Path(__file__).resolve().parents[2] / "recipes"


def resolve_recipe(name: str) -> Path:
    """A path as given, or a bare name looked up in the recipes directory (`grpo` -> grpo.yaml)."""
    path = Path(name)
    if path.exists() or path.suffix in (".yaml", ".yml") or os.sep in name:
        return path
    candidate = repo_recipes_dir() / f"{name}.yaml"
    return candidate if candidate.exists() else path


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


def _load(target: str) -> Callable[..., object]:
    module_name, func_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise UsageError(f"{module_name} is not available in this install") from None
        raise
    return getattr(module, func_name)


def cmd_train(args: argparse.Namespace) -> int:
    from reasonrl.config import load_config  # pydantic stays out of `reasonrl --help`

    cfg = load_config(resolve_recipe(args.recipe), args.overrides)
    run_dir = cfg.run_dir
    started = (run_dir / "config.yaml").exists() or (run_dir / "checkpoints").exists()
    if started and not args.resume:
        raise UsageError(
            f"run directory {run_dir} already holds a run: pass --resume to continue it, "
            "or choose another with trainer.run_name=NAME"
        )
    train_main = _load("reasonrl.trainer.loop:train_main")
    result = train_main(cfg, resume=args.resume)
    return result if isinstance(result, int) else EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: no such run directory")
    from reasonrl.report.report import write_report

    index = write_report(run_dir, out_dir=args.out, max_samples=args.samples)
    print(index)
    return EXIT_OK


def cmd_recipes(args: argparse.Namespace) -> int:
    folder = Path(args.dir) if args.dir else repo_recipes_dir()
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise UsageError(f"{folder}: no recipes (*.yaml) found")
    width = max(len(p.stem) for p in files)
    for path in files:
        print(f"{path.stem:<{width}}  {recipe_purpose(path)}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reasonrl",
        description="RL post-training of language models for verifiable reasoning.",
        epilog="Exit codes: 0 ok, 2 usage/config error, 1 run failure.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = sub.add_parser(
        "train",
        help="run RL training from a recipe",
        description="Run RL training from a YAML recipe plus dotted overrides.",
        epilog=TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("recipe", help="recipe YAML path, or a name from `reasonrl recipes`")
    train.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    train.add_argument(
        "--resume", action="store_true", help="continue from the run's latest valid checkpoint"
    )
    train.set_defaults(func=cmd_train)

    for name, (_, summary) in DELEGATED.items():
        if " " not in name:
            sub.add_parser(name, help=summary, add_help=False)
    data = sub.add_parser("data", help="data tools (`reasonrl data synth --help`)")
    data.add_argument("tool", choices=["synth"], help="synth: " + DELEGATED["data synth"][1])

    report = sub.add_parser(
        "report",
        help="write a static HTML report of a run",
        description="Write RUN_DIR/report/index.html: curves, config, eval tables, rollouts.",
    )
    report.add_argument("run_dir", help="a run directory (holds metrics.jsonl, config.yaml)")
    report.add_argument("--out", default=None, help="output folder (default RUN_DIR/report)")
    report.add_argument("--samples", type=int, default=200, help="most rollouts shown (200)")
    report.set_defaults(func=cmd_report)

    recipes = sub.add_parser(
        "recipes", help="list recipes with their purpose", description="List recipes/*.yaml."
    )
    recipes.add_argument("--dir", default=None, help="recipes folder (default ./recipes)")
    recipes.set_defaults(func=cmd_recipes)
    return parser


def _delegated(argv: list[str]) -> tuple[str, list[str]] | None:
    """(target, rest) when argv starts with a delegated command word (or two words)."""
    if len(argv) >= 2 and f"{argv[0]} {argv[1]}" in DELEGATED:
        return DELEGATED[f"{argv[0]} {argv[1]}"][0], argv[2:]
    if argv and argv[0] in DELEGATED:
        return DELEGATED[argv[0]][0], argv[1:]
    return None


def _run(argv: list[str]) -> int:
    delegated = _delegated(argv)
    if delegated:
        target, rest = delegated
        result = _load(target)(rest)
        return result if isinstance(result, int) else EXIT_OK
    args = build_parser().parse_args(argv)
    return args.func(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `reasonrl` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _run(argv)
    except SystemExit as exc:  # argparse: 0 for --help, 2 for usage errors
        code = exc.code
        return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_USAGE)
    except KeyboardInterrupt:
        print("reasonrl: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        from reasonrl.config_errors import ConfigError

        if isinstance(exc, ConfigError | UsageError):
            print(f"reasonrl: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if os.environ.get("REASONRL_DEBUG"):
            traceback.print_exc()
        print(f"reasonrl: run failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        if not os.environ.get("REASONRL_DEBUG"):
            print("(set REASONRL_DEBUG=1 for the full traceback)", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
