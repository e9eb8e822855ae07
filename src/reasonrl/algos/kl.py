"""Per-token KL estimators between the policy and a reference, and the KL-coefficient controllers.

With x = log pi(y_t) - log pi_ref(y_t) for y_t ~ pi (Schulman, "Approximating KL divergence"):
    k1  = x                        unbiased, high variance, can be negative
    k2  = x^2 / 2                  biased, low variance; its gradient is the reverse-KL gradient
    k3  = exp(-x) - 1 + x          unbiased, non-negative, low variance ("low_var_kl")
    abs = |x|
    k1+ / k3+                      straight-through: the VALUE of k1 / k3, the GRADIENT of k2
                                   (d/d log pi = x), as verl's "k1+" / "k3+"
Use the result either as a loss term (`aggregate(kl, mask, ...) * kl_coef`, GRPO) or folded
into token rewards (`fold_kl_into_rewards`, PPO-RLHF). The coefficient comes from a controller:
`FixedKLController` (constant) or `AdaptiveKLController` (Ziegler et al. 2019).

Shapes: N sequences, T response tokens.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import Tensor

KLKind = Literal["k1", "k2", "k3", "abs", "k1+", "k3+"]
KL_KINDS: tuple[str, ...] = ("k1", "k2", "k3", "abs", "k1+", "k3+")

# exp(-x) overflows float32 near x = -88; verl clamps the exponent at +-20 for k3.
_K3_EXP_CLAMP = 20.0


def kl_penalty(
    logprobs: Tensor, ref_logprobs: Tensor, kind: KLKind = "k3", clamp: float | None = 10.0
) -> Tensor:
    """Per-token KL estimate of KL(pi || pi_ref) (formulas in the module docstring).

    k3 (and k3+) always clamps its exponent argument to [-20, 20] (overflow guard, as verl).
    `clamp` then bounds the returned value of every kind to [-clamp, clamp] (verl clamps only k3,
    at 10; pass clamp=None for k1/k2/abs/k1+ to get verl's values).

    Straight-through kinds "k1+" / "k3+": the returned value is exactly that of "k1" / "k3" with
    the same clamps; the gradient is that of k2, i.e. d/d logprobs = x = logprobs - ref_logprobs,
    unbounded (the clamps act on the value only). k1 and k3 are unbiased estimates of the KL's
    value but their gradients are not the KL's gradient (E_pi[grad k1] = 0); k2's gradient is.
    verl builds it as k2 - sg[k2] + sg[k]; the suffix was broken in verl (PR #2953) until PR
    #6058 stripped it before the value dispatch. In `fold_kl_into_rewards` (no gradient) k1+ and
    k3+ equal k1 and k3.

    Reference: Schulman 2020, http://joschu.net/blog/kl-approx.html; GRPO (k3) arXiv 2402.03300;
    straight-through "+" kinds: verl `verl/trainer/ppo/core_algos.py::kl_penalty`.

    Args:
        logprobs: (N, T) log pi(y_t) of the sampled tokens (differentiable for a loss term).
        ref_logprobs: (N, T) log pi_ref(y_t).
        kind: "k1" | "k2" | "k3" | "abs" | "k1+" | "k3+".
        clamp: symmetric bound on the output value, or None.

    Returns:
        (N, T) per-token estimate.
    """
    if logprobs.shape != ref_logprobs.shape:
        raise ValueError(f"logprobs {tuple(logprobs.shape)} vs ref {tuple(ref_logprobs.shape)}")
    if kind not in KL_KINDS:
        raise ValueError(f"unknown KL estimator {kind!r}; choose from {KL_KINDS}")
    straight_through = kind.endswith("+")
    base = kind[:-1] if straight_through else kind
    x = logprobs - ref_logprobs
    if base == "k1":
        kl = x
    elif base == "k2":
        kl = 0.5 * x.square()
    elif base == "k3":
        neg = torch.clamp(-x, min=-_K3_EXP_CLAMP, max=_K3_EXP_CLAMP)
        kl = torch.exp(neg) - neg - 1.0
    else:  # "abs"
        kl = x.abs()
    if clamp is not None:
        kl = torch.clamp(kl, min=-clamp, max=clamp)
    if straight_through:
        k2 = 0.5 * x.square()
        kl = kl.detach() + (k2 - k2.detach())
    return kl


def fold_kl_into_rewards(token_rewards: Tensor, kl: Tensor, mask: Tensor, coef: float) -> Tensor:
    """Token rewards with a KL penalty: r'_t = r_t - coef * kl_t on valid tokens.

    Reference: InstructGPT-style RLHF, arXiv 2203.02155 (per-token KL in the reward).

    Args:
        token_rewards: (N, T) rewards (outcome on the last token).
        kl: (N, T) estimate from `kl_penalty` (computed without gradient).
        mask: (N, T) loss mask.
        coef: KL coefficient beta.

    Returns:
        (N, T) penalised rewards.
    """
    return token_rewards - coef * kl.detach() * mask.to(kl.dtype)


class FixedKLController:
    """A constant KL coefficient with the controller interface (`value`, `update`, state).

    Reference: verl `verl/trainer/ppo/core_algos.py::FixedKLController` (`kl_ctrl.type=fixed`).

    Args:
        coef: the KL coefficient beta (>= 0).
    """

    def __init__(self, coef: float) -> None:
        if not coef >= 0.0:
            raise ValueError(f"KL coefficient must be >= 0, got {coef}")
        self.value = float(coef)

    def update(self, current_kl: float, n_steps: int) -> None:
        """No-op (same signature as `AdaptiveKLController.update`)."""

    def state_dict(self) -> dict[str, Any]:
        """Plain values for a checkpoint."""
        return {"value": self.value}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the coefficient saved by `state_dict`."""
        self.value = float(state["value"])


class AdaptiveKLController:
    """Proportional controller driving the measured KL towards a target (Ziegler et al. 2019).

    Per update, with e = clip(current_kl / target - 1, -error_clip, error_clip):
        value <- value * (1 + e * n_steps / horizon)
    The paper writes beta <- beta (1 + K_beta e) with K_beta = 0.1; its code (and verl, TRL's
    original PPOTrainer) set K_beta = n_steps / horizon with n_steps the number of SAMPLES in the
    update's batch, so `horizon` is measured in samples. verl calls
    `update(current_kl, n_steps=batch_size)` once per training step, batch_size =
    `data.batch.batch_size[0]`, the number of sequences (prompts x responses per prompt), and
    current_kl = mean over sequences of the per-sequence token-mean KL estimate
    (`ray_trainer.py::apply_kl_penalty`). verl defaults: horizon 10000, target 0.1.
    The coefficient moves by at most a factor (1 +- error_clip * n_steps / horizon) per update
    (n_steps must stay below horizon / error_clip, else the factor would not be positive).

    Reference: Fine-Tuning Language Models from Human Preferences, arXiv 1909.08593, Sec. 2.2;
    verl `verl/trainer/ppo/core_algos.py::AdaptiveKLController`.

    Args:
        init_coef: initial beta (>= 0; beta = 0 stays 0).
        target: target KL (> 0), in the units of the `current_kl` passed to `update`.
        horizon: samples over which a sustained error changes beta by about e^(+-error_clip).
        error_clip: bound on the proportional error (paper and verl: 0.2).
    """

    def __init__(
        self, init_coef: float, target: float, horizon: int, *, error_clip: float = 0.2
    ) -> None:
        if not init_coef >= 0.0:
            raise ValueError(f"init_coef must be >= 0, got {init_coef}")
        if not target > 0.0:
            raise ValueError(f"target must be > 0, got {target}")
        if not horizon > 0:
            raise ValueError(f"horizon must be > 0, got {horizon}")
        if not error_clip >= 0.0:
            raise ValueError(f"error_clip must be >= 0, got {error_clip}")
        self.value = float(init_coef)
        self.target = float(target)
        self.horizon = horizon
        self.error_clip = float(error_clip)

    def update(self, current_kl: float, n_steps: int) -> None:
        """Adapt `value` after one training step.

        Args:
            current_kl: the KL measured on this step's batch (same estimator and units as target).
            n_steps: number of samples (sequences) in that batch, verl's convention.
        """
        current_kl = float(current_kl)
        if not math.isfinite(current_kl):
            raise ValueError(f"current_kl must be finite, got {current_kl}")
        if n_steps < 0:
            raise ValueError(f"n_steps must be >= 0, got {n_steps}")
        error = min(max(current_kl / self.target - 1.0, -self.error_clip), self.error_clip)
        mult = 1.0 + error * n_steps / self.horizon
        if mult <= 0.0:  # only when n_steps > horizon / error_clip: a misconfiguration
            raise ValueError(f"n_steps={n_steps} too large for horizon={self.horizon}")
        self.value *= mult

    def state_dict(self) -> dict[str, Any]:
        """Plain values for a checkpoint: the adapted coefficient (target/horizon are config)."""
        return {"value": self.value}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the coefficient saved by `state_dict`."""
        self.value = float(state["value"])


KLController = FixedKLController | AdaptiveKLController
