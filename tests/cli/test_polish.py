"""CLI polish: --version, train --print-config, a command's own usage on a bad flag, defaults in
every --help."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reasonrl import cli
from reasonrl.cli import common
from reasonrl.config import RLConfig, load_config

GOOD = "trainer: {out_dir: runs, steps: 2}\nalgo: {preset: dapo}\nrollout: {max_new_tokens: 5000}\n"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    import reasonrl

    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"reasonrl {cli.version()}"
    assert cli.version() == reasonrl.__version__  # the installed metadata agrees with the source


def test_print_config_prints_resolved_yaml_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.yaml").write_text(GOOD)
    loaded: list[str] = []
    real_load = common.load_target
    monkeypatch.setattr(common, "load_target", lambda t: loaded.append(t) or real_load(t))
    # the model path does not even exist: nothing is checked or loaded
    argv = ["train", "r.yaml", "rollout.n=4", "model.path=/no/such/model", "--print-config"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    resolved = RLConfig.model_validate(yaml.safe_load(out))
    assert resolved == load_config(tmp_path / "r.yaml", argv[2:4])
    assert resolved.rollout.n == 4 and resolved.algo.clip_high == 0.28  # the dapo preset, expanded
    assert list(tmp_path.iterdir()) == [tmp_path / "r.yaml"]  # no run directory
    assert loaded == ["reasonrl.cli.train:main"]  # the command only, never the training loop


@pytest.mark.parametrize(
    "argv",
    [["train", "r.yaml", "--bogus"], ["--bogus", "train", "r.yaml"], ["train", "--steps", "3"]],
)
def test_bad_flag_on_train_prints_train_usage(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: reasonrl train ") and "reasonrl train: error:" in err


def test_flags_before_the_command_reach_it(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(common, "load_target", lambda t: lambda argv: seen.append(argv) or 0)
    assert cli.main(["--resume", "train", "r.yaml"]) == 0
    assert seen == [["r.yaml", "--resume"]]


@pytest.mark.parametrize(
    ("command", "defaults"),
    [
        (["train"], []),
        (["eval"], ["--samples SAMPLES", "(default: 8)", "(default: 1.0)", "(default: 256)",
                    "(default: fp32)", "(default: 0)"]),
        (["data", "synth"], ["(default: zoo)", "(default: forward)", "(default: all)"]),
        (["quickstart"], ["(default: 0)"]),
        (["report"], ["(default: 200)"]),
        (["recipes"], ["(default ./recipes)"]),
        (["sft"], []),
    ],
)  # fmt: skip
def test_help_shows_defaults(
    command: list[str], defaults: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([*command, "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # unwrap argparse's line breaks
    assert out.startswith(f"usage: reasonrl {' '.join(command)} ")
    for needle in defaults:
        assert needle in out, needle
    assert "(default: None)" not in out and "(default: False)" not in out
