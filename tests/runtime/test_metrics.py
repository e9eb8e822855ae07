"""Metric reduction and the jsonl / console / TensorBoard / samples sinks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from reasonrl.runtime.metrics import (
    MetricsLogger,
    SampleLogger,
    reduce_metrics,
    truncate_jsonl,
)
from reasonrl.types import Completion, RewardResult, Rollout, Sample


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_reduce_metrics_means_and_weights() -> None:
    rows = [
        {"actor/loss": torch.tensor(1.0, requires_grad=True) * 2, "actor/clipfrac": 0.5},
        {"actor/loss": torch.tensor(4.0), "actor/entropy": torch.tensor([1.0, 3.0])},
    ]
    # loss: (2 + 4) / 2 = 3; clipfrac only in row 0: 0.5; entropy: mean([1, 3]) = 2
    assert reduce_metrics(rows) == {"actor/loss": 3.0, "actor/clipfrac": 0.5, "actor/entropy": 2.0}
    # weights 1 and 3: loss = (1*2 + 3*4) / 4 = 3.5; clipfrac = 1*0.5 / 1
    out = reduce_metrics(rows, weights=[1.0, 3.0])
    assert out["actor/loss"] == 3.5 and out["actor/clipfrac"] == 0.5
    assert reduce_metrics([]) == {}
    # _max / _min keys take the extreme over micro-batches, whatever the weights
    extremes = [{"actor/ratio_max": 1.5, "x_min": 0.5}, {"actor/ratio_max": 3.0, "x_min": 0.25}]
    assert reduce_metrics(extremes, weights=[10.0, 1.0]) == {"actor/ratio_max": 3.0, "x_min": 0.25}
    with pytest.raises(ValueError, match="weights"):
        reduce_metrics(rows, weights=[1.0])


def test_metrics_logger_rows_and_resume(tmp_path: Path) -> None:
    with MetricsLogger(tmp_path, tensorboard=False) as log:
        for step in (1, 2, 3):
            log.log(step, {"reward/mean": step / 10, "actor/loss": float("nan")})
    rows = read(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert rows[1]["reward/mean"] == 0.2 and rows[1]["actor/loss"] is None  # NaN -> null
    # A kill tore the last line; the resumed run restarts after checkpoint step 2, which
    # (we pretend) finished 100 s into the run.
    rows[1]["time_s"] = 100.0
    torn = '{"step": 4, "rew'
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + torn)
    with MetricsLogger(tmp_path, tensorboard=False, resume_step=2) as log:
        assert log.log(3, {"reward/mean": 0.33})["time_s"] >= 100.0  # the clock continues
    assert [(r["step"], r["reward/mean"]) for r in read(tmp_path / "metrics.jsonl")] == [
        (1, 0.1),
        (2, 0.2),
        (3, 0.33),
    ]
    # A fresh (non-resumed) logger starts a new file.
    MetricsLogger(tmp_path, tensorboard=False).close()
    assert (tmp_path / "metrics.jsonl").read_text() == ""
    assert truncate_jsonl(tmp_path / "absent.jsonl", 3) == 0


def test_tensorboard_events(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    with MetricsLogger(tmp_path, tensorboard=True) as log:
        log.log(1, {"reward/mean": 0.5})
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def test_sample_logger(tmp_path: Path) -> None:
    sample = Sample(id="s1", prompt="<q> a = 2 </q>", answer="2", meta={"ops": 1})
    rollout = Rollout(
        sample=sample,
        prompt_ids=(1, 2),
        completion=Completion(text="a = 2", token_ids=(5, 6, 7), logprobs=(-0.1,) * 3),
        reward=RewardResult(
            score=1.0, info={"steps": torch.tensor([1, 0]), "why": (1, 2)}, answer="2", outcome=True
        ),
        group=0,
    )
    log = SampleLogger(tmp_path)
    assert log.log(5, [rollout, rollout, {"prompt": "p", "reward": math.inf}], limit=2) == 2
    log.log(6, [{"prompt": "p", "reward": math.inf}])
    log.close()
    rows = read(tmp_path / "samples.jsonl")
    assert rows[0] == {
        "step": 5,
        "id": "s1",
        "group": 0,
        "prompt": "<q> a = 2 </q>",
        "answer": "2",
        "completion": "a = 2",
        "finish_reason": "stop",
        "tokens": 3,
        "reward": 1.0,
        "parsed_answer": "2",
        "outcome": True,
        "verified": None,
        "advantage": None,  # this rollout was never trained on
        "info": {"steps": [1, 0], "why": [1, 2]},
        "meta": {"ops": 1},
    }
    assert rows[2] == {"step": 6, "prompt": "p", "reward": None}
    SampleLogger(tmp_path, resume_step=5).close()
    assert [r["step"] for r in read(tmp_path / "samples.jsonl")] == [5, 5]
