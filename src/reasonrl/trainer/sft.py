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
Optimiser: AdamW, linear warmup then cosine decay to `min_lr_ratio * lr`, global-norm clipping,
bf16 autocast on CPU (2-3x faster than fp32 on this machine: feasibility.md).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F

from reasonrl.config import ConfigError, ConfigModel, Float, NonNegInt, PosInt, load_config
from reasonrl.trainer.sft_data import (
    SFTBatch,
    TokenizedRow,
    chunks,
    collate_sft,
)


class SFTModelConfig(ConfigModel):
    init: str = "micro"
    """A size of `models.factory.MODEL_SIZES` (fresh weights), an HF dir, or builtin:NAME."""
    tokenizer: str | None = None
    """`synth` (the synthetic task's word-level tokenizer) or a directory; default: the model's own
    tokenizer for a checkpoint, `synth` for a fresh model."""


class SFTDataConfig(ConfigModel):
    train_file: str | None = None
    """JSONL with `prompt`, `completion` and optional `weight` / `repeat` per row."""
    eval_file: str | None = None
    """Held-out JSONL for the eval loss (default: generated when synth_ops is set)."""
    synth_ops: list[PosInt] | None = None
    """Generate synthetic problems with these op counts instead of reading train_file."""
    synth_per_op: PosInt = 1000
    synth_eval_per_op: PosInt = 32
    synth_contexts: tuple[str, ...] = ("zoo",)
    """Context keys of reasonrl.tasks.synth (zoo, school, movie), cycled round-robin."""
    synth_modes: tuple[str, ...] = ("forward",)
    seed: NonNegInt = 0
    max_len: PosInt = 512
    """Longer rows are dropped (never truncated: a cut completion teaches a wrong ending)."""


class SFTOptimConfig(ConfigModel):
    lr: Float = 1e-3
    min_lr_ratio: Float = 0.1
    warmup_steps: NonNegInt = 100
    weight_decay: Float = 0.1
    beta1: Float = 0.9
    beta2: Float = 0.95
    grad_clip: Float = 1.0


class SFTTrainConfig(ConfigModel):
    batch_size: PosInt = 32
    """Sequences per micro-batch."""
    grad_accum: PosInt = 1
    max_steps: PosInt = 1000
    """Optimiser steps; the cosine schedule spans them."""
    time_budget_min: Float | None = None
    """Stop (and save) after this many minutes; the schedule then follows elapsed time when that is
    further along than the step count, so the run is annealed when it stops."""
    dtype: Literal["auto", "bf16", "fp32"] = "auto"
    """Autocast dtype of the forward pass (master weights stay fp32). `auto` = bf16 only where it is
    fast (native bf16 CPU or CUDA): on AVX2-only CPUs emulated bf16 is ~30x SLOWER than fp32."""
    threads: PosInt = 2
    seed: NonNegInt = 0
    log_every: PosInt = 50
    eval_every: PosInt = 500
    eval_strict_per_op: NonNegInt = 0
    """Greedy strict pass@1 on this many held-out synthetic problems per op per eval (0: off)."""
    eval_max_new_tokens: PosInt = 256
    save_every: NonNegInt = 0
    """Save a checkpoint every this many steps (0: only the final model)."""
    out_dir: str = "runs/sft"


class SFTConfig(ConfigModel):
    """A supervised training run: model, data, optimiser, loop."""

    model: SFTModelConfig = SFTModelConfig()
    data: SFTDataConfig = SFTDataConfig()
    optim: SFTOptimConfig = SFTOptimConfig()
    train: SFTTrainConfig = SFTTrainConfig()


def resolve_autocast(dtype: str) -> str:
    """`auto` -> "bf16" where bf16 matmuls are native (see rollout.hf_engine), else "fp32"."""
    if dtype != "auto":
        return dtype
    from reasonrl.rollout.hf_engine import fast_bf16_available

    return "bf16" if fast_bf16_available("cpu") else "fp32"


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
    inputs, targets = batch.input_ids[:, :-1], batch.input_ids[:, 1:]
    weight = batch.loss_weight[:, 1:]
    keep = weight > 0  # (R, L-1)
    head = model.get_output_embeddings()
    if head is not None and getattr(model, "base_model", None) is not None:
        hidden = model.base_model(input_ids=inputs).last_hidden_state  # (R, L-1, H)
        logits = head(hidden[keep])  # (K, V)
    else:
        logits = model(input_ids=inputs).logits[keep]
    nll = F.cross_entropy(logits.float(), targets[keep], reduction="none")  # (K,)
    return (nll * weight[keep]).sum()


def lr_factor(progress: float, step: int, *, warmup_steps: int, min_lr_ratio: float) -> float:
    """Linear warmup over `warmup_steps`, then cosine from 1 to `min_lr_ratio` as progress 0->1."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(max(progress, 0.0), 1.0)
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


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


def eval_loss(model: Any, rows: Sequence[TokenizedRow], *, pad_id: int, dtype: str) -> float:
    """Mean NLL per completion token over `rows` (no grad)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=dtype == "bf16"):
        for group in chunks(sorted(rows, key=len), 64):
            batch = collate_sft(group, pad_id=pad_id)
            total += float(completion_loss_sum(model, batch))
            count += int((batch.loss_weight[:, 1:] > 0).sum())
    model.train(was_training)
    return total / max(count, 1)


def train_step(
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
        with torch.autocast("cpu", torch.bfloat16, enabled=dtype == "bf16"):
            loss = completion_loss_sum(model, mb) / max(n_tokens, 1)
        loss.backward()
        total += float(loss.detach())
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return {"loss": total, "grad_norm": float(grad_norm), "lr": lr, "tokens": n_tokens}


def main(argv: Sequence[str] | None = None) -> int:
    """`reasonrl sft RECIPE [key=value ...]`: train, save `out_dir/final`; returns exit status."""
    parser = argparse.ArgumentParser(prog="reasonrl sft", description=__doc__.splitlines()[0])
    parser.add_argument("recipe", help="YAML recipe (see recipes/pretrain_synth_micro.yaml)")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.max_steps=100")
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        cfg = load_config(args.recipe, args.overrides, schema=SFTConfig)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from reasonrl.trainer.sft_run import run_sft

    run_sft(cfg)
    return 0


def write_metrics(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line to the run's metrics file."""
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def now() -> float:
    return time.perf_counter()
