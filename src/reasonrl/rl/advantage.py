"""Scores -> advantages: reward shaping, then the configured estimator (formulas in `algos`).

    shaped = raw (not applicable -> its group's applicable mean) + DAPO overlong penalty
             + length_penalty_coef * Kimi length reward
    group estimators (grpo, rloo, ...):  A (B, G) = ADVANTAGES[name](shaped), spread over tokens
    remax:         A = shaped - R_greedy(prompt)
    reinforce_pp:  r_t = shaped on the last token (- kl_coef * KL_t if kl_in=reward);
                   A = batch-whitened reward-to-go
    gae:           same token rewards; A, returns = GAE(r, V_critic; gamma, lam)

A not-applicable reward (None) gets its group's applicable mean, so it moves neither the
baseline nor (much) the spread; the step also masks its loss (`train_step`), so it teaches nothing.
"""

from __future__ import annotations

import torch
from torch import Tensor

from reasonrl.algos.advantages import (
    ADVANTAGES,
    advantage_kwargs,
    broadcast_to_tokens,
    remax_advantages,
)
from reasonrl.algos.kl import fold_kl_into_rewards
from reasonrl.algos.shaping import kimi_length_penalty, overlong_penalty
from reasonrl.algos.token_advantages import (
    gae_advantages,
    outcome_token_rewards,
    reinforce_pp_advantages,
)
from reasonrl.config import RLConfig
from reasonrl.rl.envs import response_limit
from reasonrl.rl.rollouts import Groups

TOKEN_LEVEL = ("reinforce_pp", "gae")


def shaped_scores(groups: Groups, cfg: RLConfig, *, step: int = 0) -> Tensor:
    """(B, G) scores the advantage sees: raw rewards plus the configured length shaping; the
    Kimi length penalty only from RL step `algo.length_penalty_start` on (its warm-up)."""
    algo = cfg.algo
    raw, ok = groups.scores, groups.applicable()
    fill = torch.nan_to_num(torch.nanmean(raw, dim=1, keepdim=True), nan=0.0).expand_as(raw)
    scores = torch.where(ok, raw, fill)
    lengths = groups.lengths()
    if algo.overlong_buffer:
        scores = scores + overlong_penalty(
            lengths,
            max_len=response_limit(cfg),
            buffer=algo.overlong_buffer,
            factor=algo.overlong_factor,
        )
    if algo.length_penalty_coef > 0 and step >= algo.length_penalty_start:
        scores = scores + algo.length_penalty_coef * kimi_length_penalty(lengths, groups.correct())
    return scores


def compute_advantages(
    cfg: RLConfig,
    scores: Tensor,
    mask: Tensor,
    *,
    values: Tensor | None = None,
    kl: Tensor | None = None,
    kl_coef: float = 0.0,
    greedy_scores: Tensor | None = None,
    dense: Tensor | None = None,
    rows: slice | None = None,
    scale: Tensor | None = None,
) -> tuple[Tensor, Tensor | None]:
    """(N, T) token advantages, and the (N, T) returns the critic regresses on (gae only).

    Args:
        scores: (B, G) shaped scores (`shaped_scores`).
        mask: (N, T) loss mask, N = B * G in row-major order.
        values: (N, T) critic values at rollout time (advantage=gae).
        kl: (N, T) per-token KL to the reference, folded into the token rewards (kl_in=reward).
        kl_coef: its weight (the KL controller's current value).
        greedy_scores: (B,) raw greedy-completion rewards (advantage=remax).
        dense: (N, T) dense step rewards added to the token rewards (reward.dense, `rl.dense`).
        rows: data parallel (`reasonrl.dist`): `scores` (and `greedy_scores`) are the groups of
            all ranks, `mask` holds this rank's groups `rows` of them, so batch statistics
            (Lite PPO's batch std, REINFORCE++-baseline's whitening) are the whole batch's.
            Token-level estimators are refused (their whitening runs over token tensors).
        scale: (B, G) multiplier of a group estimator's sequence advantage (GRPO-S's alpha,
            `rl.drirl`; algo.drirl), shaped like `scores`.
    """
    algo = cfg.algo
    name = algo.advantage
    if rows is not None and name in TOKEN_LEVEL:
        raise ValueError(f"advantage={name} is not supported across ranks yet")
    if name in TOKEN_LEVEL:
        rewards = outcome_token_rewards(scores.reshape(-1), mask)
        if dense is not None:  # Clip/Delta step rewards at the steps' last tokens
            rewards = rewards + dense * mask
        if kl is not None:
            rewards = fold_kl_into_rewards(rewards, kl, mask, kl_coef)
        if name == "reinforce_pp":
            adv, _ = reinforce_pp_advantages(
                rewards, mask, gamma=algo.gamma, std_unbiased=algo.std_unbiased
            )
            return adv, None
        if values is None:
            raise ValueError("advantage=gae needs critic values")
        return gae_advantages(rewards, values, mask, gamma=algo.gamma, lam=algo.lam)
    if name == "remax":
        if greedy_scores is None:
            raise ValueError("advantage=remax needs greedy_scores")
        # a greedy completion whose reward does not apply: fall back to the group mean baseline
        baseline = torch.where(torch.isnan(greedy_scores), scores.mean(dim=1), greedy_scores)
        seq = remax_advantages(scores, baseline)
    else:
        seq = ADVANTAGES[name](scores, **advantage_kwargs(name, dict(algo)))
        if scale is not None:  # GRPO-S: alpha * A (arXiv 2503.18991)
            seq = scale * seq
    return broadcast_to_tokens(seq if rows is None else seq[rows], mask), None
