"""Presets are plain setting dicts (only the fields they change) naming real registry entries."""

from __future__ import annotations

import pytest

from reasonrl.algos.advantages import ADVANTAGES
from reasonrl.algos.aggregate import AGG_MODES
from reasonrl.algos.kl import KL_KINDS
from reasonrl.algos.policy_loss import POLICY_LOSSES
from reasonrl.algos.presets import PRESET_PAPERS, PRESETS
from reasonrl.config import AlgoConfig

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
    assert set(AlgoConfig.model_fields) >= FIELDS
    for name, bundle in PRESETS.items():
        assert bundle and set(bundle) <= FIELDS, name
        p = AlgoConfig(preset=name).model_dump()  # the preset over AlgoConfig's defaults
        assert p["advantage"] in ADVANTAGES and p["loss"] in POLICY_LOSSES
        assert p["agg"] in AGG_MODES and p["kl_estimator"] in KL_KINDS
        assert p["std_scope"] in ("group", "batch", "none")
        assert p["is_level"] in ("none", "token", "sequence")
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
        (
            "minirl",
            {
                "loss": "minirl",
                "clip_low": 0.2,
                "clip_high": 0.28,
                "is_level": "token",
                "agg": "seq_mean_token_sum_norm",
            },
        ),
    ],
)
def test_paper_values(name, expected):
    resolved = AlgoConfig(preset=name)
    for key, value in expected.items():
        assert getattr(resolved, key) == value, (name, key)


def test_explicit_keys_beat_the_preset_and_defaults_fill_the_rest():
    algo = AlgoConfig(preset="dapo", clip_high=0.3)
    assert algo.clip_high == 0.3 and algo.dynamic_sampling is True  # explicit > preset
    assert algo.clip_low == AlgoConfig().clip_low  # untouched by the preset: the default
    # the preset applies however the config is built, not only through load_config
    from reasonrl.config import RLConfig

    gspo = RLConfig.model_validate({"algo": {"preset": "gspo"}}).algo
    assert (gspo.loss, gspo.clip_low, gspo.clip_high) == ("gspo", 3e-4, 4e-4)


@pytest.mark.parametrize("recipe", ["gspo", "dapo", "dr_grpo", "lite_ppo"])
def test_model_validate_equals_load_config(recipe: str) -> None:
    """A recipe's preset resolves the same through load_config and a plain model_validate."""
    from pathlib import Path

    import yaml

    from reasonrl.config import RLConfig, load_config

    path = Path(__file__).resolve().parents[2] / "recipes" / f"{recipe}.yaml"
    raw = yaml.safe_load(path.read_text())
    assert raw["algo"].get("preset"), f"{path.name} sets no preset"
    assert RLConfig.model_validate(raw).algo == load_config(path).algo
