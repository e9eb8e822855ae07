"""Preference losses and read-outs: Bradley–Terry, DPO, IPO, conservative DPO; accuracy and ECE.

Pure tensor maths (tensors in, tensors out). Conventions:
- every loss returns one value PER PAIR, shape (N,); the caller averages (a batch of pairs);
- "chosen" is the preferred response y_w, "rejected" the other one y_l;
- the DPO family takes SEQUENCE log-prob sums log pi(y|x) = sum_t log pi(y_t | x, y_<t) over the
  response tokens only (the prompt excluded), of the policy and of the frozen reference;
- h = log(pi(y_w)/ref(y_w)) - log(pi(y_l)/ref(y_l)) is the log-ratio margin of a pair; the
  implicit reward of a response is beta * log(pi(y)/ref(y)) (DPO paper, Sec. 5).

Sources: Bradley–Terry reward modelling as summarised in the IRL survey (arXiv 2507.13158, §9 of
techniques.md) and InstructGPT (arXiv 2203.02155); the margin term as in Llama 2 (arXiv
2307.09288, Eq. 2); DPO (arXiv 2305.18290, Eq. 7); IPO (arXiv 2310.12036, Eq. 17); conservative
DPO / label smoothing (Mitchell 2023, "A note on DPO with noisy preferences", the `label_smoothing`
of TRL's DPOTrainer; the DPO follow-ups, no arXiv id of its own: cited via the DPO paper).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bradley_terry_loss(
    chosen: torch.Tensor, rejected: torch.Tensor, *, margin: torch.Tensor | float = 0.0
) -> torch.Tensor:
    """-log sigma(r_w - r_l - m) per pair, shape (N,).

    Bradley–Terry: P(y_w > y_l | x) = sigma(r(x, y_w) - r(x, y_l)) (arXiv 2507.13158); the
    optional margin m (Llama 2, arXiv 2307.09288, Eq. 2) asks the chosen score to exceed the
    rejected one by at least m before the loss flattens. d/dr_w = -(1 - sigma(r_w - r_l - m)),
    d/dr_l = +(1 - sigma(...)). Computed as softplus(-(r_w - r_l - m)), stable for any gap.
    """
    return F.softplus(-(chosen - rejected - margin))


def log_ratio_margin(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
) -> torch.Tensor:
    """h = (log pi(y_w) - log ref(y_w)) - (log pi(y_l) - log ref(y_l)), shape (N,)."""
    return (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    *,
    beta: float = 0.1,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """DPO, and with label_smoothing > 0 conservative DPO (cDPO), per pair (N,).

    DPO (arXiv 2305.18290, Eq. 7): L = -log sigma(beta * h), h = `log_ratio_margin`.
    cDPO (label smoothing eps: the label is flipped with probability eps; Mitchell 2023, the
    DPO authors' note, TRL's `label_smoothing`):
        L = -(1 - eps) * log sigma(beta * h) - eps * log sigma(-beta * h).
    At policy == reference h = 0 and L = log 2 for every eps (the closed-form check).
    """
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
    h = log_ratio_margin(policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    loss = F.softplus(-beta * h)  # -log sigma(beta h)
    if label_smoothing:
        loss = (1 - label_smoothing) * loss + label_smoothing * F.softplus(beta * h)
    return loss


def ipo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    *,
    beta: float = 0.1,
) -> torch.Tensor:
    """IPO (arXiv 2310.12036, Eq. 17), per pair (N,): L = (h - 1 / (2 * tau))^2 with tau = beta.

    A squared loss that regresses the log-ratio margin h to 1/(2 tau) instead of pushing it to
    infinity (DPO's sigmoid saturates only at h -> inf, which overfits deterministic
    preferences). h uses sequence log-prob SUMS, as in DPO (the paper's Eq. 17; TRL averages per
    token instead: not done here).
    """
    if beta <= 0:
        raise ValueError(f"IPO needs beta (tau) > 0, got {beta}")
    h = log_ratio_margin(policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    return (h - 1.0 / (2.0 * beta)) ** 2


PREFERENCE_LOSSES = ("dpo", "ipo", "cdpo")


def preference_loss(
    kind: str,
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    *,
    beta: float,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """One of `PREFERENCE_LOSSES` by name, per pair (N,); `cdpo` is DPO with label smoothing."""
    args = (policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    if kind == "dpo":
        return dpo_loss(*args, beta=beta)
    if kind == "cdpo":
        return dpo_loss(*args, beta=beta, label_smoothing=label_smoothing)
    if kind == "ipo":
        return ipo_loss(*args, beta=beta)
    raise ValueError(f"unknown preference loss {kind!r}; choose one of {PREFERENCE_LOSSES}")


def pairwise_accuracy(chosen: torch.Tensor, rejected: torch.Tensor) -> float:
    """Fraction of pairs with r_w > r_l; a tie counts one half (a constant scorer gets 0.5)."""
    if chosen.numel() == 0:
        return float("nan")
    wins = (chosen > rejected).float() + 0.5 * (chosen == rejected).float()
    return float(wins.mean())


def expected_calibration_error(probs: torch.Tensor, *, bins: int = 10) -> float:
    """ECE of P(chosen > rejected) = sigma(r_w - r_l) against the label "chosen wins" (always 1).

    Every pair's prediction is folded onto the predicted winner: confidence c = max(p, 1 - p),
    correct = (p > 0.5) (p = 0.5 counts as half right). With equal-width bins on c in [0.5, 1],
    ECE = sum_b (n_b / N) * |mean correct_b - mean c_b| (Guo et al., arXiv 1706.04599, Eq. 3).
    """
    if probs.numel() == 0:
        return float("nan")
    p = probs.detach().double().flatten()
    conf = torch.maximum(p, 1 - p)
    correct = (p > 0.5).double() + 0.5 * (p == 0.5).double()
    # bins of width 0.5/bins over [0.5, 1]; c = 1 goes into the last bin
    index = ((conf - 0.5) / 0.5 * bins).long().clamp(0, bins - 1)
    total = 0.0
    for b in range(bins):
        sel = index == b
        if sel.any():
            total += float(sel.double().mean()) * abs(float(correct[sel].mean() - conf[sel].mean()))
    return total


__all__ = [
    "PREFERENCE_LOSSES",
    "bradley_terry_loss",
    "dpo_loss",
    "expected_calibration_error",
    "ipo_loss",
    "log_ratio_margin",
    "pairwise_accuracy",
    "preference_loss",
]
