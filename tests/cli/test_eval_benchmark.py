"""`reasonrl eval --benchmark`, `--field`, `--limit` and the prompt-format flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reasonrl.cli import eval as eval_cli
from reasonrl.cli.eval import BENCHMARK_NAMES, main
from reasonrl.data.benchmarks import BENCHMARKS
from reasonrl.eval.evaluate import BENCHMARK_REWARDS
from reasonrl.rewards import REWARDS

FAST = ["--max-new-tokens", "4", "--greedy", "--threads", "1"]


@pytest.fixture
def no_model_load(monkeypatch):
    """Fail the test if the model would load (the checks must come first)."""

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr("reasonrl.models.io.load_policy", refuse)


def test_every_benchmark_has_a_reward_and_short_names_resolve():
    assert set(BENCHMARK_REWARDS) == set(BENCHMARKS)
    assert set(BENCHMARK_REWARDS.values()) <= set(REWARDS)
    assert set(BENCHMARK_NAMES.values()) <= set(BENCHMARKS)
    assert {BENCHMARK_REWARDS[BENCHMARK_NAMES[n]] for n in ("gsm8k", "math", "aime")} == {"math"}
    assert BENCHMARK_REWARDS["humaneval"] == "code_tests"
    assert BENCHMARK_REWARDS["countdown"] == "countdown"


def test_benchmark_gsm8k_reads_the_file_and_runs(shared_data, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["builtin:synth-micro", "--benchmark", "gsm8k", "--limit", "2", *FAST]
    assert main([*argv, "--data-dir", str(shared_data), "--out", str(out)]) == 0
    result = json.loads((out / "eval.json").read_text())
    s = result["settings"]
    assert s["problems"] == 2 and s["benchmark"] == "gsm8k_test" and s["reward"] == "math"
    assert s["data"] == str((shared_data / "gsm8k" / "test.jsonl").resolve())
    assert "template" not in s  # the default format (as is) is not recorded
    assert "| all | 2 |" in capsys.readouterr().out


def test_bad_data_dir_exits_2_before_the_model_loads(tmp_path, capsys, no_model_load):
    argv = ["builtin:synth-micro", "--benchmark", "gsm8k"]
    assert main([*argv, "--data-dir", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--data-dir=" in err and "is not a directory" in err
    assert main([*argv, "--data-dir", str(tmp_path)]) == 2  # a folder without gsm8k/test.jsonl
    assert "has no gsm8k/test.jsonl" in capsys.readouterr().err


def test_bad_flags_exit_2_before_the_model_loads(tmp_path, capsys, no_model_load):
    data = tmp_path / "p.jsonl"
    data.write_text(json.dumps({"question": "1 + 1", "answer": "2"}) + "\n")
    base = ["builtin:synth-micro", "--data", str(data), "--field", "prompt=question"]
    assert main([*base, "--template", "bogus"]) == 2
    assert "unknown template" in capsys.readouterr().err
    assert main([*base, "--template", "Answer: {answer}"]) == 2
    assert "no {question}" in capsys.readouterr().err
    assert main([*base, "--system-prompt", "Be brief."]) == 2
    assert "needs template=chat" in capsys.readouterr().err
    assert main([*base, "--field", "prompt=missing"]) == 2
    assert "missing" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: NAME must be prompt/answer/id
        main([*base, "--field", "bogus=question"])
    bench = ["builtin:synth-micro", "--benchmark", "gsm8k", "--data-dir", str(tmp_path)]
    assert main([*bench, "--field", "prompt=question"]) == 2  # checked before the files
    assert "--field maps the columns of --data" in capsys.readouterr().err


def test_field_mapping_template_and_limit(tmp_path, capsys):
    data = tmp_path / "p.jsonl"
    rows = [{"question": f"{i} + 1", "answer": str(i + 1), "level": i} for i in range(3)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    argv = ["builtin:synth-micro", "--data", str(data), "--field", "prompt=question",
            "--field", "answer=answer", "--reward", "math", "--template", "L{level}: {question}",
            "--instruction", "boxed", "--limit", "2", "--out", str(out), *FAST]  # fmt: skip
    assert main(argv) == 0
    s = json.loads((out / "eval.json").read_text())["settings"]
    assert s["problems"] == 2 and s["reward"] == "math"
    assert (s["template"], s["instruction"]) == ("L{level}: {question}", "boxed")


def test_default_data_dir_falls_back_to_the_checkout(shared_data, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # ../shared/data does not exist from here
    here = Path(eval_cli.__file__).resolve().parents[4] / "shared" / "data"
    if not here.is_dir():
        pytest.skip("no shared/data beside this checkout")
    path = eval_cli.benchmark_file("gsm8k", eval_cli.DEFAULT_DATA_DIR)
    assert path == here / "gsm8k" / "test.jsonl"


def test_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: ../shared/data)" in text and "(default: none)" in text
    assert "gsm8k, math, aime, humaneval, countdown" in text
