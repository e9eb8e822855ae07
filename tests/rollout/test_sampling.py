"""Token sampling: reproducible uniforms, inverse-CDF frequencies, top-k / top-p, greedy."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from reasonrl.rollout.base import SamplingParams
from reasonrl.rollout.sampling import (
    _inverse_cdf,
    allowed_tokens,
    filter_logprobs,
    sample_next,
    sequence_keys,
    uniform_per_row,
)


def _steps(n: int, value: int = 0) -> torch.Tensor:
    return torch.full((n,), value, dtype=torch.int64)


def _chi2(counts: torch.Tensor, probs: torch.Tensor) -> float:
    """Pearson's chi-square statistic of observed counts against expected probabilities."""
    expected = probs * counts.sum()
    return float(((counts - expected) ** 2 / expected).sum())


@functools.cache
def _keys(n: int, seed: int = 1) -> torch.Tensor:
    """Keys of n one-token prompts (cached: hashing 20,000 prompts takes a while; read only)."""
    return sequence_keys(seed, [[i] for i in range(n)], 1)


def test_keys_do_not_depend_on_batch_position_but_repeats_differ() -> None:
    alone = sequence_keys(7, [[4, 5, 6]], 2)
    batched = sequence_keys(7, [[1], [4, 5, 6], [4, 5, 6]], 2)
    assert torch.equal(batched[2:4], alone)  # same prompt, same seed: same keys anywhere
    assert not torch.equal(batched[4:6], alone)  # its second occurrence gets fresh keys
    assert not torch.equal(alone[0], alone[1])  # the G samples differ
    assert not torch.equal(sequence_keys(8, [[4, 5, 6]], 2), alone)  # the seed matters


def test_uniform_per_row_is_deterministic_in_unit_interval_and_uniform() -> None:
    n = 20_000
    keys = sequence_keys(0, [[i] for i in range(n)], 1)
    u = uniform_per_row(keys, _steps(n, 3))
    assert torch.equal(u, uniform_per_row(keys, _steps(n, 3)))
    assert (u != uniform_per_row(keys, _steps(n, 4))).float().mean() > 0.99  # the step matters
    assert u.min() > 0.0 and u.max() < 1.0
    # 20 equal bins, 1000 expected each: chi-square with 19 dof, P(X > 50) ~ 1e-4
    counts = torch.bincount((u * 20).long(), minlength=20).float()
    assert _chi2(counts, torch.full((20,), 0.05)) < 50
    # consecutive steps of one sequence are not correlated (the engine draws them in order)
    key = keys[:1].repeat(n, 1)
    walk = uniform_per_row(key, torch.arange(n))
    assert abs(torch.corrcoef(torch.stack([walk[:-1], walk[1:]]))[0, 1].item()) < 0.03


def test_frequencies_match_softmax_at_temperature() -> None:
    n = 20_000
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0]).repeat(n, 1)
    tokens, logprobs = sample_next(logits, _keys(n), _steps(n), temperature=2.0)
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


def test_chi_square_frequencies_match_softmax_and_reject_a_sampler_ignoring_temperature() -> None:
    # each row gets its own random permutation of the same 8 logits: counting ranks pools the rows
    # and checks that a row samples from its OWN logits
    n, temperature = 20_000, 0.7
    base = torch.tensor([2.5, 1.5, 1.0, 0.3, 0.0, -0.5, -1.0, -2.0])
    perm = torch.argsort(torch.rand(n, 8, generator=torch.Generator().manual_seed(0)), dim=-1)
    logits = base[perm]
    tokens, logprobs = sample_next(logits, _keys(n), _steps(n, 5), temperature=temperature)
    ranks = perm.gather(-1, tokens[:, None]).squeeze(-1)
    counts = torch.bincount(ranks, minlength=8).float()
    # 7 dof: P(chi2 > 30) ~ 1e-4; ignoring T (sampling softmax(z)) gives a statistic in the hundreds
    assert _chi2(counts, torch.softmax(base / temperature, dim=0)) < 30
    assert _chi2(counts, torch.softmax(base, dim=0)) > 200
    torch.testing.assert_close(
        logprobs,
        torch.log_softmax(logits / temperature, -1).gather(-1, tokens[:, None]).squeeze(-1),
    )


@pytest.mark.parametrize(
    ("top_k", "top_p", "allowed"),
    [
        (4, 1.0, [0, 1, 2, 3]),
        (0, 0.7, [0, 1, 2]),
        (5, 0.76, [0, 1, 2, 3]),
        (0, 0.75, [0, 1, 2]),
        (2, 0.9, [0, 1]),
    ],
)
def test_top_k_top_p_sample_only_allowed_tokens_with_renormalised_frequencies(
    top_k: int, top_p: float, allowed: list[int]
) -> None:
    # probs 0.4, 0.2, 0.15, 0.1, 0.08, 0.04, 0.03: mass before 0, .4, .6, .75, .85 (kept if < p)
    probs = torch.tensor([0.4, 0.2, 0.15, 0.1, 0.08, 0.04, 0.03])
    n = 20_000
    logits = probs.log().repeat(n, 1)
    tokens, logprobs = sample_next(logits, _keys(n, 2), _steps(n), top_k=top_k, top_p=top_p)
    assert set(tokens.tolist()) == set(allowed)
    counts = torch.bincount(tokens, minlength=7).float()[allowed]
    want = probs[allowed] / probs[allowed].sum()
    # <= 3 dof: P(chi2 > 25) < 1e-4
    assert _chi2(counts, want) < 25
    torch.testing.assert_close(logprobs, probs.log()[tokens])  # full-vocabulary log-prob


def test_top_p_keeps_ties_with_the_last_kept_token() -> None:
    lp = torch.log(torch.tensor([[0.2, 0.4, 0.2, 0.2]]))
    # mass before in sorted order is 0, .4, .6, .8: the first 0.2 is kept at top_p=0.5, so all are
    assert torch.isfinite(filter_logprobs(lp, top_p=0.5)).all()
    kept = torch.isfinite(filter_logprobs(lp, top_p=0.4))
    assert kept.tolist() == [[False, True, False, False]]


@pytest.mark.parametrize(
    ("vocab", "scale", "top_k", "top_p"),
    [
        (1000, 3.0, 50, 1.0),
        (1000, 3.0, 0, 0.9),
        (1000, 3.0, 40, 0.8),
        (5000, 0.5, 0, 0.95),  # flat: the nucleus (~4,500) is beyond the first 1,024 candidates
        (5000, 0.5, 2000, 0.95),
        (300, 0.0, 3, 1.0),  # integer logits: ties at the k-th everywhere, escalates to a sort
        (300, 0.0, 0, 0.5),
        (300, 30.0, 250, 1.0),  # most probabilities underflow to 0: a zero k-th threshold
    ],
)
def test_filtered_sampling_equals_the_full_vocabulary_formula(
    vocab: int, scale: float, top_k: int, top_p: float
) -> None:
    # the candidate path must pick exactly the token of inverse-CDF over filter_logprobs' set
    w = 64
    gen = torch.Generator().manual_seed(vocab + top_k)
    if scale:
        logits = (torch.randn(w, vocab, generator=gen) * scale).bfloat16()  # bf16: some ties
    else:
        logits = torch.randint(0, 4, (w, vocab), generator=gen).float()
    keys, steps = _keys(w, 3), torch.arange(w)
    tokens, _ = sample_next(logits, keys, steps, temperature=0.8, top_k=top_k, top_p=top_p)
    probs = torch.softmax(logits.float() / 0.8, dim=-1)
    allowed = allowed_tokens(probs, top_k=top_k, top_p=top_p)
    want = _inverse_cdf(torch.where(allowed, probs, 0.0), uniform_per_row(keys, steps))
    assert torch.equal(tokens, want)
    assert allowed.gather(-1, tokens[:, None]).all()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"temperature": 1.0},
        {"temperature": 0.7, "top_k": 50},
        {"top_p": 0.95},
        {"temperature": 1.2, "top_k": 200, "top_p": 0.9},
        {"greedy": True},
    ],
)
def test_token_depends_on_the_row_only_not_the_batch(kwargs: dict) -> None:
    # real vocabulary size, two threads (kernels split work differently for 1 row and for 32)
    w, vocab = 32, 151_936
    gen = torch.Generator().manual_seed(11)
    logits = (torch.randn(w, vocab, generator=gen) * 5).bfloat16()
    keys, steps = _keys(w, 4), torch.randint(0, 100, (w,), generator=gen)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        tokens, logprobs = sample_next(logits, keys, steps, **kwargs)
        perm = torch.randperm(w, generator=gen)
        shuffled, _ = sample_next(logits[perm], keys[perm], steps[perm], **kwargs)
        alone = [
            sample_next(logits[i : i + 1], keys[i : i + 1], steps[i : i + 1], **kwargs)[0]
            for i in range(0, w, 5)
        ]
    finally:
        torch.set_num_threads(before)
    assert torch.equal(shuffled, tokens[perm])
    assert torch.cat(alone).tolist() == tokens[::5].tolist()
    t = 1.0 if kwargs.get("greedy") else kwargs.get("temperature", 1.0)
    want = torch.log_softmax(logits.float() / t, -1).gather(-1, tokens[:, None]).squeeze(-1)
    torch.testing.assert_close(logprobs, want)
    if not kwargs.get("greedy"):
        assert len(set(tokens.tolist())) > 1  # rows with different keys do differ


def test_extreme_logits_never_pick_filtered_or_zero_probability_tokens() -> None:
    n = 5000
    # one token with all the mass but e^-60: the others are never drawn
    peaked = torch.zeros(n, 50)
    peaked[:, 17] = 60.0
    tokens, logprobs = sample_next(peaked, _keys(n), _steps(n))
    assert (tokens == 17).all() and (logprobs.abs() < 1e-6).all()
    # -inf entries (masked vocabulary), including the first and the last index
    masked = torch.randn(n, 50, generator=torch.Generator().manual_seed(5))
    banned = torch.rand(n, 50, generator=torch.Generator().manual_seed(6)) < 0.7
    banned[:, [0, -1]] = True
    banned[:, 20] = False
    masked = masked.masked_fill(banned, float("-inf"))
    for kwargs in ({}, {"top_k": 3}, {"top_p": 0.9}, {"temperature": 3.0}):
        tokens, logprobs = sample_next(masked, _keys(n), _steps(n, 2), **kwargs)
        assert not banned.gather(-1, tokens[:, None]).any()
        assert torch.isfinite(logprobs).all()


def test_inverse_cdf_never_lands_on_a_zero_weight_at_the_ends_of_the_unit_interval() -> None:
    weights = torch.tensor([[0.0, 0.3, 0.7, 0.0, 0.0], [0.0, 0.0, 1e-30, 0.0, 0.0]])
    lowest, highest = 0.5 / (1 << 24), 1.0 - 0.5 / (1 << 24)  # the extremes uniform_per_row gives
    assert _inverse_cdf(weights, torch.tensor([lowest, lowest])).tolist() == [1, 2]
    assert _inverse_cdf(weights, torch.tensor([highest, highest])).tolist() == [2, 2]
    # u * total rounding up to total: the clamp keeps the last positive weight
    assert _inverse_cdf(weights, torch.tensor([1.0, 1.0])).tolist() == [2, 2]


def test_rows_without_a_finite_logit_are_rejected() -> None:
    logits = torch.zeros(2, 6)
    logits[1] = float("-inf")
    with pytest.raises(ValueError, match="finite"):
        sample_next(logits, _keys(2), _steps(2))


def test_single_row_at_real_vocabulary_matches_softmax_over_many_steps() -> None:
    # W = 1 and V = 151,936: four likely tokens at both ends and the middle of the vocabulary
    vocab, hot = 151_936, [0, 50_000, 100_003, 151_935]
    logits = torch.full((1, vocab), -30.0)
    logits[0, hot] = torch.tensor([1.0, 2.0, 3.0, 0.5])
    key = _keys(1, 9)
    draws = [sample_next(logits, key, torch.tensor([s]))[0].item() for s in range(1500)]
    assert set(draws) <= set(hot)
    counts = torch.tensor([draws.count(t) for t in hot], dtype=torch.float32)
    # 3 dof: P(chi2 > 25) < 1e-4
    assert _chi2(counts, torch.softmax(logits[0, hot], dim=0)) < 25
