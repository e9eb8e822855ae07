"""benchmarks/science (issue 22): every finding's report (table, PNG, JSON) from hand-made run
directories, the run cache (a finished run is never retrained), and one real end-to-end run of
the runner at a tiny budget (1 step, 2 prompts x 2 completions, 1 held-out problem per op)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCIENCE = Path(__file__).resolve().parents[2] / "benchmarks" / "science"
sys.path.insert(0, str(SCIENCE))

import common  # noqa: E402
import run  # noqa: E402

RESULT = {
    "overall": {"strict_pass@1": 0.25, "strict_pass@8": 0.5, "pass@1": 0.5, "mean_tokens": 50.0},
    # strict pass@k = k / (64 op): finding 1 reads it per op and k
    "per_op": {
        str(op): {f"strict_pass@{k}": k / (64 * op) for k in (1, 2, 4, 8, 16, 32)}
        for op in range(1, 7)
    },
}


def _fake_run(root: Path, arm: str, wrong_growth: float) -> Path:
    d = root / arm / "s0-fake"
    d.mkdir(parents=True)
    rows = [
        {
            "step": s,
            "reward/mean": 0.1 + 0.01 * s,
            "reward/verified_correct": 0.1,
            "rollout/len_correct": 50.0,
            "rollout/len_wrong": 50.0 + wrong_growth * s,
            "rollout/len_mean": 50.0,
            "rollout/zero_std_frac": 0.5,
            "perf/step_s": 2.0,
            "rollout/groups_generated": 4.0 if arm.endswith("_ds") else 2.0,
            "reward/outcome": 0.3 + 0.01 * s,  # shortcut rate 0.2 + 0.01 s
            "is/mismatch_k3": 0.001 * s,
            "rollout/staleness_mean": 1.5,
            "actor/entropy": 0.3,
            "reward/dense_steps": 4.0 + (0.5 * s if arm == "rpp_raw" else 0.0),
        }
        for s in range(1, 9)
    ]
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (d / "heldout.json").write_text(json.dumps({**RESULT, "meta": {"train_s": 16.0}}))
    before = {"overall": {**RESULT["overall"], "strict_pass@1": 0.125}}  # a transfer arm's base
    (d.parent / f"{d.name}.base.json").write_text(json.dumps(before))
    return d


@pytest.mark.parametrize("finding", sorted(run.FINDINGS))
def test_each_finding_reports_from_runs(finding: str, tmp_path: Path) -> None:
    arms, report = run.FINDINGS[finding]
    runs = {a: [_fake_run(tmp_path / "runs", a, 1.0 if a == "grpo" else 0.0)] for a in arms}
    table, payload = report(runs, RESULT, tmp_path)
    assert (tmp_path / f"{finding}.png").stat().st_size > 1000
    assert table.count("\n| ") >= 2 and json.dumps(payload)
    if finding == "dr_grpo":  # wrong length 50.5 -> 57.5 over the first/last quarter (2 steps)
        assert payload["grpo"]["len_wrong_first"] == [51.5]
        assert payload["grpo"]["len_wrong_last"] == [57.5]
        assert payload["dr_grpo"]["gap_last"] == [0.0]
    if finding == "dynamic_sampling":
        assert payload["gstd_tok_ds"]["groups_per_step"] == [4.0]
        assert payload["gstd_tok"]["signal_last"] == [0.5]
    if finding == "process_vs_outcome":  # outcome - verified over the last 2 of 8 steps
        assert payload["outcome"]["shortcut_last"] == pytest.approx([0.275])
        assert payload["outcome"]["heldout_shortcut"] == pytest.approx([0.25])
    if finding == "mismatch":
        assert payload["stale4"]["k3_max"] == pytest.approx([0.008])
        assert payload["stale4"]["staleness"] == [1.5]
    if finding == "clip_delta":  # raw's step count grows 4.5 -> 8.0 (mean of steps 1-2, 7-8)
        assert payload["rpp_raw"]["steps_first"] == [4.75]
        assert payload["rpp_raw"]["steps_last"] == [7.75]
        assert payload["rpp_raw"]["dense"] == "raw" and payload["rpp_outcome"]["dense"] == "none"
        assert "| rpp_outcome | none | — (not computed) |" in table
    if finding == "interplay":  # op 4 pass@32 = 32 / 256; the rows name each arm's RL ops
        assert payload["rl_edge"]["strict_pass@k"]["4"][32] == [0.125]
        assert payload["base"]["6"][1] == pytest.approx(1 / 384)
        assert "| rl_id (2) |" in table and "| rl_edge (3, 4) |" in table
    if finding == "transfer":  # before = the arm's own base, after = its RL policy
        assert payload["xfer1"]["percent"] == 1
        assert payload["xfer1"]["strict_pass@1_before"] == [0.125]
        assert payload["xfer1"]["strict_pass@1_after"] == [0.25]
        assert payload["xfer10"]["strict_pass@8_after"] == [0.5]
        assert "| xfer10 (10 %) | 0.125 → 0.250 |" in table


def test_a_finished_run_is_read_from_the_cache(tmp_path: Path, monkeypatch) -> None:
    budget = common.Budget(steps=1, out=tmp_path)
    recipe = common.arm_recipe("dr_grpo")
    overrides = [*budget.overrides(), *budget.eval_overrides()]
    cached = tmp_path / "dr_grpo" / f"s3-{common._key(recipe, overrides, 3)}"
    cached.mkdir(parents=True)
    (cached / "heldout.json").write_text(json.dumps(RESULT))

    def no_subprocess(*args, **kwargs):
        raise AssertionError("a cached run was retrained")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    assert common.run_arm("dr_grpo", 3, budget) == cached
    with pytest.raises(AssertionError, match="retrained"):  # another seed is a new run
        common.run_arm("dr_grpo", 4, budget)


def test_arms_replace_the_quickstart_algo_section() -> None:
    from reasonrl.config import RLConfig

    for arm in common.ARMS:  # every arm is a valid config, and presets are not overridden
        cfg = RLConfig.model_validate(common.arm_recipe(arm))
        assert cfg.algo.micro_batch_size == 32
    grpo = RLConfig.model_validate(common.arm_recipe("grpo")).algo
    assert (grpo.agg, grpo.kl_coef) == ("seq_mean_token_mean", 0.04)  # not the quickstart's
    assert RLConfig.model_validate(common.arm_recipe("gstd_tok_ds")).algo.dynamic_sampling
    stale = RLConfig.model_validate(common.arm_recipe("stale4"))  # a section beyond algo
    assert (stale.rollout.max_staleness, stale.algo.is_level) == (4, "none")
    assert stale.rollout.n == 8 and stale.reward.kind == "synth_strict"  # the rest: quickstart's
    delta = RLConfig.model_validate(common.arm_recipe("rpp_delta"))
    assert (delta.reward.kind, delta.reward.dense, delta.algo.advantage) == (
        "synth_outcome",
        "delta",
        "reinforce_pp",
    )
    xfer = RLConfig.model_validate(common.arm_recipe("xfer1"))
    assert xfer.data.contexts == ("school",) and xfer.algo.advantage == "grpo"
    mid = common.midtrain_recipe(1, steps=600)["data"]["synth_contexts"]
    assert (len(mid), mid.count("school")) == (100, 1)  # cycled round-robin: exactly 1 %
    from reasonrl.config.sft import SFTConfig

    assert SFTConfig.model_validate(common.midtrain_recipe(10, steps=600)).train.max_steps == 600
    edge = RLConfig.model_validate(common.arm_recipe("rl_edge"))
    assert (edge.data.ops, edge.data.eval_ops) == ((3, 4), (1, 2, 3, 4, 5))  # eval: the budget's


def test_interplay_evaluates_harder_ops_with_32_samples(tmp_path: Path, monkeypatch) -> None:
    seen = {}

    def fake_run_arms(arms, seeds, budget):
        seen["budget"] = budget
        raise SystemExit  # the budget is all this test needs

    monkeypatch.setattr(common, "run_arms", fake_run_arms)
    args, budget = common.parse_args("x", ["--docs", str(tmp_path)])
    with pytest.raises(SystemExit):
        run.run_finding("interplay", args, budget)
    shown = seen["budget"].eval_overrides()
    assert "data.eval_ops=[2,3,4,5,6]" in shown and "eval.samples=32" in shown
    assert seen["budget"].steps == budget.steps  # training is the default budget's


@pytest.mark.slow  # 3 processes (base eval + 2 arms): 82 s on the shared 2-core CPU
def test_runner_end_to_end_tiny_budget(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        str(SCIENCE / "run.py"),
        "dynamic_sampling",
        "--arms",
        "gstd_tok",
        "gstd_tok_ds",
        "--steps",
        "1",
        "--prompts-per-step",
        "2",
        "--group-size",
        "2",
        "--max-new-tokens",
        "24",
        "--eval-problems",
        "1",
        "--eval-samples",
        "1",
        "--jobs",
        "3",
        "--out",
        str(tmp_path / "runs"),
        "--docs",
        str(tmp_path / "docs"),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "| gstd_tok_ds |" in out.stdout
    result = json.loads((tmp_path / "docs" / "dynamic_sampling.json").read_text())
    assert set(result["runs"]) == {"gstd_tok", "gstd_tok_ds"}
    assert result["budget"]["steps"] == 1 and (tmp_path / "docs" / "dynamic_sampling.png").exists()
    rows = (Path(result["runs"]["gstd_tok"][0]) / "metrics.jsonl").read_text().splitlines()
    assert "rollout/len_correct" in json.loads(rows[-1])


def test_mean_sd_marks_metrics_some_seeds_never_logged() -> None:
    nan = float("nan")
    assert common.mean_sd([1.0, 2.0, 3.0]) == "2.000 ± 1.000"
    assert common.mean_sd([0.5]) == "0.500"
    assert common.mean_sd([nan, nan, nan]) == "—"  # e.g. staleness of a synchronous run
    assert common.mean_sd([1.0, nan, 3.0]) == "2.000 ± 1.414 (2 of 3 seeds)"
