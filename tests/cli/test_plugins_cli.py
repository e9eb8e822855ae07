"""`reasonrl train` with a reward and a prompt source named by import path: refused (exit 2,
naming the key, nothing written) when the path does not import; reproduced from config.yaml."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from reasonrl import cli

RECIPE = """\
reward: {kind: cli_plugin_mod:short_reward}
data: {source: cli_plugin_mod:make_source}
rollout: {n: 4, prompts_per_step: 2, max_new_tokens: 12}
algo: {micro_batch_size: 8}
trainer: {steps: 2, out_dir: runs}
"""
MODULE = """\
from reasonrl.data.sources import SynthSource

def short_reward(sample, completion):
    return 1.0 / (1 + len(completion.token_ids))

def make_source(cfg):
    return SynthSource([2, 3], seed=cfg.data.seed + 5)
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "cli_plugin_mod.py").write_text(MODULE)
    (tmp_path / "r.yaml").write_text(RECIPE)
    yield tmp_path
    sys.modules.pop("cli_plugin_mod", None)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("reward.kind=no_such_mod_abc:f", "reward.kind=no_such_mod_abc:f: cannot import"),
        ("data.source=cli_plugin_mod:nope", "data.source=cli_plugin_mod:nope: cli_plugin_mod has"),
        ("reward.kind=python:__main__.f", "reward.kind=python:__main__.f records an object"),
        (
            "reward.kind=combine",  # with components below
            "reward.components[1].kind=cli_plugin_mod:missing",
        ),
    ],
)
def test_a_path_that_does_not_import_exits_2_naming_the_key(
    workdir: Path, capsys: pytest.CaptureFixture[str], override: str, key: str
) -> None:
    extra = ["reward.components=[{kind: math}, {kind: cli_plugin_mod:missing}]"]
    argv = ["train", "r.yaml", override, *(extra if override.endswith("combine") else [])]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert key in err and "r.yaml" in err
    assert not (workdir / "runs").exists()  # refused before the model loads or anything is written


def test_the_default_reward_on_jsonl_data_exits_2(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "d.jsonl").write_text('{"question": "q", "answer": "1"}\n')
    (workdir / "j.yaml").write_text("data: {task: jsonl, train_file: d.jsonl}\n")
    assert cli.main(["train", "j.yaml"]) == 2
    assert "reward.kind=synth_strict (the default) needs data.task=synth" in capsys.readouterr().err


def _rows(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    keys = ("reward/mean", "rollout/len_mean", "actor/loss")
    return [{k: row.get(k) for k in ("step", *keys)} for row in rows]


def test_config_yaml_of_an_import_path_run_reproduces_it(workdir: Path) -> None:
    assert cli.main(["train", "r.yaml"]) == 0
    saved = workdir / "runs/r/config.yaml"
    text = saved.read_text()
    assert "kind: cli_plugin_mod:short_reward" in text
    assert "source: cli_plugin_mod:make_source" in text
    assert cli.main(["train", str(saved), "trainer.run_name=again"]) == 0
    first, again = _rows(workdir / "runs/r"), _rows(workdir / "runs/again")
    assert len(first) == 2 and first == again
    assert all(row["reward/mean"] is not None for row in first)


def test_a_python_reward_fn_with_an_import_path_is_recorded_as_it(workdir: Path) -> None:
    import importlib

    from reasonrl import train

    sys.path.append(str(workdir))
    mod = importlib.import_module("cli_plugin_mod")
    (workdir / "p.yaml").write_text(
        RECIPE.replace("reward: {kind: cli_plugin_mod:short_reward}\n", "")
    )
    state = train("p.yaml", reward_fn=mod.short_reward, source=mod.make_source)
    assert state.step == 2
    saved = workdir / "runs/p/config.yaml"
    assert "kind: cli_plugin_mod:short_reward" in saved.read_text()  # not the default synth_strict
    assert cli.main(["train", str(saved), "trainer.run_name=p2"]) == 0
    assert _rows(workdir / "runs/p") == _rows(workdir / "runs/p2")


def test_a_python_record_resumes_with_the_same_object_and_refuses_without(workdir: Path) -> None:
    from reasonrl import train
    from reasonrl.config import ConfigError

    def local_reward(sample: object, completion: object) -> float:  # no import path
        return 0.5

    (workdir / "p.yaml").write_text(
        RECIPE.replace("reward: {kind: cli_plugin_mod:short_reward}\n", "")
    )
    train("p.yaml", reward_fn=local_reward, overrides=["trainer.steps=1", "trainer.save_every=1"])
    saved = workdir / "runs/p/config.yaml"
    assert "python:tests.cli.test_plugins_cli." in saved.read_text()
    with pytest.raises(ConfigError, match="records an object passed from Python"):
        train(saved, overrides=["trainer.steps=2"], resume=True)
    state = train(saved, reward_fn=local_reward, overrides=["trainer.steps=2"], resume=True)
    assert state.step == 2  # the same record: not a config change
