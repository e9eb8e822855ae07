"""`reasonrl data synth` entry function."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from reasonrl.cli.data_synth import main, parse_ops


def test_parse_ops() -> None:
    assert parse_ops("2-5") == [2, 3, 4, 5]
    assert parse_ops("2,4,6") == [2, 4, 6]
    assert parse_ops("2-4,3,7") == [2, 3, 4, 7]
    for bad in ("", "a-b", "0-3", "2-"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_ops(bad)


def test_writes_jsonl(tmp_path: Path) -> None:
    out = tmp_path / "d" / "synth.jsonl"
    argv = ["--ops", "2-4", "--per-op", "5", "--context", "zoo,movie", "--mode", "forward,reverse",
            "--seed", "3", "--out", str(out), "--split", "train", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 15 and [r["op"] for r in rows] == [2] * 5 + [3] * 5 + [4] * 5
    assert {r["mode"] for r in rows} == {"forward", "reverse"}
    assert {r["context"] for r in rows} == {"zoo", "movie"}
    assert main(argv) == 0 and [json.loads(x) for x in out.read_text().splitlines()] == rows


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "x.jsonl")
    assert main(["--ops", "2-3", "--per-op", "1", "--out", out, "--context", "mars"]) == 2
    assert main(["--ops", "x", "--per-op", "1", "--out", out]) == 2
    assert main(["--ops", "2", "--per-op", "0", "--out", out]) == 2
    assert main(["--per-op", "1", "--out", out]) == 2
    assert "--context" in capsys.readouterr().err
