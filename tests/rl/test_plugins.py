"""Rewards and prompt sources named by import path, and what a Python-API run records for the
objects passed to train() (rl/plugins.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from reasonrl.config import ConfigError, RLConfig
from reasonrl.rl.plugins import describe, load_import_path, record_python_objects, resolve_config
from reasonrl.types import Completion, Sample


def module_reward(sample: Sample, completion: Completion) -> float:
    return 1.0


class ModuleSource:
    def __init__(self, cfg: RLConfig) -> None:
        self.cfg = cfg


def test_load_import_path_returns_the_callable() -> None:
    assert load_import_path("json:dumps", "reward.kind") is json.dumps
    assert load_import_path("os.path:join", "reward.kind").__name__ == "join"
    assert load_import_path(f"{__name__}:ModuleSource", "data.source") is ModuleSource


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("no_such_module_xyz:f", "cannot import no_such_module_xyz"),
        ("json:no_such_name", "json has no attribute no_such_name"),
        ("math:pi", "not callable"),
        ("python:__main__.f", "passed from Python"),
    ],
)
def test_load_import_path_refusals_name_the_key(spec: str, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_import_path(spec, "reward.components[1].kind")
    assert str(err.value).startswith(f"reward.components[1].kind={spec}")
    assert says in str(err.value)


def test_a_module_in_the_current_directory_imports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cwd_reward_mod.py").write_text("def r(sample, completion):\n    return 0.5\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    try:
        assert load_import_path("cwd_reward_mod:r", "reward.kind")(None, None) == 0.5
        assert sys.path[-1] == str(tmp_path)  # appended: never shadows an installed module
    finally:
        sys.modules.pop("cwd_reward_mod", None)


def test_describe_gives_an_import_path_only_when_it_imports_back() -> None:
    def local(sample: Sample, completion: Completion) -> float:
        return 0.0

    assert describe(module_reward) == f"{__name__}:module_reward"
    assert describe(ModuleSource) == f"{__name__}:ModuleSource"
    assert describe(local).startswith(f"python:{__name__}.")
    assert "<locals>" in describe(local)
    assert describe(lambda s, c: 0.0).startswith("python:")
    assert describe(ModuleSource(RLConfig())) == f"python:{__name__}.ModuleSource"  # an object


def test_record_python_objects_writes_what_ran() -> None:
    cfg = RLConfig()
    assert record_python_objects(cfg) is cfg
    got = record_python_objects(cfg, reward_fn=module_reward, source=ModuleSource)
    assert got.reward.kind == f"{__name__}:module_reward"
    assert got.data.source == f"{__name__}:ModuleSource"
    # a jsonl config with the default (synth) reward.kind loads: reward_fn replaces it
    jsonl = RLConfig.model_validate({"data": {"task": "jsonl", "train_file": "x.jsonl"}})
    assert jsonl.reward_problem() is not None
    recorded = record_python_objects(jsonl, reward_fn=lambda s, c: 1.0)
    assert recorded.reward.kind.startswith("python:") and recorded.reward_problem() is None


def test_record_python_objects_refuses_what_the_replaced_reward_read() -> None:
    cfg = RLConfig.model_validate({"reward": {"kind": "synth_process", "alpha": 0.5}})
    with pytest.raises(ConfigError, match=r"reward\.alpha=0\.5 is ignored"):
        record_python_objects(cfg, reward_fn=module_reward)
    with pytest.raises(TypeError, match="callable"):
        record_python_objects(RLConfig(), reward_fn="math")  # type: ignore[arg-type]


def test_resolve_config_takes_a_config_or_a_recipe(tmp_path: Path) -> None:
    cfg = RLConfig()
    assert resolve_config(cfg) is cfg
    recipe = tmp_path / "r.yaml"
    recipe.write_text("rollout: {n: 4}\n")
    assert resolve_config(recipe, ("rollout.n=2",)).rollout.n == 2
    with pytest.raises(TypeError):
        resolve_config(cfg, ("rollout.n=2",))
