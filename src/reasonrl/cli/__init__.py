"""`reasonrl` command line: train, eval, quickstart, sft, rm, dpo, data, export, merge, report.

One module per command, each with its own `main(argv)` and argparse parser; this module only
dispatches, and imports a command's module when it runs, so `reasonrl --help` stays fast.
Exit codes: 0 ok, 2 usage or configuration error, 1 run failure, 130 interrupted.
Set REASONRL_DEBUG=1 to see the full traceback of a run failure.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from reasonrl.cli import common
from reasonrl.cli.common import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UsageError

# command word(s) -> ("module:function", one-line summary); each function takes argv.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("reasonrl.cli.train:main", "run RL training from a recipe"),
    "eval": ("reasonrl.cli.eval:main", "evaluate a checkpoint: pass@k / maj@k per op"),
    "quickstart": ("reasonrl.cli.quickstart:main", "a few-minute RL run on CPU, end to end"),
    "sft": ("reasonrl.cli.sft:main", "supervised fine-tuning (e.g. the base checkpoint)"),
    "data synth": ("reasonrl.cli.data_synth:main", "generate synthetic DAG reasoning problems"),
    "data rejection": (
        "reasonrl.cli.data_rejection:main",
        "shortest-correct samples of a model as SFT data (long2short)",
    ),
    "merge": ("reasonrl.cli.merge:main", "average two models' weights (long2short merge)"),
    "export": ("reasonrl.cli.export:main", "a checkpoint as a clean Hugging Face directory"),
    "report": ("reasonrl.cli.report:main", "write a static HTML report of a run"),
    "recipes": ("reasonrl.cli.recipes:main", "list recipes with their purpose"),
    "rm": ("reasonrl.cli.rm:main", "train a Bradley–Terry reward model on preference pairs"),
    "dpo": ("reasonrl.cli.dpo:main", "DPO / IPO / cDPO on preference pairs, frozen reference"),
    "irl": ("reasonrl.cli.irl:main", "IRL from demonstrations: alternate reward model and RL"),
}

__all__ = ["COMMANDS", "UsageError", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: lists the commands (each command parses its own arguments)."""
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="reasonrl",
        description="RL post-training of language models for verifiable reasoning.",
        epilog="Exit codes: 0 ok, 2 usage/config error, 1 run failure.",
    )
    parser.add_argument("--version", action="version", version=f"reasonrl {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, summary) in COMMANDS.items():
        if " " not in name:
            sub.add_parser(name, help=summary, add_help=False, allow_abbrev=False)
    data = sub.add_parser(
        "data", help="data tools (`reasonrl data synth --help`)", allow_abbrev=False
    )
    tools = [name.split()[1] for name in COMMANDS if name.startswith("data ")]
    data.add_argument(
        "tool", choices=tools, help="; ".join(f"{t}: {COMMANDS['data ' + t][1]}" for t in tools)
    )
    return parser


def version() -> str:
    """The installed distribution's version, else `reasonrl.__version__` (a source checkout)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("reasonrl")
    except PackageNotFoundError:  # the package itself is loaded already: it is our parent
        return str(getattr(sys.modules.get("reasonrl"), "__version__", "unknown"))


_OWN_FLAGS = ("-h", "--help", "--version")


def _command(argv: list[str]) -> tuple[str, list[str]] | None:
    """(target, rest) when argv starts with a command word (or two words). Flags written before
    the command (`reasonrl --resume train r.yaml`) go to the command, whose parser accepts or
    refuses them with its own usage; the top-level parser keeps -h, --help and --version."""
    lead = 0
    while lead < len(argv) and argv[lead].startswith("-") and argv[lead] not in _OWN_FLAGS:
        lead += 1
    flags, argv = argv[:lead], argv[lead:]
    if len(argv) >= 2 and f"{argv[0]} {argv[1]}" in COMMANDS:
        return COMMANDS[f"{argv[0]} {argv[1]}"][0], argv[2:] + flags
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]][0], argv[1:] + flags
    return None


def _run(argv: list[str]) -> int:
    command = _command(argv)
    if command is None:  # no known command: the top-level parser prints help or the error
        build_parser().parse_args(argv)
        return EXIT_USAGE
    target, rest = command
    result = common.load_target(target)(rest)
    return result if isinstance(result, int) else EXIT_OK


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
        from reasonrl.config.errors import ConfigError

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
