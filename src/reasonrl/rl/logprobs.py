"""Response log-probs (and entropy) of a `Batch` under the policy: the trainer's one forward.

`response_logprobs` is the one place the trainer evaluates the model; the rollout engine's log-probs
must match it for the same weights (tested in tests/rollout). The LM head runs only at the
positions that predict response tokens (`logits_to_keep`): prompts are most of a row's tokens,
and at a real vocabulary the (rows x positions x V) logits dominate the forward's memory.
"""

from __future__ import annotations

import functools
import inspect
from typing import Literal

import torch

from reasonrl.algos.logprobs import entropy_from_logits, selected_logprobs
from reasonrl.rl.batching import micro_batches, trim
from reasonrl.rl.shared_prefix import group_micro_batches, shared_prefix_logits
from reasonrl.runtime.precision import autocast
from reasonrl.types import Batch


@functools.cache
def _forward_takes_logits_to_keep(cls: type) -> bool:
    return "logits_to_keep" in inspect.signature(cls.forward).parameters


def accepts_logits_to_keep(model: torch.nn.Module) -> bool:
    """Whether `model(...)` can compute logits at the last k positions only (`logits_to_keep`,
    the transformers causal LMs; through a peft wrapper, its base model's forward decides)."""
    base = getattr(model, "get_base_model", None)
    target = base() if callable(base) else model
    return _forward_takes_logits_to_keep(type(target))


def response_logprobs(
    model: torch.nn.Module,
    batch: Batch,
    *,
    temperature: float = 1.0,
    entropy: Literal["none", "metric", "loss"] = "none",
    shared_prefix: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs (and optionally entropy) of the response tokens under `model`.

    log p(y_t) = log_softmax(logits_{t-1} / temperature)[y_t], the same distribution the engine
    sampled from, so the PPO ratio is 1 when nothing changed.

    `entropy="metric"` computes it without gradient (for logging); "loss" keeps the graph.
    `shared_prefix`: run each distinct prompt once (`rl.shared_prefix`; same values and
    gradients), else the padded rows.

    Returns:
        logprobs (N, T) float32 and entropy (N, T) float32 or None.
    """
    p = batch.prompt_len
    t = batch.response_mask.shape[1]
    extra = {}
    keep = batch.input_ids.shape[1] - (p - 1)  # positions p-1 .. end: the response's predictors
    if shared_prefix:
        logits = shared_prefix_logits(model, batch, logits_to_keep=accepts_logits_to_keep(model))
    else:
        if accepts_logits_to_keep(model):  # the LM head runs on the response's predictors only
            extra["logits_to_keep"] = keep
        out = model(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            position_ids=batch.position_ids,
            use_cache=False,
            **extra,
        )
        first = out.logits.shape[1] - keep  # 0 with logits_to_keep, p - 1 without
        logits = out.logits[:, first : first + t, :]  # (N, T, V): position p-1 predicts token p
    if temperature != 1.0:
        logits = logits / temperature
    tokens = batch.input_ids[:, p : p + t]
    logprobs = selected_logprobs(logits, tokens)
    ent = None
    if entropy == "loss":
        ent = entropy_from_logits(logits)
    elif entropy == "metric":
        with torch.no_grad():
            ent = entropy_from_logits(logits.detach())
    return logprobs, ent


@torch.no_grad()
def batch_logprobs(
    model: torch.nn.Module,
    batch: Batch,
    *,
    micro_batch_size: int,
    temperature: float = 1.0,
    dtype: str = "auto",
    rows: torch.Tensor | None = None,
    shared_prefix: bool = False,
) -> torch.Tensor:
    """(N, T) response log-probs of a whole batch under `model`, without gradient.

    The old (behaviour) and reference log-probs of a step: micro-batched and trimmed like the
    update, so they cost one forward each. Rows outside `rows` (default: all) are left at 0.
    `shared_prefix`: micro-batches keep a prompt's rows together and run the prompt once.
    """
    out = torch.zeros_like(batch.response_mask, dtype=torch.float32)
    every = torch.arange(batch.input_ids.shape[0]) if rows is None else rows
    device = next(model.parameters()).device  # CPU or CUDA autocast, as the model lives
    split = group_micro_batches if shared_prefix else micro_batches
    for idx in split(batch, every, micro_batch_size):
        mb = trim(batch.select(idx)).to(device)  # the batch stays on the host
        with autocast(dtype, device):
            logp, _ = response_logprobs(
                model, mb, temperature=temperature, shared_prefix=shared_prefix
            )
        out[idx, : logp.shape[1]] = (logp.float() * mb.response_mask).to(out.device)
    return out
