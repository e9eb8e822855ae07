"""YAML reading (strict: duplicate keys are errors) and dotted `key=value` overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from reasonrl.config.errors import ConfigError, short


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys (a silent last-one-wins hides typos)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            line = key_node.start_mark.line + 1
            raise ConfigError(f"duplicate key {key!r} at line {line}")
        seen[key] = loader.construct_object(value_node, deep=True)
    return seen


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: Path) -> dict[str, Any]:
    """The mapping of sections in a recipe file; a missing, unparsable or empty file (nothing but
    blank lines and comments, or `{}`) raises `ConfigError` naming the file."""
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)  # a SafeLoader
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from None
    if raw is None or raw == {}:
        # An empty or comment-only file would otherwise launch a full run of every default.
        raise ConfigError(
            f"{path}: the recipe is empty (no sections, only blank lines or comments); write the "
            "sections the run needs, e.g. start from a file in recipes/ (`reasonrl recipes`)"
        )
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    return raw


def parse_override(text: str) -> tuple[list[str], Any]:
    """`"algo.clip_high=0.28"` -> (["algo", "clip_high"], 0.28); the value is read as YAML."""
    key, sep, value = text.partition("=")
    key = key.strip()
    parts = key.split(".")
    if not sep or not key or any(not p.strip() for p in parts):
        raise ConfigError(f"bad override {text!r}: expected section.key=value, e.g. rollout.n=8")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        raise ConfigError(f"bad override {text!r}: value is not valid YAML") from None
    return [p.strip() for p in parts], parsed


def apply_override(raw: dict[str, Any], parts: list[str], value: Any, text: str) -> None:
    node = raw
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            where = ".".join(parts[: i + 1])
            raise ConfigError(f"bad override {text!r}: {where} is {short(child)}, not a section")
        node = child
    node[parts[-1]] = value
