"""One optimizer step on a rollout batch: micro-batched loss with a global normaliser.

The normaliser is computed once from the whole batch, so accumulating gradients over micro-batches
gives exactly the gradient of the full batch (see `reasonrl.algos.aggregate`).

Non-finite guard (`guarded_step`, also used by the critic): an optimizer step whose loss, gradient
norm or learning rate is NaN/inf is not taken, so the parameters and the optimizer state stay
bit-identical; the update reports `actor/skipped_nonfinite` and the cause
(`actor/nonfinite_loss`, `_grad` or `_lr`), and `rl/run.py` stops the run after
`trainer.max_nonfinite_steps` such steps in a row.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch

from reasonrl.algos.aggregate import aggregate, global_normalizer
from reasonrl.algos.objective import policy_objective
from reasonrl.algos.policy_loss import loss_kwargs
from reasonrl.config import AlgoConfig, RLConfig
from reasonrl.dist.fsdp import full, is_sharded, local_params
from reasonrl.rl.batching import micro_batches, trim
from reasonrl.rl.logprobs import response_logprobs
from reasonrl.rl.shared_prefix import group_micro_batches, use_shared_prefix
from reasonrl.runtime.checkpoint import tensors_finite
from reasonrl.runtime.metrics import reduce_metrics
from reasonrl.runtime.precision import autocast
from reasonrl.types import Batch

if TYPE_CHECKING:
    from reasonrl.dist.parallel import DataParallel


class NonFiniteUpdateError(RuntimeError):
    """An optimizer step with finite loss, gradient and learning rate made the weights NaN/inf
    (e.g. a learning rate so large that the update overflows): it cannot be undone."""


def guarded_step(
    optimizer: torch.optim.Optimizer,
    params: Iterable[torch.Tensor],
    loss: torch.Tensor,
    grad_norm: torch.Tensor,
) -> str | None:
    """`optimizer.step()` unless the loss, the gradient norm or a learning rate is not finite.

    Returns None after a step, else the cause of the skip: "loss", "grad" or "lr" (the first that
    applies). A skipped step leaves the parameters and the optimizer state exactly as they were
    (only `.grad` is cleared). Raises NonFiniteUpdateError when a step taken on finite inputs
    leaves non-finite parameters (checked after every step; one device sync).
    """
    if not math.isfinite(float(loss)):
        cause: str | None = "loss"
    elif not math.isfinite(float(grad_norm)):
        cause = "grad"
    elif not all(math.isfinite(float(group["lr"])) for group in optimizer.param_groups):
        cause = "lr"
    else:
        cause = None
    if cause is not None:
        optimizer.zero_grad(set_to_none=True)
        return cause
    optimizer.step()
    if not tensors_finite(p.detach() for p in params):
        raise NonFiniteUpdateError(
            "an optimizer step on a finite loss and gradient made the weights NaN/inf"
        )
    return None


def active_rows(batch: Batch, algo: AlgoConfig) -> torch.Tensor:
    """Rows that can contribute gradient.

    With no KL or entropy term in the loss, a sequence whose advantages are all zero has exactly
    zero loss for every loss except Kimi OMD (whose squared term does not vanish), so its forward
    and backward can be skipped while it still counts in the normaliser. On this task about half
    of all groups have zero reward spread (rollout/zero_std_frac in the quickstart runs,
    benchmarks/README.md), so this halves the update time without changing the maths.
    """
    every = torch.arange(batch.input_ids.shape[0])
    kl_in_loss = algo.kl_coef > 0 and algo.kl_in == "loss"
    if kl_in_loss or algo.entropy_coef > 0 or algo.loss == "kimi_omd":
        return every
    return every[(batch.advantages != 0).any(dim=1)]


def _loss_matrix(
    mb: Batch, logp: torch.Tensor, entropy: torch.Tensor | None, algo: AlgoConfig, kl_coef: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    if mb.old_logprobs is not None:  # recomputed before the first epoch (train_step)
        old = mb.old_logprobs
    elif algo.old_logprobs == "rollout":
        old = mb.rollout_logprobs
    else:  # one epoch, weights unchanged since the rollout: recomputing == detaching
        old = logp.detach()
    return policy_objective(
        logp, old, mb.advantages, mb.response_mask,
        loss=algo.loss, loss_kwargs=loss_kwargs(algo.loss, dict(algo)),
        rollout_logprobs=mb.rollout_logprobs, ref_logprobs=mb.ref_logprobs, entropy=entropy,
        kl_coef=kl_coef if algo.kl_in == "loss" else 0.0, kl_estimator=algo.kl_estimator,
        entropy_coef=algo.entropy_coef,
        is_level=algo.is_level, is_mode=algo.is_mode, is_high=algo.is_high,
    )  # fmt: skip


def policy_update(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: Batch,
    cfg: RLConfig,
    *,
    kl_coef: float | None = None,
    dp: DataParallel | None = None,
) -> dict[str, float]:
    """Accumulate the loss over micro-batches, clip the gradient and take one optimizer step
    (`guarded_step`: none when the loss or gradient is not finite).

    `kl_coef` is the KL weight of this step (the adaptive controller's value; default
    `algo.kl_coef`). Metrics are means over the batch's response tokens (each micro-batch
    weighted by its token count), except `actor/loss` (the batch loss: the micro-batch losses
    add up to it) and `actor/grad_norm`; a skipped step adds `actor/skipped_nonfinite` = 1 and
    `actor/nonfinite_{cause}` = 1.

    `dp` (data parallel, `reasonrl.dist`): `batch` is this rank's shard; the normaliser is the
    whole batch's and the gradients and loss are summed over ranks before clipping, so every
    rank takes the single-process step (docs/scaling.md); `actor/loss` is then the batch loss.
    """
    algo = cfg.algo
    kl_coef = algo.kl_coef if kl_coef is None else kl_coef
    const = algo.agg_const  # set by the config for seq_mean_token_sum_norm, unused otherwise
    reduce = None if dp is None else dp.normaliser
    norm = global_normalizer(batch.response_mask, algo.agg, const=const, reduce=reduce)
    rows = active_rows(batch, algo)
    out: dict[str, float] = {"actor/active_frac": len(rows) / max(batch.input_ids.shape[0], 1)}
    n_active = len(rows) if dp is None else dp.max_int(len(rows))  # all ranks skip, or none
    if n_active == 0:  # nothing to learn from: an Adam step on zero gradient would still move
        out["actor/skipped_step"] = 1.0
        return out
    optimizer.zero_grad(set_to_none=True)
    rows_metrics: list[dict[str, torch.Tensor]] = []
    weights: list[float] = []
    loss_sum = torch.zeros(())
    entropy_mode = "loss" if algo.entropy_coef > 0 else "metric"
    device = next(model.parameters()).device  # the batch stays on the host; micro-batches move
    norm = norm.to(device) if isinstance(norm, torch.Tensor) else norm
    shared = use_shared_prefix(algo.shared_prefix, model, group_size=cfg.rollout.n)
    split = group_micro_batches if shared else micro_batches  # shared: a prompt's rows together
    parts = [(idx, 1.0) for idx in split(batch, rows, algo.micro_batch_size)]
    sharded = dp is not None and is_sharded(model)  # FSDP2: every backward reduce-scatters ...
    if sharded:  # ... so every rank runs as many as the busiest; the extra ones weigh 0
        assert dp is not None
        parts += [(torch.tensor([0]), 0.0)] * (dp.max_int(len(parts)) - len(parts))
    for idx, weight in parts:
        mb = trim(batch.select(idx)).to(device)
        with autocast(cfg.model.dtype, device):
            logp, entropy = response_logprobs(
                model,
                mb,
                temperature=cfg.rollout.temperature,
                entropy=entropy_mode,
                shared_prefix=shared,
            )
        loss_mat, metrics = _loss_matrix(mb, logp, entropy, algo, kl_coef)
        loss = aggregate(loss_mat, mb.response_mask, algo.agg, normalizer=norm, const=const)
        if weight == 0.0:  # FSDP2 padding: the collectives of a backward, a zero gradient
            (loss * 0.0).backward()
            continue
        loss.backward()
        loss_sum = loss_sum + loss.detach().float().cpu()
        rows_metrics.append(metrics)
        weights.append(float(mb.response_mask.sum()))  # a host sync per micro-batch, as before
    if dp is not None:  # once, after accumulation: every rank makes the same collective calls
        if not sharded:  # FSDP2 summed the gradients in each backward already
            dp.all_reduce_grads(model.parameters())
        loss_sum = dp.all_reduce(loss_sum)  # a non-finite loss on any rank skips every rank
    max_norm = cfg.optim.grad_clip if cfg.optim.grad_clip is not None else float("inf")
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)  # global under FSDP2
    params = local_params(model.parameters()) if sharded else model.parameters()
    grad_norm = full(grad_norm) if sharded else grad_norm
    cause = guarded_step(optimizer, params, loss_sum, grad_norm)
    if cause is not None:
        out |= {"actor/skipped_nonfinite": 1.0, f"actor/nonfinite_{cause}": 1.0}
    if sum(weights) == 0:  # every active row fully masked: fall back to equal weights
        weights = [1.0] * len(weights)
    out |= reduce_metrics(rows_metrics, weights) if rows_metrics else {}  # empty: a dp shard
    out["actor/loss"] = float(loss_sum)
    out["actor/grad_norm"] = float(grad_norm)
    return out
