"""Token sampling: reproducible noise, Gumbel-max frequencies, top-k / top-p, greedy."""

from __future__ import annotations

import math

import pytest
import torch

from reasonrl.rollout.base import SamplingParams
from reasonrl.rollout.sampling import filter_logprobs, sample_next, sequence_keys, uniform_noise


def _steps(n: int, value: int = 0) -> torch.Tensor:
    return torch.full((n,), value, dtype=torch.int64)


def test_keys_do_not_depend_on_batch_position_but_repeats_differ() -> None:
    alone = sequence_keys(7, [[4, 5, 6]], 2)
    batched = sequence_keys(7, [[1], [4, 5, 6], [4, 5, 6]], 2)
    assert torch.equal(batched[2:4], alone)  # same prompt, same seed: same keys anywhere
    assert not torch.equal(batched[4:6], alone)  # its second occurrence gets fresh keys
    assert not torch.equal(alone[0], alone[1])  # the G samples differ
    assert not torch.equal(sequence_keys(8, [[4, 5, 6]], 2), alone)  # the seed matters


def test_uniform_noise_is_deterministic_in_unit_interval_and_roughly_uniform() -> None:
    keys = sequence_keys(0, [[i] for i in range(500)], 1)
    u = uniform_noise(keys, _steps(500, 3), 64)
    assert torch.equal(u, uniform_noise(keys, _steps(500, 3), 64))
    assert not torch.equal(u, uniform_noise(keys, _steps(500, 4), 64))
    assert u.min() > 0.0 and u.max() < 1.0
    # 32,000 draws: the mean of U(0,1) is 0.5 with standard error 0.0016, its variance 1/12
    assert abs(u.mean().item() - 0.5) < 0.01
    assert abs(u.var().item() - 1 / 12) < 0.003


def test_gumbel_max_frequencies_match_softmax_at_temperature() -> None:
    n = 20_000
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0]).repeat(n, 1)
    keys = sequence_keys(1, [[i] for i in range(n)], 1)
    tokens, logprobs = sample_next(logits, keys, _steps(n), temperature=2.0)
    want = torch.softmax(torch.tensor([2.0, 1.0, 0.0, -1.0]) / 2.0, dim=0)
    got = torch.bincount(tokens, minlength=4).float() / n
    # binomial standard error <= sqrt(0.25 / 20000) = 0.0035; allow ~4 sigma
    torch.testing.assert_close(got, want, atol=0.015, rtol=0)
    torch.testing.assert_close(logprobs, torch.log(want)[tokens])


def test_filter_top_k_and_top_p_hand_example() -> None:
    # probs (0.5, 0.3, 0.15, 0.05): mass before each token in sorted order is (0, .5, .8, .95)
    lp = torch.log(torch.tensor([[0.15, 0.5, 0.05, 0.3]]))
    inf = float("-inf")
    top_p = filter_logprobs(lp, top_p=0.8)  # keeps tokens whose preceding mass < 0.8: 0.5, 0.3
    assert torch.isinf(top_p[0, [0, 2]]).all() and torch.isfinite(top_p[0, [1, 3]]).all()
    top_p = filter_logprobs(lp, top_p=0.81)  # now 0.15 is kept too (preceding mass 0.8 < 0.81)
    assert torch.isfinite(top_p[0, [0, 1, 3]]).all() and top_p[0, 2] == inf
    top_k = filter_logprobs(lp, top_k=1)
    assert torch.isfinite(top_k[0, 1]) and torch.isinf(top_k[0, [0, 2, 3]]).all()
    assert torch.equal(filter_logprobs(lp), lp)  # both off: unchanged


def test_sampling_respects_top_k_and_reports_unfiltered_logprob() -> None:
    n = 2000
    logits = torch.randn(n, 30)
    keys = sequence_keys(3, [[i] for i in range(n)], 1)
    tokens, logprobs = sample_next(logits, keys, _steps(n), top_k=3, temperature=0.5)
    top3 = torch.topk(logits, 3, dim=-1).indices
    assert (top3 == tokens[:, None]).any(dim=-1).all()
    full = torch.log_softmax(logits / 0.5, dim=-1)  # not renormalised over the top 3
    torch.testing.assert_close(logprobs, full.gather(-1, tokens[:, None]).squeeze(-1))


def test_greedy_takes_argmax_with_temperature_one_logprob() -> None:
    logits = torch.randn(16, 10)
    keys = sequence_keys(0, [[i] for i in range(16)], 1)
    tokens, logprobs = sample_next(logits, keys, _steps(16), greedy=True, temperature=0.3)
    assert torch.equal(tokens, logits.argmax(-1))
    want = torch.log_softmax(logits, dim=-1).max(dim=-1).values
    torch.testing.assert_close(logprobs, want)
    assert math.isfinite(logprobs.sum().item())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n": 0},
        {"max_new_tokens": 0},
        {"temperature": -0.5},
        {"temperature": float("nan")},
        {"top_p": 0.0},
        {"top_p": 1.5},
        {"top_k": -1},
        {"stop": ("",)},
    ],
)
def test_sampling_params_reject_bad_values(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        SamplingParams(**kwargs)


def test_temperature_zero_means_greedy() -> None:
    # T -> 0 is the argmax: SamplingParams and sample_next both read T = 0 as greedy
    assert SamplingParams(temperature=0.0).greedy
    assert not SamplingParams(temperature=0.5).greedy
    logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 2.9]])
    keys = sequence_keys(0, [[1], [2]], 1)
    steps = torch.zeros(2, dtype=torch.int64)
    tokens, logprobs = sample_next(logits, keys, steps, temperature=0.0)
    want_tokens, want_lp = sample_next(logits, keys, steps, greedy=True)
    assert tokens.tolist() == [1, 0] == want_tokens.tolist()
    torch.testing.assert_close(logprobs, want_lp)
    assert torch.isfinite(logprobs).all()


def test_sampling_params_reject_bare_string_stop() -> None:
    with pytest.raises(TypeError):
        SamplingParams(stop="</s>")  # type: ignore[arg-type]
