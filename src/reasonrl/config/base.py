"""What every reasonrl config shares: strict field types, `ConfigModel`, loading and saving.
Rules: every section is a frozen pydantic model with `extra="forbid"`, so an unknown key, a wrong
type or a misspelt variant name (`Literal`) fails at load time with one line naming the file, the
dotted key, the value and the nearest valid key. At most two levels of nesting
(loading lives in `reasonrl.config.load`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict


def _reject_bool(value: Any) -> Any:
    # YAML turns `yes`/`true` into bools and pydantic would silently read them as 1.0.
    if isinstance(value, bool):
        raise ValueError("expected a number, not a boolean")
    return value


# Ints are strict (no "8" or 8.0 or true); floats accept YAML strings like "1e-4", which PyYAML
# does not read as numbers (YAML 1.1 needs a dot: 1.0e-4), but never booleans.
Int = Annotated[int, Strict()]
PosInt = Annotated[int, Strict(), Field(ge=1)]
NonNegInt = Annotated[int, Strict(), Field(ge=0)]
Float = Annotated[float, BeforeValidator(_reject_bool)]
Bool = Annotated[bool, Strict()]


class ConfigModel(BaseModel):
    """Base of every config section: unknown keys are errors and loaded values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    @classmethod
    def prepare_raw(cls, raw: dict[str, Any], source: Path) -> dict[str, Any]:
        """Hook run on the merged YAML+overrides dict before validation (e.g. the run name)."""
        return raw
