"""StepProgress outside a terminal: plain step lines at step 1, every N steps and the last."""

from __future__ import annotations

import pytest

from reasonrl.runtime import progress
from reasonrl.runtime.progress import StepProgress, clock


def test_clock() -> None:
    assert clock(0) == "0:00:00" and clock(187.4) == "0:03:07"
    assert clock(3600 * 26 + 61) == "26:01:01"
    assert clock(float("nan")) == "?" and clock(float("inf")) == "?" and clock(-1) == "?"


def test_plain_lines_every_n_steps(capsys: pytest.CaptureFixture[str]) -> None:
    with StepProgress(12, every=5) as bar:
        assert not bar.live and bar.plain  # pytest's stderr is not a terminal
        bar.log("banner")
        for step in range(1, 13):
            bar.update(step, f"loss {step}")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "banner"
    assert [ln.split(" | ")[:2] for ln in lines[1:]] == [
        ["step 1/12", "loss 1"], ["step 5/12", "loss 5"], ["step 10/12", "loss 10"],
        ["step 12/12", "loss 12"],
    ]  # fmt: skip
    assert all(" | elapsed " in ln and " | ETA " in ln for ln in lines[1:])


def test_no_step_lines_without_every(capsys: pytest.CaptureFixture[str]) -> None:
    with StepProgress(3, label="SFT") as bar:  # SFT prints its own lines through log()
        for step in (1, 2, 3):
            bar.update(step, "x")
    assert capsys.readouterr().out == ""


def test_eta_from_the_step_rate_and_the_time_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    bar = StepProgress(100, initial=40, every=10)  # a resumed run: the rate counts from step 40
    now[0] += 20.0  # 10 steps in 20 s
    assert bar.step_line(50, "r 1") == "step 50/100 | r 1 | elapsed 0:00:20 | ETA 0:01:40"
    assert bar.step_line(40).endswith("ETA ?")
    capped = StepProgress(100, every=10, time_budget_s=30.0)
    now[0] += 20.0
    assert capped.step_line(10).endswith("elapsed 0:00:20 | ETA 0:00:10")  # budget ends first
