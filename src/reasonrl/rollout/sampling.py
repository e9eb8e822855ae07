"""Token sampling for the rollout engines: temperature, top-k, top-p and reproducible noise.

A token is drawn by inverse-CDF sampling (Devroye 1986, *Non-Uniform Random Variate Generation*,
§2.2): with weights w_v = p_v for allowed tokens and 0 otherwise, the token is the first v with
cumsum(w)_v > u * sum(w) for ONE uniform u per row. The uniform comes from a counter-based hash of
(sequence key, step) instead of a stateful generator (the idea of Salmon et al., SC 2011,
"Parallel random numbers: as easy as 1, 2, 3"). So a sequence's tokens depend only on its key, its
step and the model's logits, not on which other sequences share the batch, when a row joined, or
whether finished rows were dropped: the cached engine with early exit and a naive full-recompute
loop give the same tokens. Every step is per row (softmax, exact top-k, a sequential cumsum),
so nothing about the other rows, not even float rounding, reaches a row's token.

Cost: one uniform per row instead of V (the former Gumbel-max noise built a (W, V) hash tensor and
cost ~10x the LM-head matmul at V = 151,936). Top-k and top-p work on the few largest probabilities
(`torch.topk`), never a full-vocabulary sort unless the nucleus is huge (flat rows: then top-p
costs a sort, ~5-12x the matmul, as the old sampler did)
(benchmarks/sampler_bench.py has the timings).

Shapes: W rows (sequences) in the batch, V vocabulary.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch

_M32 = 0xFFFFFFFF
# Odd multipliers below 2**31, so a product of a 32-bit value stays below 2**63 (no int64 overflow).
_MUL_A = 0x7FEB352D
_MUL_B = 0x5BD1E995
_MUL_C = 0x2C1B3C6D
_GOLDEN = 0x1E3779B9


def _mix32(x: torch.Tensor, mul_a: int = _MUL_A, mul_b: int = _MUL_B) -> torch.Tensor:
    """Bijective 32-bit finaliser (xor-shift-multiply, after C. Wellons' lowbias32) on int64."""
    x = x ^ (x >> 16)
    x = (x * mul_a) & _M32
    x = x ^ (x >> 15)
    x = (x * mul_b) & _M32
    return x ^ (x >> 16)


def sequence_keys(seed: int, prompts: Sequence[Sequence[int]], n: int) -> torch.Tensor:
    """One 64-bit key per sequence, from the seed, the prompt's tokens and the sample index.

    The key hashes (seed, prompt token ids, how many earlier prompts in the list are identical,
    sample index j), so it does not depend on the prompt's position in the batch: generating a
    prompt alone or inside a batch gives the same key, while repeated prompts still differ.

    Args:
        seed: the sampling seed.
        prompts: B prompts of token ids.
        n: samples per prompt (G).

    Returns:
        (B*G, 2) int64 tensor of two 32-bit halves, row b*G + j for sample j of prompt b.
    """
    seen: dict[tuple[int, ...], int] = {}
    keys: list[list[int]] = []
    for prompt in prompts:
        ids = tuple(int(t) for t in prompt)
        occurrence = seen.get(ids, 0)
        seen[ids] = occurrence + 1
        base = hashlib.blake2b(digest_size=16)
        base.update(f"{seed}|{occurrence}|{len(ids)}|".encode())
        base.update(torch.tensor(ids, dtype=torch.int64).numpy().tobytes())
        for j in range(n):
            h = base.copy()
            h.update(j.to_bytes(8, "little"))
            digest = int.from_bytes(h.digest()[:8], "little")
            keys.append([digest & _M32, digest >> 32])
    return torch.tensor(keys, dtype=torch.int64).reshape(-1, 2)


def uniform_per_row(keys: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """Deterministic U(0, 1) draw for each (sequence, step).

    Args:
        keys: (W, 2) int64 sequence keys from `sequence_keys`.
        steps: (W,) int64 index of the token being sampled (0 = first response token).

    Returns:
        (W,) float32 uniforms strictly inside (0, 1), on the 2**-24 grid (float32's resolution
        below 1, so finer bits could not change which cumulative-sum interval u falls in).
    """
    row = _mix32((keys[:, 0] + _mix32(steps & _M32, _MUL_C, _MUL_B)) & _M32)
    row = _mix32((row ^ keys[:, 1]) & _M32, _MUL_C, _MUL_A)
    # a last finaliser round, as the former per-vocabulary noise had on top of this row state
    bits = _mix32((row + _GOLDEN) & _M32)
    return ((bits >> 8).to(torch.float32) + 0.5) * (1.0 / (1 << 24))


def filter_logprobs(logprobs: torch.Tensor, *, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Set the log-probs of tokens outside the top-k / nucleus (top-p) set to -inf.

    The set is `allowed_tokens(logprobs.exp(), top_k=top_k, top_p=top_p)`.

    Args:
        logprobs: (W, V) normalised log-probs (after temperature).
        top_k: 0 = off.
        top_p: 1.0 = off.

    Returns:
        (W, V) log-probs with excluded tokens at -inf (not renormalised: argmax is unaffected).
    """
    if not (0 < top_k < logprobs.shape[-1] or top_p < 1.0):
        return logprobs
    keep = allowed_tokens(logprobs.exp(), top_k=top_k, top_p=top_p)
    return logprobs.masked_fill(~keep, float("-inf"))


def allowed_tokens(probs: torch.Tensor, *, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """(W, V) bool: the tokens top-k / top-p sampling may draw (the reference definition).

    top-k keeps tokens at least as likely as the k-th most likely one (ties kept). top-p keeps the
    most likely tokens until their cumulative probability reaches top_p, always keeping the first
    (Holtzman et al., arXiv 1904.09751): a token is kept while the mass of the tokens sorted before
    it is below top_p; tokens tied with the last kept one are kept too (as for top-k), so the set
    does not depend on how a sort orders ties. With both, top-p is applied after top-k, on the
    same full-vocabulary probabilities (not renormalised over the top k). `sample_next` computes
    the same set from the few largest probabilities only.

    Args:
        probs: (W, V) probabilities (after temperature).
        top_k: 0 = off.
        top_p: 1.0 = off.
    """
    keep = torch.ones_like(probs, dtype=torch.bool)
    if 0 < top_k < probs.shape[-1]:
        keep &= probs >= torch.topk(probs, top_k, dim=-1).values[:, -1:]
    if top_p < 1.0:
        sorted_p = torch.sort(probs.masked_fill(~keep, 0.0), dim=-1, descending=True).values
        last = _nucleus_size(sorted_p, top_p) - 1
        keep &= probs >= sorted_p.gather(-1, last[:, None])
    return keep


def _nucleus_size(sorted_probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """(W,) how many of the descending probabilities have preceding probability mass below top_p.

    Only the first n entries matter, so a prefix of the full sorted row gives the same count while
    the count is below the prefix's length (cumsum is sequential: same prefix, same sums).
    """
    before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
    return (before < top_p).sum(dim=-1)


def _inverse_cdf(weights: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """(W,) index of the first v with cumsum(weights)_v > u * sum(weights), never a zero weight.

    float32 cumsum of non-negative terms is non-decreasing, so the first v whose cumulative sum
    exceeds the target has c_v > c_{v-1}, hence weight_v > 0. Only u * total rounding up to total
    (u close to 1) finds no such v; the clamp then takes the first index reaching the total, which
    is also a positive weight.
    """
    cum = torch.cumsum(weights, dim=-1)
    total = cum[:, -1:].contiguous()  # searchsorted wants contiguous values
    pos = torch.searchsorted(cum, u[:, None] * total, right=True)
    last = torch.searchsorted(cum, total)
    return torch.minimum(pos, last).squeeze(-1)


# Candidates taken by topk when top-p is on: nuclei are usually far smaller; rows whose nucleus is
# not decided within them retry with 4x as many (the result does not depend on the count).
_TOP_P_CANDIDATES = 1024


def _sample_filtered(
    probs: torch.Tensor, u: torch.Tensor, top_k: int, top_p: float
) -> torch.Tensor:
    """Inverse-CDF draw among `allowed_tokens(probs, top_k, top_p)` in vocabulary order, from the
    top K probabilities only; the token equals `_inverse_cdf` over the masked full row."""
    w, v = probs.shape
    k = top_k if 0 < top_k < v else v
    # more than k candidates: one strictly below the threshold rules out ties outside them, and
    # bf16 logits tie often (k + 1 alone needed a second round for most rows)
    n_cand = min(v, 2 * k + 32, _TOP_P_CANDIDATES if top_p < 1.0 else v)
    tokens = torch.empty(w, dtype=torch.int64, device=probs.device)
    todo = torch.arange(w, device=probs.device)
    while todo.numel():
        rows = probs if len(todo) == w else probs[todo]  # first round: all rows, no copy
        if n_cand == v:
            vals, idx = torch.sort(rows, dim=-1, descending=True)
        else:
            vals, idx = torch.topk(rows, n_cand, dim=-1)  # sorted, descending
        keep = torch.full((len(todo),), k, dtype=torch.int64, device=probs.device)
        if top_p < 1.0:
            keep = torch.minimum(keep, _nucleus_size(vals, top_p))
        thr = vals.gather(-1, keep.clamp(max=n_cand)[:, None] - 1)
        # decided when the last candidate is strictly below the threshold: then the nucleus
        # count was not cut short and no token outside the candidates ties with the threshold.
        # A zero threshold is decided too: every positive probability is then a candidate.
        done = (vals[:, -1] < thr[:, 0]) | (thr[:, 0] == 0) | (n_cand == v)
        # a nucleus far beyond the candidates (flat rows) goes straight to the full sort
        far_short = top_p < 1.0 and bool((vals[~done].sum(-1) < top_p / 2).any())
        if done.any():
            if not done.all():
                vals, idx, thr = vals[done], idx[done], thr[done]
            order = idx.argsort(dim=-1)  # vocabulary order: the same cumsum as over the full row
            weights = torch.where(vals >= thr, vals, 0.0).gather(-1, order)
            pos = _inverse_cdf(weights, u[todo[done]])
            tokens[todo[done]] = idx.gather(-1, order).gather(-1, pos[:, None]).squeeze(-1)
        todo = todo[~done]
        n_cand = v if far_short else min(v, 4 * n_cand)
    return tokens


def sample_next(
    logits: torch.Tensor,
    keys: torch.Tensor,
    steps: torch.Tensor,
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    greedy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw one token per row and return it with its log-prob at temperature T.

    p = softmax(z / T); allowed = allowed_tokens(p, top_k, top_p);
    token = first v (vocabulary order) with sum_{w <= v, allowed} p_w > u * sum_{allowed} p,
    u = uniform_per_row(key, step); logprob = log_softmax(z / T)[token] (full vocabulary, not
    renormalised after filtering). The token has probability p_v / sum_allowed(p) (to float32
    resolution, 2**-24: u and the cumulative sums are float32) and is never a
    filtered or zero-probability one.
    Greedy (or temperature 0, its limit): token = argmax_v z_v, logprob = log_softmax(z)[token].

    Args:
        logits: (W, V) raw next-token logits z (any float dtype; computed in float32); every row
            needs a finite maximum.
        keys: (W, 2) int64 sequence keys.
        steps: (W,) int64 response position of the token being drawn.
        temperature, top_k, top_p, greedy: see `SamplingParams`.

    Returns:
        tokens (W,) int64 and logprobs (W,) float32.

    Raises:
        ValueError: a row whose log-softmax is not finite (all -inf, +inf or NaN logits).
    """
    z = logits.float()
    if greedy or temperature == 0:
        logprobs = torch.log_softmax(z, dim=-1)
        _check_rows(logprobs)
        tokens = torch.argmax(z, dim=-1)
        return tokens, logprobs.gather(-1, tokens[:, None]).squeeze(-1)
    # softmax, not log_softmax + exp: one pass over (W, V) fewer. log(p_token) is log_softmax's
    # value to float32 rounding (relative error of p ~1e-7 -> absolute error ~1e-7 in the log)
    if temperature != 1.0:  # in place when .float() made a copy: no fresh (W, V) buffer
        z = z.div_(temperature) if z.data_ptr() != logits.data_ptr() else z / temperature
    probs = torch.softmax(z, dim=-1)
    _check_rows(probs)
    u = uniform_per_row(keys, steps)
    if 0 < top_k < z.shape[-1] or top_p < 1.0:
        tokens = _sample_filtered(probs, u, top_k, top_p)
    else:
        tokens = _inverse_cdf(probs, u)
    return tokens, probs.gather(-1, tokens[:, None]).squeeze(-1).log()


def _check_rows(x: torch.Tensor) -> None:
    """(log-)softmax turns a row with no finite maximum (all -inf, a +inf or a NaN) into NaNs."""
    if torch.isnan(x[:, 0]).any():
        raise ValueError("sample_next: a row of logits has no finite log-softmax (all -inf or NaN)")
