"""Lazy package attributes (PEP 562), so a light `import reasonrl...` can still export names
whose modules pull in pydantic, torch or transformers: each is imported on first access."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    namespace: dict[str, Any], table: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`(__getattr__, __dir__)` for a package whose `namespace` (its `globals()`) exports each
    `name` of `table` from the module `table[name]`; a resolved name is cached in `namespace`,
    so later lookups skip `__getattr__`."""
    package = namespace.get("__name__", "?")

    def __getattr__(name: str) -> Any:
        if name in table:
            value = getattr(importlib.import_module(table[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*namespace, *table})

    return __getattr__, __dir__
