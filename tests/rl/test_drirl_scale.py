"""algo.drirl (GRPO-S, rl.drirl): alpha = 1 is bit-identical GRPO; a hard bucket's advantages are
scaled by sigmoid(Rbar_P) / sigmoid(Rbar_j), derived by hand; non-group estimators refused."""

from __future__ import annotations

import math

import pytest
import torch

from reasonrl.config import RLConfig
from reasonrl.rl.advantage import compute_advantages
from reasonrl.rl.drirl import drirl_alpha, hardness, step_match_fraction
from reasonrl.rl.rollouts import Groups
from reasonrl.types import Completion, RewardResult, Sample


def _cfg(**algo: object) -> RLConfig:
    return RLConfig.model_validate({"algo": {"advantage": "grpo", **algo}})


def _groups(scores: list[list[float]], ops: list[int], *, meta: dict | None = None) -> Groups:
    samples = [Sample(id=str(i), prompt="q", answer="1", meta={"op": op, **(meta or {})})
               for i, op in enumerate(ops)]  # fmt: skip
    comps = [[Completion(text="x", token_ids=(1,), logprobs=(0.0,)) for _ in row] for row in scores]
    rewards = [[RewardResult(v) for v in row] for row in scores]
    return Groups(samples, [[0] for _ in ops], comps, rewards, torch.tensor(scores))


def test_alpha_one_is_bit_identical_grpo() -> None:
    torch.manual_seed(0)
    scores = torch.rand(3, 4)
    mask = torch.ones(12, 5)
    cfg = _cfg()
    plain, _ = compute_advantages(cfg, scores, mask)
    scaled, _ = compute_advantages(cfg, scores, mask, scale=torch.ones(3, 4))
    assert torch.equal(plain, scaled)


def test_hard_bucket_scaled_by_responsiveness() -> None:
    # op 2: scores 1,1,1,0 -> gaps 0,0,0,1 (mean .25); op 4: gaps 1,1,1,0 (mean .75); no
    # outliers with tau = 10; pooled mean .5; no gold traces, so alpha^D = 1.
    scores = [[1.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
    groups = _groups(scores, [2, 4])
    cfg = _cfg(drirl=True, drirl_tau=10.0)
    alpha, metrics = drirl_alpha(groups, torch.tensor(scores), cfg)
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    assert alpha[0].tolist() == pytest.approx([sig(0.5) / sig(0.25)] * 4)
    assert alpha[1].tolist() == pytest.approx([sig(0.5) / sig(0.75)] * 4)
    assert metrics["drirl/alpha_m_4"] == pytest.approx(sig(0.5) / sig(0.75))
    mask = torch.ones(8, 3)
    base, _ = compute_advantages(cfg, torch.tensor(scores), mask)
    got, _ = compute_advantages(cfg, torch.tensor(scores), mask, scale=alpha)
    assert torch.allclose(got, base * alpha.reshape(8, 1))


def test_outlier_gap_dropped_from_bucket_mean() -> None:
    # op 3 gaps 0,0,0,1: mean .25, squared deviations .0625 and .5625; tau = .1 drops the 1
    scores = [[1.0, 1.0, 1.0, 0.0]]
    cfg = _cfg(drirl=True, drirl_tau=0.1)
    alpha, _ = drirl_alpha(_groups(scores, [3]), torch.tensor(scores), cfg)
    assert alpha[0].tolist() == pytest.approx([1.0] * 4)  # Rbar_j = Rbar_P = 0


def test_synthetic_hardness_from_gold_steps() -> None:
    trace = (
        "Define adult lion in Willow Zoo as F; so F = 2. Define adult goat in Cedar Zoo as w; "
        "so w = F = 2. Answer: 2."
    )
    half = (
        "Define adult lion in Willow Zoo as F; so F = 2. Define adult cat in Cedar Zoo as w; "
        "so w = F = 2. Answer: 2."
    )
    assert step_match_fraction(f" {trace} </solution>", trace) == 1.0
    assert step_match_fraction(f" {half} </solution>", trace) == 0.5
    assert step_match_fraction("garbage", trace) == 0.0
    groups = _groups([[1.0, 0.0]], [2], meta={"trace": trace})
    groups.completions[0] = [Completion(text=f" {t}", token_ids=(1,), logprobs=(0.0,))
                             for t in (trace, half)]  # fmt: skip
    assert hardness(groups).tolist() == [[0.0, 0.5]]
    assert hardness(_groups([[1.0]], [2])) is None  # no gold trace: alpha^D = 1


def test_non_group_estimator_refused() -> None:
    with pytest.raises(ValueError, match="not a group estimator"):
        _cfg(advantage="remax", drirl=True)


def test_train_step_passes_alpha_to_the_advantage(monkeypatch: pytest.MonkeyPatch) -> None:
    """algo.drirl=true: train_step hands drirl_alpha's (B, G) alpha to compute_advantages and
    logs drirl/alpha_mean; off, no scale is passed."""
    from reasonrl.rl import step as step_module
    from reasonrl.rl.step import train_step
    from tests.rl.stubs import stub_config, stub_state

    seen: list = []
    real = step_module.compute_advantages

    def spy(*args, **kwargs):
        seen.append(kwargs.get("scale"))
        return real(*args, **kwargs)

    monkeypatch.setattr(step_module, "compute_advantages", spy)
    metrics, groups = train_step(stub_state(stub_config(algo={"micro_batch_size": 4,
                                                              "drirl": True})))  # fmt: skip
    assert seen[0] is not None and seen[0].shape == groups.scores.shape
    assert metrics["drirl/alpha_mean"] == pytest.approx(float(seen[0].mean()))
    train_step(stub_state(stub_config()))
    assert seen[1] is None
