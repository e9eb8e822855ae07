"""What every reasonrl config shares: strict field types, `ConfigModel`, loading and saving.
Rules: every section is a frozen pydantic model with `extra="forbid"`, so an unknown key, a wrong
type, a misspelt variant name (`Literal`) or a value out of its range fails at load time with one
line naming the file, the dotted key, the value and the nearest valid key. Floats are finite
(`.inf` and `.nan` are refused everywhere: no setting means "unbounded" by infinity, None does).
At most two levels of nesting (loading lives in `reasonrl.config.load`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

from pydantic import AllowInfNan, BaseModel, BeforeValidator, ConfigDict, Field, Strict


def _reject_bool(value: Any) -> Any:
    # YAML turns `yes`/`true` into bools and pydantic would silently read them as 1.0.
    if isinstance(value, bool):
        raise ValueError("expected a number, not a boolean")
    return value


# Ints are strict (no "8" or 8.0 or true); floats accept YAML strings like "1e-4", which PyYAML
# does not read as numbers (YAML 1.1 needs a dot: 1.0e-4), but never booleans, and always finite.
Int = Annotated[int, Strict()]
PosInt = Annotated[int, Strict(), Field(ge=1)]
NonNegInt = Annotated[int, Strict(), Field(ge=0)]
Float = Annotated[float, BeforeValidator(_reject_bool), AllowInfNan(False)]
# numpy's legacy seeding (np.random.seed, called by seed_everything) takes 0 .. 2**32 - 1.
SEED_MAX = 2**32 - 1
Seed = Annotated[int, Strict(), Field(ge=0, le=SEED_MAX)]
Bool = Annotated[bool, Strict()]


class ConfigModel(BaseModel):
    """Base of every config section: unknown keys are errors and loaded values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    @classmethod
    def prepare_raw(cls, raw: dict[str, Any], source: Path) -> dict[str, Any]:
        """Hook run on the merged YAML+overrides dict before validation (e.g. the run name)."""
        return raw


def _default(section: ConfigModel, key: str) -> Any:
    return type(section).model_fields[key].get_default(call_default_factory=True)


def _show(value: Any) -> str:
    """A value as an override would write it (YAML flow style)."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, tuple | list):
        return "[" + ",".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def refuse_ignored(section: ConfigModel, prefix: str, keys: Iterable[str], why: str) -> None:
    """Refuse the first of `keys` whose value differs from its default: `why` says what ignores
    it. A key left at its default is never refused (a resolved config.yaml writes every key)."""
    for key in keys:
        value, default = getattr(section, key), _default(section, key)
        if value != default:
            raise ValueError(
                f"{prefix}.{key}={_show(value)} is ignored {why}, so it would silently do "
                f"nothing; remove it, or override {prefix}.{key}={_show(default)} (its default)"
            )
