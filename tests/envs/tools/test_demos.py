"""Tool-using demonstrations (`reasonrl data synth --tool-traces`): their observations are what
the Python tool answers at RL time, and the CLI writes behaviour-rich rows that score 1."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from reasonrl.cli import data_synth
from reasonrl.envs.tools import CalculatorTool, PythonTool, TagFormat
from reasonrl.rewards.sandbox import detect_mode
from reasonrl.tasks.synth import row_to_sample
from reasonrl.tasks.synth.reward import synth_reward
from reasonrl.tasks.synth.tooltrace import BehaviourMix, tag_behaviours, tool_trace

CELL = re.compile(r"<code>(.*?)</code>", re.DOTALL)


@pytest.mark.skipif(detect_mode() in ("uid", "none"), reason="no namespaces here")
def test_calculator_answers_demo_cells_exactly_like_the_python_tool() -> None:
    fmt, calc = TagFormat(), CalculatorTool().open()
    trace = (
        "Define a as a; so a = 312 * b = 312 * 417 = 130104. Define c as c; so c = a + d = "
        "130104 + 9 = 130113; so e = 7 - 9 = -2. Answer: 130113."
    )
    text = tool_trace(trace, random.Random(0), lambda c: fmt.render(calc.call(c)), BehaviourMix(
        verify=0.34, recheck=0.33, recover=0.33
    ))  # fmt: skip
    cells = [c.strip() for c in CELL.findall(text)]
    assert len(cells) >= 4
    py = PythonTool().open()
    for cell in cells:
        assert fmt.render(py.call(cell)) == fmt.render(calc.call(cell)), cell


def test_cli_writes_behaviour_rich_tool_rows_that_score_one(tmp_path: Path) -> None:
    out = tmp_path / "tools.jsonl"
    argv = ["--ops", "3-4", "--per-op", "15", "--magnitude", "large", "--tool-traces",
            "--behaviour-rich", "--out", str(out), "--no-progress", "--seed", "1"]  # fmt: skip
    assert data_synth.main(argv) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert 10 <= len(rows) < 30  # rows without any numeric step cannot be rich: dropped
    for row in rows:
        b = row["behaviours"]
        assert b == tag_behaviours(row["completion"])
        assert b["verifications"] + b["recoveries"] >= 1 and b["calls"] >= 2
        assert "<code>" in row["completion"] and "<code>" not in row["trace"]
        result = synth_reward(row_to_sample(row), row["completion"], strict=True)
        assert result.score == 1.0, row["completion"]
    assert data_synth.main([*argv[:-2], "--seed", "1", "--out", str(out)]) == 0  # deterministic
    assert [json.loads(x) for x in out.read_text().splitlines()] == rows
    assert data_synth.main(["--ops", "3", "--per-op", "2", "--behaviour-rich", "--out",
                            str(out)]) == 2  # fmt: skip
