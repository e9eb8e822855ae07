"""The `reasonrl` command: exit codes, one-line config errors, no run dir on error, dispatch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reasonrl import cli
from reasonrl.cli import common
from reasonrl.config import RLConfig

GOOD = "trainer:\n  out_dir: runs\n  steps: 2\n"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "typo.yaml").write_text(GOOD + "rollout:\n  temprature: 0.7\n")
    return tmp_path


@pytest.fixture
def fake_train(monkeypatch: pytest.MonkeyPatch) -> list[tuple[RLConfig, bool]]:
    """Replace the loop: record calls, create the run dir as the real loop would."""
    calls: list[tuple[RLConfig, bool]] = []

    def train_main(cfg: RLConfig, *, resume: bool = False, **_: object) -> None:
        calls.append((cfg, resume))
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
        (cfg.run_dir / "config.yaml").write_text("x: 1\n")

    real_load = common.load_target
    monkeypatch.setattr(
        common, "load_target", lambda t: train_main if t.endswith(":train_main") else real_load(t)
    )
    return calls


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["train", "typo.yaml"], ["typo.yaml", "rollout.temprature", "'rollout.temperature'"]),
        (["train", "good.yaml", "rollout.n=eight"], ["good.yaml", "rollout.n", "'eight'"]),
        (["train", "good.yaml", "rollout.n"], ["bad override", "'rollout.n'"]),
        (["train", "missing.yaml"], ["missing.yaml", "not found"]),
        (["train", "good.yaml", "algo.micro_batch_size=7"], ["not divisible", "=7"]),
    ],
    ids=["unknown-key", "wrong-type", "override-syntax", "missing-file", "combination"],
)
def test_config_errors_exit_2_one_line_no_run_dir(
    workdir: Path,
    fake_train: list[Any],
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    needles: list[str],
) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("reasonrl: error: ")
    for needle in needles:
        assert needle in err
    assert not (workdir / "runs").exists() and fake_train == []


def test_train_calls_loop_and_refuses_to_clobber(
    workdir: Path, fake_train: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["train", "good.yaml", "rollout.n=4"]) == 0
    cfg, resume = fake_train[0]
    assert cfg.rollout.n == 4 and resume is False
    assert cfg.run_dir == Path("runs/good")
    # Same run name again without --resume: a usage error, and the loop is not called.
    assert cli.main(["train", "good.yaml"]) == 2
    assert "--resume" in capsys.readouterr().err and len(fake_train) == 1
    assert cli.main(["train", "good.yaml", "--resume"]) == 0
    assert fake_train[-1][1] is True


def test_run_failure_exits_1(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(cfg: RLConfig, *, resume: bool = False, **_: object) -> None:
        raise RuntimeError("loss is NaN at step 3")

    real_load = common.load_target
    monkeypatch.setattr(
        common, "load_target", lambda t: boom if t.endswith(":train_main") else real_load(t)
    )
    assert cli.main(["train", "good.yaml"]) == 1
    assert "RuntimeError: loss is NaN at step 3" in capsys.readouterr().err


def test_delegation(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, list[str]]] = []

    def fake_load(target: str) -> Any:
        return lambda argv: seen.append((target, argv)) or 0

    monkeypatch.setattr(common, "load_target", fake_load)
    assert cli.main(["data", "synth", "--ops", "3"]) == 0
    assert cli.main(["eval", "--help"]) == 0  # --help belongs to the delegate's parser
    assert cli.main(["sft", "recipes/sft.yaml"]) == 0
    assert cli.main(["quickstart"]) == 0
    assert seen == [
        ("reasonrl.cli.data_synth:main", ["--ops", "3"]),
        ("reasonrl.cli.eval:main", ["--help"]),
        ("reasonrl.cli.sft:main", ["recipes/sft.yaml"]),
        ("reasonrl.cli.quickstart:main", []),
    ]


def test_missing_delegate_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(cli.UsageError, match="not available"):
        common.load_target("reasonrl.no_such_module:main")


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert cli.main(["trian"]) == 2
    assert cli.main(["data", "nope"]) == 2
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("train", "eval", "quickstart", "sft", "data", "report", "recipes"):
        assert command in out


def test_recipes_listing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "b.yaml").write_text("# Purpose: second one\n# Hardware: CPU\nx: 1\n")
    (tmp_path / "a.yaml").write_text("#\n# first one\nx: 1\n")
    assert cli.main(["recipes", "--dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == ["a  first one", "b  second one"]
    assert cli.main(["recipes", "--dir", str(tmp_path / "none")]) == 2


def test_report_missing_run_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", str(tmp_path / "nope")]) == 2
    assert "no such run directory" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["train", "eval", "sft", "rm", "dpo", "export", "quickstart"])
def test_subcommand_help_imports_nothing_heavy(command: str) -> None:
    code = "import sys; from reasonrl.cli import main\ntry: main([sys.argv[1], '--help'])\n"
    code += "except SystemExit as e: assert e.code == 0\nassert 'torch' not in sys.modules"
    proc = subprocess.run([sys.executable, "-c", code, command], capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()[-500:]


def test_console_entry_point_exit_codes(tmp_path: Path) -> None:
    # A real process: the exit status reaches the shell, and --help imports nothing heavy.
    code = "import sys; from reasonrl.cli import main; r = main(sys.argv[1:]); "
    code += "assert r or not {'torch', 'pydantic', 'yaml'} & set(sys.modules); sys.exit(r)"
    run = [sys.executable, "-c", code]
    assert subprocess.run([*run, "--help"], capture_output=True).returncode == 0
    (tmp_path / "bad.yaml").write_text("rollout:\n  n: [\n")
    proc = subprocess.run([*run, "train", "bad.yaml"], capture_output=True, cwd=tmp_path)
    assert proc.returncode == 2 and b"invalid YAML at line" in proc.stderr
    assert not (tmp_path / "runs").exists()
