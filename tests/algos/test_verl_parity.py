"""Our functions, called with verl 0.9.1's conventions passed explicitly, reproduce verl's maths.

Each reference below is written independently in loop form from verl's definitions as recorded in
../shared/design/techniques.md (§7, §3.3, D2, D3) and verl `trainer/ppo/core_algos.py`; nothing is
imported from verl. Tolerance 1e-6 everywhere.
"""

from __future__ import annotations

import math

import pytest
import torch

from reasonrl.algos.advantages import (
    broadcast_to_tokens,
    gae_advantages,
    grpo_advantages,
    reinforce_pp_advantages,
    reinforce_pp_baseline_advantages,
    remax_advantages,
    rloo_advantages,
)
from reasonrl.algos.aggregate import aggregate
from reasonrl.algos.correction import rollout_is_weights
from reasonrl.algos.kl import AdaptiveKLController, kl_penalty
from reasonrl.algos.policy_loss import cispo, gspo, ppo_clip

TOL = {"atol": 1e-6, "rtol": 0.0}
B, G, TLEN = 3, 4, 7


def _batch(seed=0):
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, TLEN + 1, (B * G,), generator=gen)
    mask = (torch.arange(TLEN)[None, :] < lengths[:, None]).float()
    scores = torch.randint(0, 2, (B * G,), generator=gen).float()
    scores[:G] = torch.tensor([1.0, 0.0, 0.5, 0.0])  # non-binary group too
    old = -torch.rand(B * G, TLEN, generator=gen) * 3
    new = old + torch.randn(B * G, TLEN, generator=gen) * 0.3
    return gen, lengths, mask, scores, old, new


# ---------------------------------------------------------------- loop-form references (verl)
def _masked_mean(x, m):
    return (x * m).sum() / m.sum()


def _masked_whiten(x, m):
    # verl_F.masked_whiten: unbiased masked variance (S/(S-1)), (x - mean) * rsqrt(var + 1e-8)
    mean = _masked_mean(x, m)
    var = _masked_mean((x - mean) ** 2, m)
    var = var * m.sum() / (m.sum() - 1)
    return (x - mean) * torch.rsqrt(var + 1e-8)


def _verl_grpo(scores, index, eps=1e-6, norm_by_std=True):
    groups: dict[int, list[int]] = {}
    for i, g in enumerate(index):
        groups.setdefault(g, []).append(i)
    out = scores.clone()
    for members in groups.values():
        vals = torch.stack([scores[i] for i in members])
        mean, std = (
            (torch.tensor(0.0), torch.tensor(1.0))
            if len(members) == 1
            else (vals.mean(), vals.std())
        )
        for i in members:
            out[i] = (scores[i] - mean) / (std + eps) if norm_by_std else scores[i] - mean
    return out


def _verl_rloo(scores, index):
    groups: dict[int, list[int]] = {}
    for i, g in enumerate(index):
        groups.setdefault(g, []).append(i)
    out = scores.clone()
    for members in groups.values():
        n = len(members)
        mean = torch.stack([scores[i] for i in members]).mean()
        for i in members:
            out[i] = scores[i] * n / (n - 1) - mean * n / (n - 1)
    return out


def _outcome_token_rewards(scores, lengths):
    r = torch.zeros(len(scores), TLEN)
    for i, n in enumerate(lengths.tolist()):
        r[i, n - 1] = scores[i]
    return r


# ---------------------------------------------------------------- advantages
def test_grpo_and_dr_grpo():
    _, _, _, scores, _, _ = _batch()
    index = [i // G for i in range(B * G)]
    ours = grpo_advantages(scores.view(B, G), std_scope="group", std_unbiased=True, eps=1e-6)
    torch.testing.assert_close(ours.reshape(-1), _verl_grpo(scores, index), **TOL)
    ours = grpo_advantages(scores.view(B, G), std_scope="none")
    torch.testing.assert_close(
        ours.reshape(-1), _verl_grpo(scores, index, norm_by_std=False), **TOL
    )


def test_grpo_singleton_groups():
    scores = torch.tensor([0.3, 1.0, -2.0])
    ours = grpo_advantages(scores.view(3, 1), singleton="raw", eps=1e-6)
    torch.testing.assert_close(ours.reshape(-1), _verl_grpo(scores, [0, 1, 2]), **TOL)


def test_rloo():
    _, _, _, scores, _, _ = _batch(1)
    ours = rloo_advantages(scores.view(B, G)).reshape(-1)
    torch.testing.assert_close(ours, _verl_rloo(scores, [i // G for i in range(B * G)]), **TOL)


def test_reinforce_plus_plus():
    _gen, lengths, mask, scores, old, new = _batch(2)
    r = _outcome_token_rewards(scores, lengths) - 0.05 * (new - old) * mask  # KL folded in
    gamma = 0.9
    # verl: running return reset after each token by the mask, then masked_whiten * mask
    returns = torch.zeros_like(r)
    running = torch.zeros(B * G)
    for t in reversed(range(TLEN)):
        running = r[:, t] + gamma * running
        returns[:, t] = running
        running = running * mask[:, t]
    ref_adv = _masked_whiten(returns, mask) * mask
    adv, ret = reinforce_pp_advantages(r, mask, gamma=gamma, std_unbiased=True, eps=1e-8)
    torch.testing.assert_close(adv, ref_adv, **TOL)
    torch.testing.assert_close(ret * mask, returns * mask, **TOL)


def test_reinforce_plus_plus_baseline():
    _, lengths, mask, scores, _, _ = _batch(3)
    index = [i // G for i in range(B * G)]
    centred = _verl_grpo(scores, index, norm_by_std=False)
    tiled = centred[:, None].repeat(1, TLEN) * mask
    ref = _masked_whiten(tiled, mask) * mask
    ours = reinforce_pp_baseline_advantages(
        scores.view(B, G), token_counts=lengths.view(B, G).float(), std_unbiased=True, eps=1e-8
    )
    torch.testing.assert_close(broadcast_to_tokens(ours, mask), ref, **TOL)


def test_remax():
    gen, lengths, mask, scores, _, _ = _batch(4)
    greedy = torch.rand(B, generator=gen)
    baselines = greedy.repeat_interleave(G)
    r = _outcome_token_rewards(scores, lengths)
    returns = (r * mask).flip(-1).cumsum(-1).flip(-1)
    ref = returns - baselines[:, None] * mask
    ours = broadcast_to_tokens(remax_advantages(scores.view(B, G), greedy), mask)
    torch.testing.assert_close(ours, ref, **TOL)


def test_gae_with_tool_tokens():
    gen, _lengths, mask, _scores, _, _ = _batch(5)
    mask[:, 2] = 0.0  # tool output in the middle of every response
    mask[:, 0] = 1.0
    r = torch.randn(B * G, TLEN, generator=gen) * mask
    v = torch.randn(B * G, TLEN, generator=gen)
    gamma, lam = 0.99, 0.9
    next_v = torch.zeros(B * G)
    last = torch.zeros(B * G)
    rev = []
    for t in reversed(range(TLEN)):
        delta = r[:, t] + gamma * next_v - v[:, t]
        cand = delta + gamma * lam * last
        next_v = v[:, t] * mask[:, t] + (1 - mask[:, t]) * next_v
        last = cand * mask[:, t] + (1 - mask[:, t]) * last
        rev.append(last)
    raw = torch.stack(rev[::-1], dim=1)
    ref_ret = raw + v
    ref_adv = _masked_whiten(raw, mask)
    adv, ret = gae_advantages(r, v, mask, gamma=gamma, lam=lam, whiten=True, eps=1e-8)
    torch.testing.assert_close(adv * mask, ref_adv * mask, **TOL)
    torch.testing.assert_close(ret * mask, ref_ret * mask, **TOL)


# ---------------------------------------------------------------- losses and aggregation
def _verl_ppo(old, new, adv, mask, lo, hi, c):
    neg_kl = torch.clamp(new - old, -20.0, 20.0)
    ratio = torch.exp(neg_kl)
    l1 = -adv * ratio
    l2 = -adv * torch.clamp(ratio, 1 - lo, 1 + hi)
    cl1 = torch.maximum(l1, l2)
    clipfrac = _masked_mean(torch.gt(l2, l1).float(), mask)
    l3 = -adv * c
    cl2 = torch.min(l3, cl1)
    clipfrac_lower = _masked_mean((torch.gt(cl1, l3) & (adv < 0)).float(), mask)
    losses = torch.where(adv < 0, cl2, cl1)
    return _masked_mean(losses, mask), clipfrac, _masked_mean(-neg_kl, mask), clipfrac_lower


@pytest.mark.parametrize(("lo", "hi", "c"), [(0.2, 0.2, 3.0), (0.2, 0.28, 10.0), (0.1, 0.3, 1.5)])
def test_ppo_clip_dual_clip_token_mean(lo, hi, c):
    gen, _, mask, _, old, new = _batch(6)
    new = old + torch.randn(B * G, TLEN, generator=gen) * 1.5  # big ratios: dual clip active
    adv = torch.randn(B * G, TLEN, generator=gen)
    ref_loss, ref_cf, ref_kl, ref_cfl = _verl_ppo(old, new, adv, mask, lo, hi, c)
    mat, met = ppo_clip(new, old, adv, mask, clip_low=lo, clip_high=hi, dual_clip=c)
    torch.testing.assert_close(aggregate(mat, mask, "token_mean"), ref_loss, **TOL)
    torch.testing.assert_close(met["clipfrac"], ref_cf, **TOL)
    torch.testing.assert_close(met["clipfrac_dual"], ref_cfl, **TOL)
    torch.testing.assert_close(met["ppo_kl"], ref_kl, **TOL)
    assert ref_cfl > 0


def test_gspo_loss_and_gradient():
    gen, _, mask, _, old, new = _batch(7)
    adv = torch.randn(B * G, 1, generator=gen).expand(B * G, TLEN).contiguous()
    lo, hi = 3e-4, 4e-4
    a = new.clone().requires_grad_(True)
    b = new.clone().requires_grad_(True)
    # verl compute_policy_loss_gspo
    seq_len = mask.sum(-1).clamp(min=1)
    seq_kl = ((b - old) * mask).sum(-1) / seq_len
    log_s = torch.clamp(b - b.detach() + seq_kl.detach()[:, None], max=10.0)
    s = torch.exp(log_s)
    losses = torch.maximum(-adv * s, -adv * torch.clamp(s, 1 - lo, 1 + hi))
    ref = ((losses * mask).sum(-1) / mask.sum(-1)).mean()  # seq-mean-token-mean
    mat, _ = gspo(a, old, adv, mask, clip_low=lo, clip_high=hi)
    ours = aggregate(mat, mask, "seq_mean_token_mean")
    torch.testing.assert_close(ours, ref, **TOL)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(a.grad, b.grad, **TOL)


def test_cispo_loss_and_gradient():
    gen, _, mask, _, old, new = _batch(8)
    adv = torch.randn(B * G, TLEN, generator=gen)
    a = new.clone().requires_grad_(True)
    b = new.clone().requires_grad_(True)
    ratio = torch.exp(torch.clamp(b - old, -20.0, 20.0))
    ref = _masked_mean(-torch.clamp(ratio, 0.8, 1.28).detach() * adv * b, mask)
    mat, _ = cispo(a, old, adv, mask, clip_low=0.2, clip_high=0.28)
    ours = aggregate(mat, mask, "token_mean")
    torch.testing.assert_close(ours, ref, **TOL)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(a.grad, b.grad, **TOL)


def test_kl_estimators():
    _, _, _, _, old, new = _batch(9)
    new = new * 4  # large differences exercise the clamps
    x = new - old
    k3_arg = torch.clamp(old - new, -20, 20)
    refs = {
        "k1": (x, None),
        "abs": (x.abs(), None),
        "k2": (0.5 * x.square(), None),
        "k3": (torch.clamp(torch.exp(k3_arg) - k3_arg - 1, -10, 10), 10.0),
    }
    for kind, (ref, clamp) in refs.items():
        torch.testing.assert_close(kl_penalty(new, old, kind, clamp=clamp), ref, **TOL)


def test_straight_through_kl_estimators():
    # verl kl_penalty(kind + "+") (core_algos.py; '+' stripped before the value dispatch since
    # verl PR #6058): k2 - sg[k2] + sg[forward(kind)], forward with verl's clamps (k1 none,
    # k3 exponent +-20 and output +-10). Values and gradients both match.
    _, _, _, _, old, new = _batch(11)
    new = new * 4
    x0 = new - old
    k3_arg = torch.clamp(old - new, -20, 20)
    forward = {"k1": x0, "k3": torch.clamp(torch.exp(k3_arg) - k3_arg - 1, -10, 10)}
    for kind, clamp in (("k1", None), ("k3", 10.0)):
        a = new.clone().requires_grad_(True)
        b = new.clone().requires_grad_(True)
        k2 = 0.5 * (b - old).square()
        ref = k2 - k2.detach() + forward[kind]
        ours = kl_penalty(a, old, f"{kind}+", clamp=clamp)  # type: ignore[arg-type]
        torch.testing.assert_close(ours, ref, **TOL)
        ours.sum().backward()
        ref.sum().backward()
        torch.testing.assert_close(a.grad, b.grad, **TOL)


def test_adaptive_kl_controller_over_steps():
    # verl AdaptiveKLController.update as called by ray_trainer.apply_kl_penalty: current_kl =
    # mean over sequences of the per-sequence masked token mean, n_steps = batch_size (sequences).
    _, _, mask, _, old, new = _batch(12)
    beta_ref, target, horizon = 0.05, 0.01, 100
    ctrl = AdaptiveKLController(beta_ref, target=target, horizon=horizon)
    for step in range(5):
        kld = kl_penalty(new * (1 + 0.1 * step), old, "k1", clamp=None) * mask
        current = ((kld * mask).sum(-1) / mask.sum(-1)).mean().item()
        err = min(max(current / target - 1, -0.2), 0.2)
        beta_ref *= 1 + err * mask.shape[0] / horizon
        ctrl.update(current, n_steps=mask.shape[0])
        assert ctrl.value == pytest.approx(beta_ref, rel=1e-12)


def test_aggregation_modes():
    gen, _, mask, _, _, _ = _batch(10)
    loss = torch.randn(B * G, TLEN, generator=gen)
    seq_sum = (loss * mask).sum(-1)
    refs = {
        "token_mean": ((loss * mask).sum() / mask.sum(), {}),
        "seq_mean_token_sum": (seq_sum.mean(), {}),
        "seq_mean_token_mean": ((seq_sum / mask.sum(-1)).mean(), {}),
        # verl: sum of sequence sums / max response length (no division by #sequences)
        "seq_mean_token_sum_norm": (seq_sum.sum() / TLEN, {"normalizer": float(TLEN)}),
    }
    for mode, (ref, kw) in refs.items():
        torch.testing.assert_close(aggregate(loss, mask, mode, **kw), ref, **TOL)


def test_rollout_tis_on_ppo_loss():
    gen, _, mask, _, old, new = _batch(11)
    rollout = old + torch.randn(B * G, TLEN, generator=gen) * 0.5
    adv = torch.randn(B * G, TLEN, generator=gen)
    cap = 2.0
    # verl TIS: w = min(exp(old - rollout), C); pg_losses * w; token-mean
    w_ref = torch.clamp(torch.exp(old - rollout), max=cap)
    neg_kl = torch.clamp(new - old, -20, 20)
    ratio = torch.exp(neg_kl)
    base = torch.maximum(-adv * ratio, -adv * torch.clamp(ratio, 0.8, 1.2))
    ref = _masked_mean(base * w_ref, mask)
    w, _ = rollout_is_weights(old, rollout, mask, level="token", mode="truncate", high=cap)
    mat, _ = ppo_clip(new, old, adv, mask, is_weights=w)
    torch.testing.assert_close(aggregate(mat, mask, "token_mean"), ref, **TOL)
    assert math.isclose(float((w_ref * mask == w).float().mean()), 1.0)
