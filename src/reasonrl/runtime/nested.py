"""Nested mappings (a resolved config) as flat dotted keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def flatten_dotted(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"algo.clip_high": 0.28, ...}`: every leaf of nested mappings under its dotted key (an
    empty mapping has no leaf, so it contributes nothing)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out |= flatten_dotted(value, name)
        else:
            out[name] = value
    return out
