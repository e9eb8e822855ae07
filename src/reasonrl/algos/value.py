"""The critic's maths: PPO's clipped value loss and the explained variance of a value function.

Value loss (PPO, arXiv 1707.06347; the clipped form of OpenAI baselines, as in verl's
`verl/trainer/ppo/core_algos.py::compute_value_loss`, itself copied from TRL's PPO trainer):

    V_clip = V_old + clamp(V - V_old, -c, c)  (computed as clamp(V, V_old - c, V_old + c))
    l_t    = 0.5 * max((V - R)^2, (V_clip - R)^2)          (c = None: l_t = 0.5 * (V - R)^2)

V_old are the critic's values at rollout time (the ones GAE used), R the GAE returns
(arXiv 1506.02438). The max makes the loss pessimistic: once V has moved more than c away from
V_old *in the direction that increases the error of the clipped value*, the clipped branch wins
and that token's gradient is zero (V_clip does not depend on V outside the clip band). verl
reports `vf_clipfrac` = the fraction of valid tokens where the clipped branch is strictly larger,
i.e. where clipping cut the gradient. The matrix is reduced like any other loss
(`aggregate.aggregate`, token-mean in verl's critic); the 0.5 is applied per token here, which
is the same as verl's 0.5 * token-mean.

Shapes: N sequences, T response tokens.
"""

from __future__ import annotations

import torch
from torch import Tensor

from reasonrl.algos.aggregate import masked_mean


def _check(**tensors: Tensor) -> None:
    (first, ref), *rest = tensors.items()
    for name, t in rest:
        if t.shape != ref.shape:
            raise ValueError(f"{name} has shape {tuple(t.shape)}, {first} has {tuple(ref.shape)}")


def value_loss(
    values: Tensor,
    old_values: Tensor,
    returns: Tensor,
    mask: Tensor,
    *,
    clip_range: float | None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Per-token clipped value loss (verl/TRL convention, see the module docstring).

    Args:
        values: (N, T) current critic values V (with gradient).
        old_values: (N, T) rollout-time values V_old (the clip anchor; no gradient).
        returns: (N, T) regression targets R (GAE returns; no gradient).
        mask: (N, T) loss mask (metrics are means over entries with mask 1).
        clip_range: c > 0 (verl cliprange_value 0.5), or None for the plain squared error.

    Returns:
        (loss (N, T), metrics) where metrics are detached 0-dim tensors:
        value_loss (masked mean of the loss), vf_clipfrac (fraction of valid tokens where the
        clipped branch is strictly larger), value_error (mean |V - R|), values_mean (mean V).
    """
    _check(values=values, old_values=old_values, returns=returns, mask=mask)
    if clip_range is not None and clip_range <= 0:
        raise ValueError(f"clip_range must be > 0 or None, got {clip_range}")
    old, target = old_values.detach(), returns.detach()
    unclipped = (values - target) ** 2
    if clip_range is None:
        loss = 0.5 * unclipped
        clipped_frac = torch.zeros((), device=values.device)
    else:
        # clamp(V, V_old - c, V_old + c), not V_old + clamp(V - V_old, -c, c): the same value in
        # exact arithmetic, but this form returns V bit-exactly inside the band, so rounding
        # never makes the clipped branch "win" there (and inflate vf_clipfrac).
        v_clip = torch.clamp(values, old - clip_range, old + clip_range)
        clipped = (v_clip - target) ** 2
        loss = 0.5 * torch.maximum(unclipped, clipped)
        clipped_frac = masked_mean((clipped > unclipped).float(), mask)
    with torch.no_grad():
        metrics = {
            "value_loss": masked_mean(loss.detach(), mask),
            "vf_clipfrac": clipped_frac.detach(),
            "value_error": masked_mean((values.detach() - target).abs(), mask),
            "values_mean": masked_mean(values.detach(), mask),
        }
    return loss, metrics


ZERO_VARIANCE = 1e-10  # Var[R] at or below this: explained variance is undefined (NaN)


@torch.no_grad()
def explained_variance(values: Tensor, returns: Tensor, mask: Tensor) -> Tensor:
    """1 - Var[R - V] / Var[R] over the valid tokens (mask 1).

    1 = V predicts R exactly; 0 = no better than the constant mean(R); < 0 = worse than that.
    Both variances are taken over the same tokens, so the Bessel correction cancels (verl's
    `critic/vf_explained_var` in `verl/trainer/ppo/metric_utils.py` uses torch.var on the masked
    tokens, plus 1e-5 in the denominator; here there is no epsilon). NaN where it is undefined:
    fewer than two valid tokens or returns with (numerically) zero variance, Var[R] <= 1e-10:
    a batch where every reward is equal leaves returns that differ only by float rounding, and
    dividing by that would log -1e13 (the metrics writer logs NaN as null).

    Args:
        values: (N, T) predicted values.
        returns: (N, T) targets.
        mask: (N, T) loss mask.

    Returns:
        0-dim float32 tensor.
    """
    _check(values=values, returns=returns, mask=mask)
    m = (mask > 0).float()
    zero = torch.zeros_like(m)
    r = torch.where(m > 0, returns.float(), zero)  # where(): padding may hold anything
    diff = torch.where(m > 0, returns.float() - values.float(), zero)
    n = m.sum()

    def var(x: Tensor) -> Tensor:
        mean = x.sum() / n.clamp(min=1)
        return ((x - mean) ** 2 * m).sum() / n.clamp(min=1)

    var_r = var(r)
    ev = 1.0 - var(diff) / var_r.clamp(min=torch.finfo(torch.float32).tiny)
    defined = (n >= 2) & (var_r > ZERO_VARIANCE)
    return torch.where(defined, ev, torch.full_like(ev, float("nan")))
