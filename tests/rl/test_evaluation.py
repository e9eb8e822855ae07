"""Held-out evaluation during training (trainer.eval_every): when it runs, what it writes, which
problems it reads, and that resume never evaluates a step twice."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from reasonrl.config import RLConfig, load_config
from reasonrl.data.loaders import DataError
from reasonrl.rl.evaluation import EVAL_SEED, RunEvaluator, eval_metrics, eval_samples
from reasonrl.rl.run import train
from tests.rl.toy import make_toy_model, toy_reward, write_toy_recipe

# One held-out problem per op, two samples, short completions: an evaluation takes well under 1 s.
TINY_EVAL = {"problems_per_op": 1, "samples": 2, "max_new_tokens": 6}


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_toy_model(tmp_path_factory.mktemp("toy") / "model")


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _eval_steps(rows: list[dict]) -> list[int]:
    return [r["step"] for r in rows if any(k.startswith("eval/") for k in r)]


def _recipe(tmp_path: Path, toy_model: Path, trainer: dict, **sections: dict) -> Path:
    sections.setdefault("data", {"ops": [2, 3], "eval_ops": [2, 3], "seed": 1})
    return write_toy_recipe(tmp_path / "r.yaml", toy_model, tmp_path / "runs",
                            trainer={"save_every": 2, **trainer},
                            eval={**TINY_EVAL, **sections.pop("eval", {})},
                            **sections)  # fmt: skip


def test_eval_every_2_of_4_steps_evaluates_at_0_2_4(toy_model: Path, tmp_path: Path) -> None:
    cfg = load_config(_recipe(tmp_path, toy_model, {"steps": 4, "eval_every": 2}))
    train(cfg, progress=False, reward_fn=toy_reward)
    run = cfg.run_dir
    rows = _rows(run)
    assert [r["step"] for r in rows] == [0, 1, 2, 3, 4]
    assert _eval_steps(rows) == [0, 2, 4]
    step0 = rows[0]
    assert not any(k.startswith(("actor/", "reward/")) for k in step0), "step 0 is eval only"
    for row in (rows[0], rows[2], rows[4]):
        assert {"eval/pass@1", "eval/pass@2", "eval/mean_tokens", "eval/truncated"} <= set(row)
        assert {"eval/op2/pass@1", "eval/op3/pass@1"} <= set(row)
        assert row["perf/eval_s"] > 0
    assert "actor/loss" in rows[2] and "reward/mean" in rows[4]  # merged into the train rows
    assert sorted(p.name for p in run.glob("eval_step*.json")) == [
        "eval_step0.json", "eval_step2.json", "eval_step4.json"
    ]  # fmt: skip
    detail = json.loads((run / "eval_step2.json").read_text())
    assert detail["step"] == 2 and set(detail["per_op"]) == {"2", "3"}
    assert detail["settings"]["seed"] == EVAL_SEED and detail["settings"]["problems"] == 2
    assert eval_metrics(detail) == {k: v for k, v in rows[2].items() if k.startswith("eval/")}
    summary = json.loads((run / "eval.json").read_text())
    assert summary["meta"]["evaluated_steps"] == [0, 2, 4] and summary["meta"]["steps"] == 4
    assert summary["before"] == json.loads((run / "eval_step0.json").read_text())["per_op"]
    assert summary["after"] == json.loads((run / "eval_step4.json").read_text())["per_op"]

    from reasonrl.report.report import write_report

    page = write_report(run).read_text()
    assert "eval_curves.png" in page  # one figure of the eval curves over steps
    assert "eval_step2.json" not in page  # per-step files are summarised, not one table each


def test_no_eval_every_writes_no_evaluation(toy_model: Path, tmp_path: Path) -> None:
    cfg = load_config(_recipe(tmp_path, toy_model, {"steps": 2}))
    train(cfg, progress=False, reward_fn=toy_reward)
    assert [r["step"] for r in _rows(cfg.run_dir)] == [1, 2]
    assert _eval_steps(_rows(cfg.run_dir)) == []
    assert not list(cfg.run_dir.glob("eval*.json"))


def test_time_budget_stop_is_evaluated_and_resume_never_repeats_a_step(
    toy_model: Path, tmp_path: Path
) -> None:
    # A budget this small ends the run after its first step: that last step is evaluated.
    recipe = _recipe(tmp_path, toy_model, {"steps": 4, "eval_every": 2, "time_budget_s": 1e-6})
    cfg = load_config(recipe)
    train(cfg, progress=False, reward_fn=toy_reward)
    assert _eval_steps(_rows(cfg.run_dir)) == [0, 1]
    # files a killed process wrote after its last checkpoint are dropped, as metric rows are
    (cfg.run_dir / "eval_step3.json").write_text("{}")
    cfg = load_config(recipe, ["trainer.time_budget_s=null"])
    state = train(cfg, resume=True, progress=False, reward_fn=toy_reward)
    assert state.step == 4
    rows = _rows(cfg.run_dir)
    assert [r["step"] for r in rows] == [0, 1, 2, 3, 4]
    assert _eval_steps(rows) == [0, 1, 2, 4]  # step 1 (resumed from) is not evaluated again
    assert json.loads((cfg.run_dir / "eval.json").read_text())["meta"]["evaluated_steps"] == [
        0, 1, 2, 4
    ]  # fmt: skip


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _synth_rows(n: int) -> list[dict]:
    from reasonrl.tasks.synth import make_dataset

    return [{"problem": r["prompt"], "answer": r["answer"]} for r in make_dataset([2], n, seed=3)]


def test_eval_file_is_read_for_jsonl_tasks(toy_model: Path, tmp_path: Path) -> None:
    train_file = _jsonl(tmp_path / "train.jsonl", _synth_rows(4))
    eval_file = _jsonl(tmp_path / "eval.jsonl", _synth_rows(3))
    data = {"task": "jsonl", "train_file": str(train_file), "eval_file": str(eval_file),
            "fields": {"prompt": "problem", "answer": "answer"}}  # fmt: skip
    cfg = load_config(_recipe(tmp_path, toy_model, {"steps": 1, "eval_every": 1}, data=data,
                              reward={"kind": "math"}, eval={"problems_per_op": 2}))  # fmt: skip
    lines: list[str] = []
    samples, source = eval_samples(cfg)
    assert samples is not None and len(samples) == 2 and str(eval_file) in source
    assert [s.prompt for s in samples] == [r["problem"] for r in _synth_rows(3)[:2]]
    train(cfg, progress=False, reward_fn=toy_reward)
    assert _eval_steps(_rows(cfg.run_dir)) == [0, 1]
    detail = json.loads((cfg.run_dir / "eval_step1.json").read_text())
    assert detail["settings"]["problems"] == 2 and set(detail["per_op"]) == {"all"}
    assert str(eval_file) in detail["source"]
    assert RunEvaluator.for_run(cfg, log=lines.append) is not None
    assert "2 problems" in lines[-1]


def test_bad_eval_file_row_names_file_and_line(toy_model: Path, tmp_path: Path) -> None:
    train_file = _jsonl(tmp_path / "train.jsonl", _synth_rows(2))
    eval_file = _jsonl(tmp_path / "eval.jsonl", [*_synth_rows(1), {"question": "no prompt"}])
    data = {"task": "jsonl", "train_file": str(train_file), "eval_file": str(eval_file),
            "fields": {"prompt": "problem"}}  # fmt: skip
    cfg = load_config(_recipe(tmp_path, toy_model, {"steps": 1, "eval_every": 1}, data=data,
                              reward={"kind": "math"}))  # fmt: skip
    with pytest.raises(DataError, match=re.escape(f"{eval_file}:2: missing field")):
        train(cfg, progress=False, reward_fn=toy_reward)
    assert not (cfg.run_dir / "metrics.jsonl").exists()  # failed before the first step


def _cfg(**sections: dict) -> RLConfig:
    return RLConfig.model_validate({"trainer": {"eval_every": 5}, **sections})


def test_benchmark_held_out_split(shared_data: Path) -> None:
    lines: list[str] = []
    cfg = _cfg(data={"task": "benchmark", "benchmark": "math500", "data_dir": str(shared_data)},
               reward={"kind": "math"})  # fmt: skip
    assert eval_samples(cfg)[0] is None
    assert RunEvaluator.for_run(cfg, log=lines.append) is None
    assert "math500 has no held-out split" in lines[-1]
    cfg = _cfg(data={"task": "benchmark", "benchmark": "gsm8k_train", "data_dir": str(shared_data)},
               reward={"kind": "math"}, eval={"problems_per_op": 3})  # fmt: skip
    samples, source = eval_samples(cfg)
    assert samples is not None and len(samples) == 3 and "gsm8k_test" in source
    assert all(s.id.startswith("gsm8k_test") for s in samples)


def test_synth_held_out_problems_do_not_depend_on_the_training_seed() -> None:
    a, _ = eval_samples(_cfg(data={"ops": [2], "seed": 0}, eval={"problems_per_op": 3}))
    b, _ = eval_samples(_cfg(data={"ops": [2], "seed": 7}, eval={"problems_per_op": 3}))
    assert a is not None and b is not None and a == b
    assert sorted({s.meta["op"] for s in a}) == [1, 2, 3]  # eval_ops: ops and neighbours


def test_eval_file_without_eval_every_is_reported_unread(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "e.jsonl", [{"question": "p", "answer": "1"}])
    cfg = RLConfig.model_validate({
        "data": {"task": "jsonl", "train_file": str(path), "eval_file": str(path)},
        "reward": {"kind": "math"},
    })  # fmt: skip
    lines: list[str] = []
    assert RunEvaluator.for_run(cfg, log=lines.append) is None
    assert "is not read" in lines[-1]


def test_summary_is_first_vs_latest_and_skips_torn_files(tmp_path: Path) -> None:
    from reasonrl.rl.evaluation import write_summary

    for step, value in ((0, 0.1), (3, 0.2), (5, 0.3)):
        result = {
            "step": step,
            "source": "s",
            "settings": {"n": 1},
            "overall": {"pass@1": value, "problems": 2.0},
            "per_op": {"2": {"pass@1": value}},
        }
        (tmp_path / f"eval_step{step}.json").write_text(json.dumps(result))  # fmt: skip
    (tmp_path / "eval_step7.json").write_text("{torn")  # a half-written file is not the latest
    summary = json.loads(write_summary(tmp_path).read_text())
    assert summary["before"] == {"2": {"pass@1": 0.1}} and summary["after"] == {
        "2": {"pass@1": 0.3}
    }
    assert summary["meta"]["evaluated_steps"] == [0, 3, 5] and summary["meta"]["first_step"] == 0
    assert summary["meta"]["overall_after"]["pass@1"] == 0.3 and summary["meta"]["problems"] == 2
