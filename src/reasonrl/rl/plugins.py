"""User code named by import path: `reward.kind: my_rewards:format_reward`,
`data.source: my_data:make_source`, and what a run records for objects passed from Python.

`load_import_path` is the one place such a path is imported (by `rl/build.py` when the run starts
and by `reasonrl train`'s checks before the model loads, so a path that does not import exits 2
naming its key). `record_python_objects` writes a Python-API run's `reward_fn=` / `source=` into
the config it saves, so config.yaml says what ran: the object's own import path when it has one
(`module:qualname` that imports back to the same object: `reasonrl train runs/X/config.yaml`
reproduces the run), else `python:module.qualname`, a record that names the object and refuses to
load without it (a function defined in `__main__`, a notebook or a closure cannot be imported).

No torch here: the command's checks import this module before anything heavy.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reasonrl.config import ConfigError, RLConfig, load_config
from reasonrl.config.errors import format_validation_error
from reasonrl.config.rl import PYTHON_PREFIX


def load_import_path(spec: str, key: str) -> Any:
    """The callable `module.path:attr.sub` names, the module imported from sys.path or the
    current directory; ConfigError naming `key` when it cannot be had (a `python:` record, a
    module that does not import, a missing attribute, an object that is not callable)."""
    if spec.startswith(PYTHON_PREFIX):
        raise ConfigError(
            f"{key}={spec} records an object passed from Python (train(reward_fn=...) or "
            "train(source=...)), which cannot be imported; pass the same object again, or set "
            f"{key}=module.path:name to a module-level definition"
        )
    module_name, _, attr = spec.partition(":")
    here = os.getcwd()  # as `python -m` would: a module beside the recipe's caller imports
    if here not in sys.path and "" not in sys.path:
        sys.path.append(here)  # last, so it never shadows an installed module
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or whatever the module's own code raised
        raise ConfigError(
            f"{key}={spec}: cannot import {module_name}: {type(exc).__name__}: {exc} (is its "
            "folder on PYTHONPATH, or the current directory?)"
        ) from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"{key}={spec}: {module_name} has no attribute {attr}") from None
    if not callable(obj):
        raise ConfigError(f"{key}={spec}: {attr} is a {type(obj).__name__}, not callable")
    return obj


def describe(obj: object) -> str:
    """`module:qualname` when that imports back to `obj` itself, else `python:module.qualname`."""
    named = obj if hasattr(obj, "__qualname__") else type(obj)
    module = getattr(named, "__module__", None) or "?"
    qualname = getattr(named, "__qualname__", None) or type(obj).__name__
    if named is obj and module != "__main__" and "<" not in qualname:
        try:
            found: Any = importlib.import_module(module)
            for part in qualname.split("."):
                found = getattr(found, part)
        except Exception:
            found = None
        if found is obj:
            return f"{module}:{qualname}"
    return f"{PYTHON_PREFIX}{module}.{qualname}"


def resolve_config(cfg_or_path: RLConfig | str | Path, overrides: tuple[str, ...] = ()) -> RLConfig:
    """An RLConfig as given, or loaded from a recipe path with dotted overrides."""
    if isinstance(cfg_or_path, RLConfig):
        if overrides:
            raise TypeError("overrides apply to a recipe path; edit the RLConfig itself instead")
        return cfg_or_path
    return load_config(cfg_or_path, overrides)


def record_python_objects(
    cfg: RLConfig, *, reward_fn: object = None, source: object = None
) -> RLConfig:
    """`cfg` with `reward.kind` / `data.source` naming the objects passed from Python (`describe`),
    validated again: a setting the replaced reward read (reward.alpha, reward.components) is
    refused like any other ignored setting. Unchanged when neither is given."""
    if reward_fn is None and source is None:
        return cfg
    raw = cfg.model_dump(mode="json")
    if reward_fn is not None:
        if not callable(reward_fn):
            raise TypeError(f"reward_fn must be callable, got {type(reward_fn).__name__}")
        raw["reward"]["kind"] = describe(reward_fn)
    if source is not None:
        raw["data"]["source"] = describe(source)
    try:
        return RLConfig.model_validate(raw)
    except ValidationError as exc:
        where = Path("train(reward_fn=..., source=...)")
        raise ConfigError(format_validation_error(exc, RLConfig, where, {})) from None
