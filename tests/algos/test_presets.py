"""Presets are plain setting dicts whose values name real registry entries."""

from __future__ import annotations

import pytest

from reasonrl.algos.advantages import ADVANTAGES
from reasonrl.algos.aggregate import AGG_MODES
from reasonrl.algos.kl import KL_KINDS
from reasonrl.algos.policy_loss import POLICY_LOSSES
from reasonrl.algos.presets import PRESET_DEFAULTS, PRESET_PAPERS, PRESETS

FIELDS = {
    "advantage",
    "std_scope",
    "std_unbiased",
    "adv_eps",
    "loss",
    "clip_low",
    "clip_high",
    "dual_clip",
    "agg",
    "agg_const",
    "kl_coef",
    "kl_estimator",
    "entropy_coef",
    "dynamic_sampling",
    "overlong_buffer",
    "overlong_factor",
    "overlong_filter",
    "is_level",
    "is_mode",
    "is_high",
}


def test_names_fields_and_papers():
    assert set(PRESETS) == {"grpo", "dr_grpo", "dapo", "gspo", "lite_ppo", "grpo_tcr", "minirl"}
    assert set(PRESET_PAPERS) == set(PRESETS)
    assert set(PRESET_DEFAULTS) == FIELDS
    for name, p in PRESETS.items():
        assert set(p) == FIELDS, name
        assert p["advantage"] in ADVANTAGES and p["loss"] in POLICY_LOSSES
        assert p["agg"] in AGG_MODES and p["kl_estimator"] in KL_KINDS
        assert p["std_scope"] in ("group", "batch", "none")
        assert p["is_level"] in (None, "token", "sequence")
        assert "arXiv" in PRESET_PAPERS[name]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # DeepSeekMath GRPO: beta 0.04, 1/|o_i| sequence mean, eps 0.2
        ("grpo", {"kl_coef": 0.04, "agg": "seq_mean_token_mean", "clip_high": 0.2}),
        ("dr_grpo", {"std_scope": "none", "agg": "seq_mean_token_sum_norm", "kl_coef": 0.0}),
        (
            "dapo",
            {
                "clip_low": 0.2,
                "clip_high": 0.28,
                "agg": "token_mean",
                "dynamic_sampling": True,
                "overlong_buffer": 4096,
            },
        ),
        (
            "gspo",
            {"loss": "gspo", "clip_low": 3e-4, "clip_high": 4e-4, "agg": "seq_mean_token_mean"},
        ),
        (
            "lite_ppo",
            {
                "advantage": "lite_ppo",
                "std_scope": "batch",
                "agg": "token_mean",
                "clip_high": 0.2,
                "dynamic_sampling": False,
            },
        ),
        (
            "grpo_tcr",
            {
                "clip_high": 0.28,
                "dual_clip": 10.0,
                "agg": "token_mean",
                "kl_coef": 0.0,
                "dynamic_sampling": False,
            },
        ),
        ("minirl", {"loss": "reinforce", "is_level": "token", "agg": "seq_mean_token_sum_norm"}),
    ],
)
def test_paper_values(name, expected):
    for key, value in expected.items():
        assert PRESETS[name][key] == value, (name, key)


def test_presets_are_independent_copies():
    PRESETS["grpo"]["clip_low"] = 0.5
    try:
        assert PRESETS["dapo"]["clip_low"] == 0.2 and PRESET_DEFAULTS["clip_low"] == 0.2
    finally:
        PRESETS["grpo"]["clip_low"] = 0.2
