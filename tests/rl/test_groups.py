"""`Groups` (the scored rollout of one step), its metrics and the step's small reducers, on
hand-built values: 2 prompts x 3 completions, one not-applicable and one failed reward."""

from __future__ import annotations

import math

import pytest
import torch

from reasonrl.algos.advantages import ADVANTAGES
from reasonrl.rl.advantage import compute_advantages, shaped_scores
from reasonrl.rl.rollouts import Groups, informative
from reasonrl.rl.step import _epoch_metrics, _kl_metric
from reasonrl.types import Completion, RewardResult, Rollout, Sample
from tests.rl.stubs import stub_config

NAN = float("nan")


def _completion(length: int, reason: str = "stop") -> Completion:
    return Completion("x", tuple(range(1, length + 1)), (-1.0,) * length, reason)


def _groups() -> Groups:
    samples = [Sample(id="a", prompt="p a"), Sample(id="b", prompt="p b")]
    completions = [
        [_completion(2), _completion(4, "length"), _completion(3)],
        [_completion(1), _completion(4, "length"), _completion(2)],
    ]
    rewards = [
        [
            RewardResult(1.0, {"process": 1.0}, outcome=True, verified=True),
            RewardResult(0.5, {"process": 0.5}, outcome=False, verified=False),
            RewardResult(None),  # not applicable
        ],
        [
            RewardResult(0.0, {"failed": True, "error": "boom"}, outcome=False),
            RewardResult(1.0),  # outcome unknown: a full score counts as correct
            RewardResult(0.25),
        ],
    ]
    scores = torch.tensor([[1.0, 0.5, NAN], [0.0, 1.0, 0.25]])
    return Groups(samples, [[1, 2], [3]], completions, rewards, scores, 5, 2)


def test_metrics_values() -> None:
    m = _groups().metrics()
    assert m["reward/mean"] == pytest.approx((1.0 + 0.5 + 0.0 + 1.0 + 0.25) / 5)
    assert m["reward/failed"] == 1.0
    assert m["reward/not_applicable"] == 1.0
    assert m["rollout/len_mean"] == pytest.approx(16 / 6)
    assert m["rollout/len_max"] == 4.0
    assert m["rollout/truncated_frac"] == pytest.approx(2 / 6)
    assert m["rollout/zero_std_frac"] == 0.0
    assert m["rollout/groups_generated"] == 5.0
    assert m["rollout/rounds"] == 2.0
    # typed fields: means over the applicable rewards that know them
    assert m["reward/outcome"] == pytest.approx(1 / 3)  # True, False, False
    assert m["reward/verified_correct"] == pytest.approx(0.5)  # True, False
    assert m["reward/process"] == pytest.approx(0.75)
    assert "reward/greedy_mean" not in m


def test_lengths_of_correct_and_wrong_completions() -> None:
    g = _groups()  # lengths [[2, 4, 3], [1, 4, 2]], scores [[1, .5, NaN], [0, 1, .25]]
    m = g.metrics()
    assert m["rollout/len_correct"] == pytest.approx((2 + 4) / 2)  # the two full scores
    assert m["rollout/len_wrong"] == pytest.approx((4 + 1 + 2) / 3)  # NaN (len 3) in neither
    g.scores = torch.tensor([[0.0, 0.5, NAN], [0.0, 0.0, 0.25]])
    m = g.metrics()
    assert math.isnan(m["rollout/len_correct"])  # no completion scored in full
    assert m["rollout/len_wrong"] == pytest.approx((2 + 4 + 1 + 4 + 2) / 5)


def test_zero_spread_fraction_and_greedy_mean() -> None:
    g = _groups()
    g.scores = torch.tensor([[1.0, 1.0, NAN], [0.0, 1.0, 0.25]])
    g.greedy_scores = torch.tensor([0.5, NAN])
    m = g.metrics()
    assert m["rollout/zero_std_frac"] == pytest.approx(0.5)
    assert m["reward/greedy_mean"] == pytest.approx(0.5)


def test_all_not_applicable_reward_mean_is_nan() -> None:
    g = _groups()
    g.rewards = [[RewardResult(None)] * 3, [RewardResult(None)] * 3]
    m = g.metrics()
    assert math.isnan(m["reward/mean"])
    assert m["reward/not_applicable"] == 6.0
    assert "reward/outcome" not in m


def test_masks_and_flattening() -> None:
    g = _groups()
    correct = g.correct()
    assert correct.dtype == torch.bool
    # failed -> False even at score 0; unknown outcome with score 1 -> True
    assert correct.tolist() == [[True, False, False], [False, True, False]]
    truncated = g.truncated()
    assert truncated.dtype == torch.bool
    assert truncated.tolist() == [False, True, False, False, True, False]
    assert g.applicable().tolist() == [[True, True, False], [True, True, True]]
    assert g.lengths().tolist() == [[2, 4, 3], [1, 4, 2]]
    assert g.flat_prompt_ids() == [[1, 2]] * 3 + [[3]] * 3
    assert g.gen_tokens == 16


def test_rollouts_pair_each_completion_with_its_prompt_and_reward() -> None:
    g = _groups()
    rollouts = g.rollouts()
    assert len(rollouts) == 6
    assert rollouts[4] == Rollout(
        sample=g.samples[1],
        prompt_ids=(3,),
        completion=g.completions[1][1],
        reward=g.rewards[1][1],
        group=1,
    )
    assert [r.group for r in rollouts] == [0, 0, 0, 1, 1, 1]
    assert rollouts[0].prompt_ids == (1, 2) and isinstance(rollouts[0].prompt_ids, tuple)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ([1.0, 0.0], True),  # exactly two applicable rewards that differ
        ([1.0, NAN, 0.0], True),
        ([1.0, NAN, NAN], False),  # one applicable reward has no spread
        ([0.5, 0.5, 0.5], False),
        ([NAN, NAN], False),
    ],
)
def test_informative(row: list[float], expected: bool) -> None:
    assert informative(torch.tensor(row)) is expected


def test_not_applicable_scores_take_their_own_groups_mean() -> None:
    # 3 groups of 2 (B != G, so a wrong reduction dimension shows)
    g = _groups()
    g.scores = torch.tensor([[1.0, NAN], [NAN, NAN], [0.2, 0.4]])
    g.completions = [[_completion(1)] * 2] * 3
    shaped = shaped_scores(g, stub_config())
    assert torch.allclose(shaped, torch.tensor([[1.0, 1.0], [0.0, 0.0], [0.2, 0.4]]))


def test_group_advantages_use_the_configured_estimator() -> None:
    cfg = stub_config(algo={"advantage": "rloo"})
    scores = torch.tensor([[1.0, 0.0, 0.5], [0.0, 0.0, 1.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]] * 6)
    adv, returns = compute_advantages(cfg, scores, mask)
    seq = ADVANTAGES["rloo"](scores).reshape(-1)
    assert returns is None
    assert torch.allclose(adv, seq[:, None] * mask)


def test_epoch_metrics() -> None:
    one = _epoch_metrics([{"actor/loss": 1.0}])
    assert one == {"actor/loss": 1.0}  # a single epoch adds no per-epoch copies
    two = _epoch_metrics([{"actor/loss": 1.0, "is/w": 2.0}, {"actor/loss": 3.0, "is/w": 4.0}])
    # every key is the mean over epochs; only actor/* keys get per-epoch copies
    assert two == {
        "actor/loss": 2.0,
        "is/w": 3.0,
        "actor/epoch1/loss": 1.0,
        "actor/epoch2/loss": 3.0,
    }


def test_kl_metric_is_the_mean_of_sequence_means() -> None:
    kl = torch.tensor([[1.0, 3.0, 9.0], [4.0, 0.0, 0.0], [7.0, 7.0, 7.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])

    class B:  # only the mask is read
        response_mask = mask

    # rows: mean(1, 3) = 2, mean(4) = 4; the empty row is left out
    assert _kl_metric(kl, B, {}) == pytest.approx(3.0)
    B.response_mask = torch.zeros(3, 3)
    assert _kl_metric(kl, B, {}) == 0.0
    # kl in the loss: the first epoch's KL (the policy that sampled), else the mean
    both = {"actor/epoch1/kl_ref": 0.1, "actor/kl_ref": 0.3}
    assert _kl_metric(None, B, both) == 0.1
    assert _kl_metric(None, B, {"actor/kl_ref": 0.3}) == 0.3
    assert _kl_metric(None, B, {}) is None


def test_failed_rewards_are_counted_per_cause() -> None:
    g = _groups()
    g.rewards[1][0] = RewardResult(0.0, {"failed": True, "error_kind": "timeout"})
    g.rewards[1][2] = RewardResult(0.0, {"failed": True, "error_kind": "timeout"})
    g.rewards[0][1] = RewardResult(0.0, {"failed": True})  # no kind recorded
    m = g.metrics()
    assert m["reward/failed"] == 3.0
    assert m["reward/failed/timeout"] == 2.0
    assert m["reward/failed/unknown"] == 1.0
    assert m["data/skipped_long_prompts"] == 0.0


def test_numeric_info_keys_are_logged_as_reward_metrics() -> None:
    g = _groups()
    g.rewards[0][0] = RewardResult(1.0, {"process": 1.0, "words": 4, "ok": True, "note": "x"})
    g.rewards[0][1] = RewardResult(0.5, {"words": 2.0, "ok": False, "nan": float("nan")})
    g.rewards[0][2] = RewardResult(None, {"words": 100})  # not applicable: not in the means
    g.rewards[1][1] = RewardResult(1.0, {"components": {"math": 1.0, "fmt": None}, "mean": 7.0})
    m = g.metrics()
    assert m["reward/words"] == pytest.approx(3.0)  # over the results that report it
    assert m["reward/ok"] == pytest.approx(0.5)  # a flag counts as 0/1: a rate
    assert m["reward/components/math"] == 1.0  # one level of numbers inside a dict
    assert "reward/components/fmt" not in m and "reward/note" not in m and "reward/nan" not in m
    assert m["reward/process"] == pytest.approx(1.0)  # the typed key, computed once
    assert m["reward/mean"] == pytest.approx((1.0 + 0.5 + 0.0 + 1.0 + 0.25) / 5)  # never replaced
    # call_reward's failure keys are counts elsewhere (reward/failed, reward/failed/<kind>)
    assert m["reward/failed"] == 1.0 and "reward/error" not in m and "reward/error_kind" not in m
