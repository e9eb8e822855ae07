"""DR-IRL's GRPO-S in the RL loop (`algo.drirl`): the (B, G) advantage scale alpha of a step.

    alpha_ji = alpha^D_ji * alpha^M_j          (formulas: `reasonrl.algos.drirl`, arXiv 2503.18991)

What each ingredient is here (the paper's choices replaced by the verifiable task's own):
- category j: the prompt's difficulty bucket, `data.sampler.difficulty_key` of its meta
  (`data.stats.difficulty_of`; the synthetic `op`); prompts without one share one category;
- reward gap R_ji = r(demonstration) - r(response), with r(demonstration) = 1: the gold solution
  of a verifiable 0/1 reward scores 1 by construction, so the gap is 1 - score (scores as the
  advantage sees them, shaping included); gaps whose squared deviation from the category mean
  exceed `algo.drirl_tau` are outliers;
- data hardness delta_ji = 1 - W: on the synthetic task W is the fraction of the response's
  steps that match a gold step (`tasks.synth.reward.step_scores`: right quantity, value and
  parents), the verifier's exact stand-in for the paper's sentence-embedding similarity (a
  response without steps has delta = 1); on other tasks there is no step-level gold, so
  alpha^D = 1 and only alpha^M scales.
alpha multiplies the group advantage (group estimators only; `config.rl.AlgoConfig` refuses the
others), so alpha = 1 is exactly the configured estimator (tested).
"""

from __future__ import annotations

import torch
from torch import Tensor

from reasonrl.algos.drirl import hardness_coefficients, responsiveness_coefficients
from reasonrl.config import RLConfig
from reasonrl.data.stats import difficulty_of
from reasonrl.rl.rollouts import Groups


def step_match_fraction(text: str, trace: str) -> float:
    """W: the fraction of the response's steps that score 1 against the gold trace; 0 when it
    has no steps."""
    from reasonrl.tasks.synth.reward import step_scores

    steps = step_scores(text, trace)
    return sum(s for _, s in steps) / len(steps) if steps else 0.0


def hardness(groups: Groups) -> Tensor | None:
    """(B, G) delta = 1 - W of every completion, or None unless every prompt carries a gold
    trace (the synthetic task's meta["trace"])."""
    traces = [s.meta.get("trace") if isinstance(s.meta, dict) else None for s in groups.samples]
    if not all(isinstance(t, str) for t in traces):
        return None
    rows = [[1.0 - step_match_fraction(c.text, t) for c in comps]  # type: ignore[arg-type]
            for t, comps in zip(traces, groups.completions, strict=True)]  # fmt: skip
    return torch.tensor(rows, dtype=torch.float32)


def drirl_alpha(groups: Groups, scores: Tensor, cfg: RLConfig) -> tuple[Tensor, dict[str, float]]:
    """(alpha (B, G), metrics `drirl/alpha_mean`, `drirl/alpha_m_*`, `drirl/hardness`) of one
    step's groups; `scores` (B, G) are the shaped scores the advantage reads."""
    key = cfg.data.sampler.difficulty_key
    b, g = scores.shape
    diff = [difficulty_of(s, key) for s in groups.samples]
    names = sorted({d for d in diff if d is not None})
    ids = [names.index(d) if d is not None else -1 for d in diff]
    categories = torch.tensor(ids, dtype=torch.long).unsqueeze(1).expand(b, g).reshape(-1)
    gaps = (1.0 - scores.float()).reshape(-1)
    alpha_m = responsiveness_coefficients(gaps, categories, tau=cfg.algo.drirl_tau)
    delta = hardness(groups)
    alpha_d = (torch.ones_like(alpha_m) if delta is None
               else hardness_coefficients(delta.reshape(-1), categories))  # fmt: skip
    alpha = (alpha_d * alpha_m).reshape(b, g)
    metrics = {"drirl/alpha_mean": float(alpha.mean()), "drirl/alpha_max": float(alpha.max())}
    for c, name in enumerate(names):
        members = categories == c
        metrics[f"drirl/alpha_m_{name:g}"] = float(alpha_m[members][0])
    if delta is not None:
        metrics["drirl/hardness"] = float(delta.mean())
    return alpha, metrics


__all__ = ["drirl_alpha", "hardness", "step_match_fraction"]
