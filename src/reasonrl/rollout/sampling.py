"""Token sampling for the rollout engines: temperature, top-k, top-p and reproducible noise.

Sampling uses the Gumbel-max trick: `argmax_v(log p_v + g_v)` with `g_v = -log(-log u_v)` and
`u_v ~ U(0, 1)` draws token v with probability p_v (Gumbel 1954; see e.g. arXiv 1611.01144 §2).
The uniforms come from a counter-based hash of (sequence key, step, vocab index) instead of a
stateful generator. So a sequence's tokens depend only on its key and the model's logits, not on
which other sequences share the batch, when a row joined, or whether finished rows were dropped:
the cached engine with early exit and a naive full-recompute loop give the same tokens.

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


def uniform_noise(keys: torch.Tensor, steps: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Deterministic U(0, 1) noise for each (sequence, step, token).

    Args:
        keys: (W, 2) int64 sequence keys from `sequence_keys`.
        steps: (W,) int64 index of the token being sampled (0 = first response token).
        vocab_size: V.

    Returns:
        (W, V) float32 uniforms strictly inside (0, 1), 24 bits of resolution.
    """
    row = _mix32((keys[:, 0] + _mix32(steps & _M32, _MUL_C, _MUL_B)) & _M32)
    row = _mix32((row ^ keys[:, 1]) & _M32, _MUL_C, _MUL_A)
    vocab = torch.arange(vocab_size, dtype=torch.int64, device=keys.device) * _GOLDEN
    # one finaliser round per element suffices: the row state is already well mixed
    bits = _mix32((row[:, None] + vocab[None, :]) & _M32)
    return ((bits >> 8).to(torch.float32) + 0.5) * (1.0 / (1 << 24))


def filter_logprobs(logprobs: torch.Tensor, *, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Set the log-probs of tokens outside the top-k / nucleus (top-p) set to -inf.

    top-k keeps tokens at least as likely as the k-th most likely one (ties kept). top-p keeps the
    most likely tokens until their cumulative probability reaches top_p, always keeping the first
    (Holtzman et al., arXiv 1904.09751).

    Args:
        logprobs: (W, V) normalised log-probs (after temperature).
        top_k: 0 = off.
        top_p: 1.0 = off.

    Returns:
        (W, V) log-probs with excluded tokens at -inf (not renormalised: argmax is unaffected).
    """
    out = logprobs
    if 0 < top_k < logprobs.shape[-1]:
        kth = torch.topk(out, top_k, dim=-1).values[:, -1:]
        out = out.masked_fill(out < kth, float("-inf"))
    if top_p < 1.0:
        sorted_lp, order = torch.sort(out, dim=-1, descending=True)
        probs = sorted_lp.exp()
        # mass strictly before each token; a token is kept while that mass is still below top_p
        before = torch.cumsum(probs, dim=-1) - probs
        drop_sorted = before >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        out = out.masked_fill(drop, float("-inf"))
    return out


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

    token = argmax_v(filter(log_softmax(z / T))_v + g_v),  g = -log(-log u(key, step, v))
    logprob = log_softmax(z / T)[token]  (full vocabulary, not renormalised after filtering)
    Greedy (or temperature 0, its limit): token = argmax_v z_v, logprob = log_softmax(z)[token].

    Args:
        logits: (W, V) raw next-token logits z (any float dtype; computed in float32).
        keys: (W, 2) int64 sequence keys.
        steps: (W,) int64 response position of the token being drawn.
        temperature, top_k, top_p, greedy: see `SamplingParams`.

    Returns:
        tokens (W,) int64 and logprobs (W,) float32.
    """
    z = logits.float()
    if greedy or temperature == 0:
        logprobs = torch.log_softmax(z, dim=-1)
        tokens = torch.argmax(z, dim=-1)
    else:
        logprobs = torch.log_softmax(z / temperature if temperature != 1.0 else z, dim=-1)
        allowed = filter_logprobs(logprobs, top_k=top_k, top_p=top_p)
        gumbel = -torch.log(-torch.log(uniform_noise(keys, steps, z.shape[-1])))
        tokens = torch.argmax(allowed + gumbel, dim=-1)
    return tokens, logprobs.gather(-1, tokens[:, None]).squeeze(-1)
