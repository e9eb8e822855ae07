"""Supervised fine-tuning / pre-training from scratch: loss on completion tokens only.

    reasonrl sft recipes/pretrain_synth_micro.yaml [train.max_steps=100 ...]

The same loop serves three uses:
- pre-training a tiny base model from scratch on generated synthetic problems (`data.synth_ops`),
  as arXiv 2512.07783 pre-trains its 100M model on ops 2-10;
- Behavior-Priming SFT (arXiv 2510.06534): SFT on given trajectories before RL is exactly this
  loop on a JSONL of prompt/completion pairs (`data.train_file`, `model.init=<checkpoint dir>`);
- DRIVE-style hard-sample duplication (arXiv 2511.06307): a per-row `repeat` (copies per epoch)
  or `weight` (loss multiplier) field in the JSONL.

Loss = sum over completion tokens of weight * NLL / number of completion tokens in the optimiser
step (all micro-batches), so gradient accumulation of k micro-batches equals one big batch.
Optimiser: AdamW, linear warmup then cosine decay to `min_lr_ratio * lr` (runtime.schedule),
global-norm clipping, bf16 autocast where bf16 is native (runtime.precision; the measured speed-up
and the AVX2 slowdown are in benchmarks/README.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from reasonrl.config.sft import SFTOptimConfig
from reasonrl.runtime.precision import autocast
from reasonrl.sft.data import SFTBatch, TokenizedRow, chunks, collate_sft


def completion_loss_sum(model: Any, batch: SFTBatch) -> torch.Tensor:
    """Sum over completion tokens of weight * NLL(next token) (prompt and padding carry none).

    The LM head runs only at positions that carry loss (hidden states of the others are never
    projected to the vocabulary: large savings for real vocabularies).

    Args:
        model: a causal LM (`base_model` + `get_output_embeddings()`, else plain forward).
        batch: input_ids (R, L), loss_weight (R, L).

    Returns:
        Scalar tensor (fp32).
    """
    device = next(model.parameters()).device  # batches are built on the host
    ids = batch.input_ids.to(device)
    inputs, targets = ids[:, :-1], ids[:, 1:]
    weight = batch.loss_weight[:, 1:].to(device)
    keep = weight > 0  # (R, L-1)
    head = model.get_output_embeddings()
    if head is not None and getattr(model, "base_model", None) is not None:
        hidden = model.base_model(input_ids=inputs).last_hidden_state  # (R, L-1, H)
        logits = head(hidden[keep])  # (K, V)
    else:
        logits = model(input_ids=inputs).logits[keep]
    nll = F.cross_entropy(logits.float(), targets[keep], reduction="none")  # (K,)
    return (nll * weight[keep]).sum()


def make_optimizer(model: Any, cfg: SFTOptimConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (norm gains, biases, embeddings are not decayed)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (decay if param.dim() >= 2 and "embed" not in name else no_decay).append(param)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))


def _device(model: Any) -> torch.device:
    return next(model.parameters()).device


def eval_loss(model: Any, rows: Sequence[TokenizedRow], *, pad_id: int, dtype: str) -> float:
    """Mean NLL per completion token over `rows` (no grad)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad(), autocast(dtype, _device(model)):
        for group in chunks(sorted(rows, key=len), 64):
            batch = collate_sft(group, pad_id=pad_id)
            total += float(completion_loss_sum(model, batch))
            count += int((batch.loss_weight[:, 1:] > 0).sum())
    model.train(was_training)
    return total / max(count, 1)


def sft_step(
    model: Any,
    optimizer: torch.optim.Optimizer,
    micro_batches: Sequence[SFTBatch],
    *,
    lr: float,
    grad_clip: float,
    dtype: str,
) -> dict[str, float]:
    """One optimiser step over `micro_batches` (gradient accumulation); returns loss, grad norm."""
    n_tokens = sum(int((mb.loss_weight[:, 1:] > 0).sum()) for mb in micro_batches)
    total = 0.0
    for mb in micro_batches:
        with autocast(dtype, _device(model)):
            loss = completion_loss_sum(model, mb) / max(n_tokens, 1)
        loss.backward()
        total += float(loss.detach())
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return {"loss": total, "grad_norm": float(grad_norm), "lr": lr, "tokens": n_tokens}
