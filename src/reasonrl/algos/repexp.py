"""RepExp: elliptical (leverage-score) exploration bonus from a policy's own representations.

Tuyls, Foster, Krishnamurthy, Ash, "Representation-Based Exploration for Language Models: From
Test-Time to Post-Training", arXiv 2510.11686 (ICLR 2026); defaults from the official
`verl-recipe/rep_exp` code (shared/design/techniques.md section 8).

Representation (their Sec. 3): hbar(x, y) = mean over response tokens of the last-layer hidden
state, optionally sparse-randomly projected to d dims (`sparse_projection`, Li et al. 2006).

Bonus (their Eq. 2 and Sec. 3 / App. C for RL): for a set of k representations h_1..h_k (a
prompt's group), centred on their mean,

    Sigma = lam * I_d + sum_j h_j h_j^T          (the group itself, the rollout included)
    b_i   = h_i^T Sigma^{-1} h_i                 (a ridge leverage score, in [0, 1))

added to the reward as r_i = r*_i + beta * b_i; no bonus for a group none of whose rollouts is
correct. `sqrt=True` gives the classic elliptical bonus sqrt(h^T Sigma^{-1} h) (LinUCB style, the
issue's statement); `leave_one_out=True` uses Sigma_{-i} = Sigma - h_i h_i^T, which by
Sherman-Morrison is b / (1 - b) (an identity the tests check). A `reference` set (a buffer of
earlier representations) replaces the group in Sigma.

Why it rewards diversity: k identical vectors share one direction of Sigma, so each gets about
1/k of the leverage a lone vector would get; an outlier owns its direction and scores near 1.

Inference-time selection (their Algorithm 1): greedily add the candidate with the largest bonus
against the ones already chosen, Lambda = Sigma^{-1} kept by rank-one Sherman-Morrison updates.
Since det(Sigma + h h^T) = det(Sigma) (1 + h^T Sigma^{-1} h), this is also the greedy
maximum-determinant (log-det) subset.

All covariance maths in float64 (as the official code does).
"""

from __future__ import annotations

import math

import torch

# Defaults of the official RL code (techniques.md 8.4): ridge lambda, bonus weight beta.
DEFAULT_LAMBDA = 0.01
DEFAULT_COEF = 0.01
# Projection width of the paper's MATH/GSM8K RL runs (128 for AIME, 512 at inference time).
DEFAULT_DIM = 32


def sparse_projection(
    d_in: int, d_out: int, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """(d_in, d_out) very sparse random projection (Li, Hastie, Church, KDD 2006).

    Entries are sqrt(s / d_out) * {+1 w.p. 1/(2s), 0 w.p. 1 - 1/s, -1 w.p. 1/(2s)} with
    s = sqrt(d_in), so E[|x P|^2] = |x|^2 (distances preserved in expectation).
    """
    s = math.sqrt(d_in)
    u = torch.rand(d_in, d_out, generator=generator, dtype=torch.float64)
    signs = torch.where(u < 1 / (2 * s), 1.0, torch.where(u < 1 / s, -1.0, 0.0))
    return signs.to(torch.float64) * math.sqrt(s / d_out)


def elliptical_bonus(
    phi: torch.Tensor,
    reference: torch.Tensor | None = None,
    *,
    lam: float = DEFAULT_LAMBDA,
    center: bool = True,
    leave_one_out: bool = False,
    sqrt: bool = False,
) -> torch.Tensor:
    """Bonus of each of k representations against Sigma = lam I + sum_j r_j r_j^T.

    Args:
        phi: (k, d) representations (one prompt's group).
        reference: (m, d) representations that build Sigma (a buffer); None = `phi` itself.
        lam: ridge regulariser lambda > 0 (0.01 in the official code).
        center: subtract the mean of the set that builds Sigma (the group, or `reference`) from
            both Sigma's vectors and `phi` (the paper centres on the group mean).
        leave_one_out: Sigma without phi_i's own term (only with reference=None).
        sqrt: return sqrt(h^T Sigma^{-1} h) instead of the leverage score h^T Sigma^{-1} h.

    Returns:
        (k,) float64 bonuses.
    """
    if not lam > 0:
        raise ValueError(f"elliptical_bonus: lam must be > 0, got {lam}")
    if leave_one_out and reference is not None:
        raise ValueError("elliptical_bonus: leave_one_out needs reference=None (phi builds Sigma)")
    h = phi.to(torch.float64)
    ref = h if reference is None else reference.to(torch.float64)
    if center:
        mean = ref.mean(dim=0, keepdim=True)
        h, ref = h - mean, ref - mean
    d = h.shape[-1]
    sigma = lam * torch.eye(d, dtype=torch.float64, device=h.device) + ref.T @ ref
    solved = torch.linalg.solve(sigma, h.T).T  # (k, d): Sigma^{-1} h_i
    score = (h * solved).sum(dim=-1).clamp(min=0.0)
    if leave_one_out:  # Sherman-Morrison: h^T (Sigma - h h^T)^{-1} h = l / (1 - l)
        score = score / (1.0 - score).clamp(min=torch.finfo(torch.float64).eps)
    return score.sqrt() if sqrt else score


def group_elliptical_bonus(
    phi: torch.Tensor,
    correct: torch.Tensor | None = None,
    *,
    lam: float = DEFAULT_LAMBDA,
    center: bool = True,
    leave_one_out: bool = False,
    sqrt: bool = False,
) -> torch.Tensor:
    """`elliptical_bonus` within each of B groups of G, zero for groups with no correct rollout.

    Args:
        phi: (B, G, d) representations.
        correct: (B, G) bool; a group with no True gets no bonus (the paper's gating). None =
            no gating.
        lam, center, leave_one_out, sqrt: as `elliptical_bonus`.

    Returns:
        (B, G) float64 bonuses.
    """
    out = torch.stack(
        [
            elliptical_bonus(g, lam=lam, center=center, leave_one_out=leave_one_out, sqrt=sqrt)
            for g in phi
        ]
    )
    if correct is not None:
        out = out * correct.any(dim=1, keepdim=True).to(out.dtype)
    return out


def diverse_subset(
    phi: torch.Tensor,
    k: int,
    *,
    lam: float = DEFAULT_LAMBDA,
    first: int | None = None,
    center: bool = False,
    generator: torch.Generator | None = None,
) -> list[int]:
    """Indices of k of the N candidates chosen by RepExp's greedy Algorithm 1.

    Start from `first` (default: one drawn uniformly, as the paper does), Lambda = lam^{-1} I;
    then repeatedly take the unchosen candidate maximising h^T Lambda h and fold it in by
    Sherman-Morrison: Lambda <- Lambda - Lambda h h^T Lambda / (1 + h^T Lambda h). Equivalent to
    greedy maximisation of det(lam I + sum_{chosen} h h^T).

    Args:
        phi: (N, d) candidate representations.
        k: subset size (1 <= k <= N).
        lam: ridge lambda of Sigma_0 = lam I.
        first: index of the first pick; None = uniform at random with `generator`.
        center: subtract the candidates' mean first.
        generator: for the random first pick.

    Returns:
        k distinct indices in the order chosen.
    """
    n, d = phi.shape
    if not 1 <= k <= n:
        raise ValueError(f"diverse_subset: k must be in [1, {n}], got {k}")
    h = phi.to(torch.float64)
    if center:
        h = h - h.mean(dim=0, keepdim=True)
    if first is None:
        first = int(torch.randint(n, (1,), generator=generator))
    lam_inv = torch.eye(d, dtype=torch.float64, device=h.device) / lam
    chosen = [first]
    taken = torch.zeros(n, dtype=torch.bool, device=h.device)
    taken[first] = True
    while len(chosen) < k:
        v = lam_inv @ h[chosen[-1]]
        lam_inv = lam_inv - torch.outer(v, v) / (1.0 + h[chosen[-1]] @ v)
        scores = ((h @ lam_inv) * h).sum(dim=-1).masked_fill(taken, float("-inf"))
        nxt = int(scores.argmax())
        chosen.append(nxt)
        taken[nxt] = True
    return chosen
