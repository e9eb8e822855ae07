"""The run banner and the step line's stats (labels defined in docs/metrics.md)."""

from __future__ import annotations

from reasonrl.rl.console import banner_body, banner_head, step_stats
from tests.rl.stubs import stub_config, stub_state


def test_step_stats() -> None:
    m = {"reward/mean": 0.41234, "reward/verified_correct": 0.1, "reward/outcome": 0.3,
         "actor/loss": -0.03125, "actor/kl_ref": 0.00123, "actor/entropy": 2.3101,
         "perf/gen_tokens_per_s": 1234.4}  # fmt: skip
    assert step_stats(m) == (
        "reward 0.412 | strict 0.100 | pass 0.300 | loss -0.0312 | kl 0.0012 | entropy 2.310 | "
        "1,234 tok/s"
    )
    # kl_in=reward: the KL measured on the rollout; absent keys are left out, reward never
    ppo = {"actor/loss": 0.5, "rollout/kl_ref": 0.02, "eval/pass@1": 0.25}
    assert step_stats(ppo) == "reward nan | loss 0.5000 | kl 0.0200 | 0 tok/s | eval pass@1 0.250"


def test_banner() -> None:
    cfg = stub_config(algo={"preset": "dapo", "overlong_buffer": 2}, model={"dtype": "fp32"},
                      trainer={"steps": 7, "time_budget_s": 60})  # fmt: skip
    head = banner_head(cfg)
    assert head.startswith(f"reasonrl train: run {cfg.run_dir} | model builtin:synth-micro | ")
    assert "algo dapo (advantage grpo, loss ppo_clip, no KL)" in head
    assert head.endswith("| 7 steps or 60 s")
    state = stub_state(cfg)
    state.engine_name = "fused"
    (line,) = banner_body(state)
    params = sum(p.numel() for p in state.model.parameters())
    assert line.startswith(f"model {type(state.model).__name__}, {params:,} parameters | ")
    assert "engine fused (auto) | device cpu, fp32 compute" in line
    assert "4 prompts x 4 samples" in line
    assert line.endswith("reward math")
    state.step = 3
    resumed = banner_body(state, cfg.run_dir / "ckpt")
    assert resumed[1] == f"resumed from step 3 ({cfg.run_dir / 'ckpt'})"
