"""Load a recipe (YAML + dotted overrides) into a validated config; save the resolved config.

cfg = load_config("recipes/grpo.yaml", ["algo.clip_high=0.28", "rollout.n=8"])
cfg = load_config("recipes/pretrain_synth_micro.yaml", schema=SFTConfig)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from reasonrl.config.base import ConfigModel
from reasonrl.config.errors import ConfigError, format_validation_error
from reasonrl.config.rl import RLConfig
from reasonrl.config.yaml_io import apply_override, parse_override, read_yaml

M = TypeVar("M", bound=ConfigModel)


def load_config(path: str | Path, overrides: Sequence[str] = (), schema: type[M] = RLConfig) -> M:
    """Load a YAML recipe, apply dotted `key=value` overrides and validate against `schema`.

    Raises:
        ConfigError: one line naming the file, the dotted key, the value and (for typos) the
            nearest valid key: missing file, bad YAML, bad override, unknown key, wrong type,
            invalid combination.
    """
    source = Path(path)
    raw = read_yaml(source)
    origins: dict[str, str] = {}
    for text in overrides:
        try:
            parts, value = parse_override(text)
            apply_override(raw, parts, value, text)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        origins[".".join(parts)] = text
    try:
        raw = schema.prepare_raw(raw, source)
        return schema.model_validate(raw)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, schema, source, origins)) from None


def save_resolved(config: BaseModel, run_dir: str | Path) -> Path:
    """Write the fully resolved config to `run_dir/config.yaml` (atomically) and return its path.

    The file reloads with `load_config` to an equal config (presets already expanded).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    target = run_dir / "config.yaml"
    text = "# Resolved configuration of this run (presets expanded, derived values filled).\n"
    text += yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    fd, tmp = tempfile.mkstemp(dir=run_dir, prefix=".config.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, target)
    return target
