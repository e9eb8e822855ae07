"""Turn YAML, override and pydantic failures into one readable line.

Every message names the file, the dotted key, the offending value and, for typos, the nearest
valid key or choice (difflib). Users see exactly one line; the CLI prints it and exits 2.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError


class ConfigError(ValueError):
    """A configuration problem, with a one-line message naming file, key and value."""


def dotted(loc: Sequence[str | int]) -> str:
    """`("data", "ops", 2)` -> `"data.ops[2]"`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def short(value: Any, limit: int = 60) -> str:
    """repr of a value, cut to one short line."""
    text = repr(value).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def nearest(word: str, choices: Sequence[str]) -> str | None:
    """The closest choice to `word`, or None when nothing is close."""
    hits = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return hits[0] if hits else None


def _model_at(schema: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The nested model class that owns the key at `loc` (loc excludes that key)."""
    model: type[BaseModel] = schema
    for part in loc:
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None) if field else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return None
        model = ann
    return model


def _unknown_key(schema: type[BaseModel], loc: Sequence[str | int]) -> str:
    owner = _model_at(schema, loc[:-1])
    valid = sorted(owner.model_fields) if owner else []
    guess = nearest(str(loc[-1]), valid)
    if guess:
        return f"unknown key; did you mean '{dotted([*loc[:-1], guess])}'?"
    return "unknown key; valid keys here: " + ", ".join(valid)


def _choices_hint(error: Mapping[str, Any]) -> str:
    expected = str(error.get("ctx", {}).get("expected", ""))
    choices = re.findall(r"'([^']*)'", expected)
    value = error.get("input")
    guess = nearest(value, choices) if isinstance(value, str) else None
    text = f"expected one of {', '.join(choices)}"
    return text + (f"; did you mean '{guess}'?" if guess else "")


def describe(error: Mapping[str, Any], schema: type[BaseModel]) -> str:
    """The problem part of the message for one pydantic error dict."""
    kind = error["type"]
    loc = error["loc"]
    if kind == "extra_forbidden":
        return _unknown_key(schema, loc)
    if kind == "missing":
        return "missing item" if isinstance(loc[-1], int) else "missing required key"
    if kind == "literal_error":
        return _choices_hint(error)
    msg = str(error["msg"])
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def format_validation_error(
    exc: ValidationError,
    schema: type[BaseModel],
    source: Path,
    overrides: Mapping[str, str],
) -> str:
    """One line: `FILE: KEY: problem (got VALUE) [from override K=V] (+n more)`."""
    errors = exc.errors()
    first = errors[0]
    loc = tuple(first["loc"])
    key = dotted(loc)
    parts = [str(source)]
    # Cross-field validators report on the whole section and name their keys themselves.
    whole_section = first["type"] == "value_error" and isinstance(first.get("input"), Mapping)
    if key and not whole_section:
        parts.append(key)
    problem = describe(first, schema)
    # A model-level validator gets the whole section as input: repeating it adds nothing.
    if first["type"] != "missing" and not isinstance(first.get("input"), Mapping):
        problem += f" (got {short(first.get('input'))})"
    line = ": ".join(parts) + ": " + problem
    origin = _override_origin(key, overrides)
    if origin:
        line += f" [from override {origin}]"
    if len(errors) > 1:
        line += f" (+{len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return line


def _override_origin(key: str, overrides: Mapping[str, str]) -> str | None:
    for okey, text in overrides.items():
        if key and (key == okey or key.startswith(okey + ".") or key.startswith(okey + "[")):
            return text
    return None
