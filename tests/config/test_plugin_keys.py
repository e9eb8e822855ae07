"""reward.kind by import path, reward.components (kind=combine) and data.source: their format
is checked when the config loads (importability is checked by `reasonrl train`, tests/cli)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasonrl.config import ConfigError, RLConfig, load_config, save_resolved


def _load(tmp_path: Path, *overrides: str) -> RLConfig:
    recipe = tmp_path / "r.yaml"
    if not recipe.exists():
        recipe.write_text("trainer: {steps: 2}\n")
    return load_config(recipe, overrides)


@pytest.mark.parametrize(
    "kind", ["math", "synth_process", "my_rewards:score", "pkg.sub.mod:Class.method", "combine"]
)
def test_reward_kinds_that_load(tmp_path: Path, kind: str) -> None:
    extra = ["reward.components=[{kind: math, weight: 2.0}]"] if kind == "combine" else []
    cfg = _load(tmp_path, f"reward.kind={kind}", "data.task=synth", *extra)
    assert cfg.reward.kind == kind


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ("reward.kind=mathh", "did you mean 'math'?"),
        ("reward.kind=a:b:c", "exactly one ':'"),
        ("reward.kind=:f", "not an import path"),
        ("reward.kind='mod:'", "not an import path"),
        ("reward.kind=my-mod:f", "not an import path"),
        ("reward.kind=combine", "needs reward.components"),
        ("reward.components=[{kind: math}]", "only with reward.kind=combine"),
        ("data.source=not_a_path", "data.source='not_a_path' is not an import path"),
    ],
)
def test_malformed_kinds_and_sources_fail_at_load(tmp_path: Path, override: str, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, override)
    assert says in str(err.value)
    assert "\n" not in str(err.value)


def test_components_are_checked_like_kinds(tmp_path: Path) -> None:
    base = "reward.kind=combine"
    for comps, says in [
        ("[{kind: combine}]", "cannot itself be combine"),
        ("[{kind: nope}]", "expected one of"),
        ("[{kind: math, weight: 1.0}, {kind: m:f, weight: -1.0}]", "sum to zero"),
        ("[{kind: math, wieght: 1.0}]", "unknown key"),
    ]:
        with pytest.raises(ConfigError, match=says):
            _load(tmp_path, base, f"reward.components={comps}")
    # a synth component needs the synthetic task, like reward.kind; alpha counts as read by it
    with pytest.raises(ValueError, match=r"reward\.components\[0\]\.kind=synth_strict needs"):
        RLConfig.model_validate({
            "data": {"task": "jsonl", "train_file": "x.jsonl"},
            "reward": {"kind": "combine", "components": [{"kind": "synth_strict"}]},
        })  # fmt: skip
    cfg = _load(tmp_path, base, "reward.components=[{kind: synth_process}]", "reward.alpha=0.5")
    assert cfg.reward.alpha == 0.5


def test_the_default_reward_kind_is_not_a_placeholder_to_fill(tmp_path: Path) -> None:
    # the default (synth_strict) does not block loading a jsonl config: a Python run may pass a
    # reward_fn; the reward's build and `reasonrl train` refuse it (tests/rl, tests/cli)
    cfg = _load(tmp_path, "data.task=jsonl", "data.train_file=x.jsonl")
    assert "(the default) needs data.task=synth" in (cfg.reward_problem() or "")
    with pytest.raises(ConfigError, match=r"needs data\.task=synth"):  # written: refused at load
        _load(tmp_path, "data.task=jsonl", "data.train_file=x.jsonl", "reward.kind=synth_strict")


def test_data_source_makes_train_file_optional(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "data.task=jsonl", "data.source=my_data:make", "reward.kind=math")
    assert cfg.data.source == "my_data:make" and cfg.data.train_file is None
    with pytest.raises(ConfigError, match=r"needs data\.train_file"):
        _load(tmp_path, "data.task=jsonl", "reward.kind=math")


def test_import_paths_and_components_survive_config_yaml(tmp_path: Path) -> None:
    cfg = _load(
        tmp_path,
        "reward.kind=combine",
        "reward.components=[{kind: my_rewards:a, weight: 1.0}, {kind: math, weight: 0.5}]",
        "data.source=my_data:make",
        "reward.alpha=0.2",
    )
    saved = save_resolved(cfg, tmp_path / "run")
    again = load_config(saved)
    assert again == cfg
    assert "kind: my_rewards:a" in saved.read_text()
