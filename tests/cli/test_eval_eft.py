"""`reasonrl eval --eft LARGE_BASE SMALL_FT SMALL_BASE`: EFT decoding from the command line."""

from __future__ import annotations

import json

import pytest

from reasonrl import cli

BUILTIN = "builtin:synth-micro"


@pytest.mark.slow  # loads the model 4 times and decodes twice (~30 s of CPU)
def test_eft_with_identical_small_models_is_the_large_base(tmp_path, capsys):
    data = tmp_path / "p.jsonl"
    assert cli.main(["data", "synth", "--ops", "2", "--per-op", "2", "--out", str(data)]) == 0
    common = ["--data", str(data), "--greedy", "--max-new-tokens", "48"]
    assert cli.main(["eval", BUILTIN, *common, "--out", str(tmp_path / "plain")]) == 0
    argv = ["eval", "--eft", BUILTIN, BUILTIN, BUILTIN, "--eft-beta", "2", *common]
    assert cli.main([*argv, "--out", str(tmp_path / "eft")]) == 0
    plain = json.loads((tmp_path / "plain" / "eval.json").read_text())
    eft = json.loads((tmp_path / "eft" / "eval.json").read_text())
    assert eft["settings"]["eft"]["SMALL_FT"] == BUILTIN and eft["settings"]["eft_beta"] == 2.0
    assert eft["overall"]["strict_pass@1"] == plain["overall"]["strict_pass@1"]
    assert [r["lengths"] for r in eft["records"]] == [r["lengths"] for r in plain["records"]]
    capsys.readouterr()


def test_eft_usage_errors_exit_2(tmp_path, capsys):
    data = tmp_path / "p.jsonl"
    data.write_text('{"prompt": "q", "answer": "1"}\n')
    assert cli.main(["eval", "--data", str(data)]) == 2  # neither MODEL nor --eft
    assert "one of the two" in capsys.readouterr().err
    assert cli.main(["eval", BUILTIN, "--eft", BUILTIN, BUILTIN, BUILTIN, "--data", str(data)]) == 2
    capsys.readouterr()
    assert cli.main(["eval", "--eft", BUILTIN, "no/such", BUILTIN, "--data", str(data)]) == 2
    assert "SMALL_FT=no/such" in capsys.readouterr().err
    argv = ["eval", "--eft", BUILTIN, BUILTIN, BUILTIN, "--eft-beta", "-1", "--data", str(data)]
    assert cli.main(argv) == 2
    assert "--eft-beta" in capsys.readouterr().err
