"""What every command shares: exit codes, the usage error, lazy loading, recipe lookup."""

from __future__ import annotations

import argparse
import importlib
import os
from collections.abc import Callable
from pathlib import Path

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """Bad command-line usage (exit 2)."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every command's `--help`: `(default: X)` after each option that has a default (not for
    flags that are off, unset options, or help that already names its default), and epilogs
    printed as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        d = action.default
        if d is None or d is False or d is argparse.SUPPRESS or "default" in text.lower():
            return text
        if not action.option_strings and action.nargs not in ("?", "*"):
            return text
        shown = ",".join(map(str, d)).replace("%", "%%") if isinstance(d, list | tuple) else None
        return f"{text} (default: {shown or '%(default)s'})".strip()


def load_target(target: str) -> Callable[..., object]:
    """Import "module:function" when the command runs, so `reasonrl --help` stays fast."""
    module_name, func_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise UsageError(f"{module_name} is not available in this install") from None
        raise
    return getattr(module, func_name)


def repo_recipes_dir() -> Path:
    """`./recipes` when it exists, else the checkout's recipes/ next to src/."""
    here = Path.cwd() / "recipes"
    return here if here.is_dir() else Path(__file__).resolve().parents[3] / "recipes"


def resolve_recipe(name: str) -> Path:
    """A path as given, or a bare name looked up in the recipes directory (`grpo` -> grpo.yaml)."""
    path = Path(name)
    if path.exists() or path.suffix in (".yaml", ".yml") or os.sep in name:
        return path
    candidate = repo_recipes_dir() / f"{name}.yaml"
    return candidate if candidate.exists() else path
