"""Dense step rewards of a step's groups as (N, T) token rewards (arXiv 2410.15115).

    step scores  = the synthetic task's per-step correctness (`tasks.synth.reward.step_scores`)
    refined      = raw | Clip | Delta | Clip-Delta of them (`algos.dense`, reward.dense_eta)
    token reward = reward.dense_coef * refined, on the response token where each step ends

`rl.advantage.compute_advantages` adds them to the outcome token rewards of a token-level
estimator (REINFORCE++, GAE). A step's end character is mapped to its token by decoding
prefixes of the completion's tokens (binary search), so any tokenizer works.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from reasonrl.algos.dense import refine_step_rewards, step_token_rewards
from reasonrl.rl.rollouts import Groups
from reasonrl.tasks.synth.reward import step_scores
from reasonrl.types import Completion


def char_to_token(tokenizer: Any, completion: Completion, end: int) -> int:
    """Index of the first response token whose decoded prefix reaches `end` characters."""
    ids = list(completion.token_ids)
    lo, hi = 0, max(len(ids) - 1, 0)
    while lo < hi:
        mid = (lo + hi) // 2
        if len(tokenizer.decode(ids[: mid + 1], skip_special_tokens=False)) >= end:
            hi = mid
        else:
            lo = mid + 1
    return lo


def dense_token_rewards(
    groups: Groups, kind: str, *, coef: float, eta: float, tokenizer: Any, mask: Tensor
) -> tuple[Tensor, dict[str, float]]:
    """(N, T) dense token rewards of the groups' completions and their metrics.

    Args:
        groups: the step's scored groups (synthetic task: samples carry meta["trace"]).
        kind: raw, clip, delta or clip_delta (`reward.dense`).
        coef: weight of the refined step rewards (`reward.dense_coef`).
        eta: Clip's threshold (`reward.dense_eta`).
        tokenizer: the policy's tokenizer (decodes token prefixes).
        mask: (N, T) loss mask of the batch; rows follow `groups.flat_completions()`.

    Returns: token rewards, and reward/dense_steps (mean steps per completion),
        reward/dense_score (mean summed raw step score) and reward/dense_return (mean summed
        refined reward, coef included).
    """
    rows: list[list[tuple[int, float]]] = []
    for sample, group in zip(groups.samples, groups.completions, strict=True):
        trace = sample.meta.get("trace") if isinstance(sample.meta, dict) else None
        if not isinstance(trace, str):
            raise ValueError(f"reward.dense needs sample.meta['trace'] (sample {sample.id!r})")
        for c in group:
            steps = step_scores(c.text, trace)
            rows.append([(char_to_token(tokenizer, c, e), s) for e, s in steps])
    n, k = len(rows), max((len(r) for r in rows), default=0)
    scores, ends = torch.zeros(n, max(k, 1)), torch.zeros(n, max(k, 1), dtype=torch.long)
    valid = torch.zeros(n, max(k, 1), dtype=torch.bool)
    for i, row in enumerate(rows):
        for j, (t, s) in enumerate(row):
            scores[i, j], ends[i, j], valid[i, j] = s, t, True
    refined = coef * refine_step_rewards(scores, valid, kind=kind, eta=eta)  # type: ignore[arg-type]
    tokens = step_token_rewards(refined, ends, valid, mask)
    metrics = {
        "reward/dense_steps": float(valid.sum(dim=1).float().mean()) if n else 0.0,
        "reward/dense_score": float(scores.sum(dim=1).mean()) if n else 0.0,
        "reward/dense_return": float(tokens.sum(dim=1).mean()) if n else 0.0,
    }
    return tokens, metrics


def step_dense_rewards(
    groups: Groups, cfg: Any, tokenizer: Any, mask: Tensor
) -> tuple[Tensor | None, dict[str, float]]:
    """`dense_token_rewards` as `reward.dense` configures it; (None, {}) when it is none."""
    r = cfg.reward
    if r.dense == "none":
        return None, {}
    return dense_token_rewards(
        groups, r.dense, coef=r.dense_coef, eta=r.dense_eta, tokenizer=tokenizer, mask=mask
    )
