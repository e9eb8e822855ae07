"""Named algorithm presets: plain dicts of settings, not code paths.

Each preset lists only the fields it changes; every other field keeps the algorithm config's
default (`reasonrl.config.rl.AlgoConfig`, the one place defaults live), and keys the user writes
explicitly win over the preset. The keys are AlgoConfig field names (validated there).
PRESET_PAPERS cites each preset.
Lengths (overlong_buffer) are the papers' values for 16k-20k generations; scale them to your
max_new_tokens on small runs. `agg_const=None` means "use the maximum response length".

Field meanings (see docs/conventions.md): advantage -> advantages.ADVANTAGES key; std_scope,
std_unbiased, adv_eps -> GRPO normalisation; loss -> policy_loss.POLICY_LOSSES key; clip_low,
clip_high, dual_clip -> clipping; agg, agg_const -> aggregate.aggregate; kl_coef, kl_estimator ->
kl.kl_penalty as a loss term; entropy_coef -> entropy bonus; dynamic_sampling -> drop groups with
all-equal rewards; overlong_* -> shaping; is_level/is_mode/is_high -> correction.
"""

from __future__ import annotations

PRESETS: dict[str, dict[str, object]] = {
    # GRPO objective: per-sequence 1/|o_i| mean then group mean, k3 KL in the loss, beta 0.04.
    "grpo": {"agg": "seq_mean_token_mean", "kl_coef": 0.04, "kl_estimator": "k3"},
    # No std, constant normaliser, no KL.
    "dr_grpo": {"advantage": "dr_grpo", "std_scope": "none", "agg": "seq_mean_token_sum_norm"},
    # Clip-higher, token-mean, dynamic sampling, soft overlong punishment (16k + 4k buffer).
    "dapo": {
        "clip_high": 0.28,
        "dynamic_sampling": True,
        "overlong_buffer": 4096,
        "overlong_factor": 1.0,
    },
    # Sequence ratio with tiny clip range, sequence-level aggregation.
    "gspo": {"loss": "gspo", "clip_low": 3e-4, "clip_high": 4e-4, "agg": "seq_mean_token_mean"},
    # Group mean / batch std, token-mean, vanilla PPO clip, nothing else.
    "lite_ppo": {"advantage": "lite_ppo", "std_scope": "batch"},
    # Token-mean, clip-higher 0.28, dual clip 10, overlong shaping (buffer 4096), no KL.
    "grpo_tcr": {
        "clip_high": 0.28,
        "dual_clip": 10.0,
        "overlong_buffer": 4096,
        "overlong_factor": 1.0,
    },
    # REINFORCE + token IS weight pi_old/mu_old + decoupled masking (loss "minirl"), no length
    # normalisation. The paper's eps values and normalising constant were not found (UNVERIFIED);
    # 0.2/0.28 are the common decoupled values and is_high=2.0 the common TIS cap.
    "minirl": {
        "loss": "minirl",
        "clip_high": 0.28,
        "agg": "seq_mean_token_sum_norm",
        "is_level": "token",
        "is_mode": "truncate",
        "is_high": 2.0,
    },
}

PRESET_PAPERS: dict[str, str] = {
    "grpo": "arXiv 2402.03300 — DeepSeekMath: Pushing the Limits of Mathematical Reasoning",
    "dr_grpo": "arXiv 2503.20783 — Understanding R1-Zero-Like Training: A Critical Perspective",
    "dapo": "arXiv 2503.14476 — DAPO: An Open-Source LLM Reinforcement Learning System at Scale",
    "gspo": "arXiv 2507.18071 — Group Sequence Policy Optimization",
    "lite_ppo": "arXiv 2508.08221 — Part I: Tricks or Traps? A Deep Dive into RL for LLM Reasoning",
    "grpo_tcr": "arXiv 2510.11701 — Demystifying Reinforcement Learning in Agentic Reasoning",
    "minirl": "arXiv 2512.01374 — Stabilizing Reinforcement Learning with LLMs: Formulation and "
    "Practices",
}
