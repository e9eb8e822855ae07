"""Shared-prefix training forward: each distinct prompt of a micro-batch runs once and its
completions attend to that one copy of the prompt's keys/values.

In the padded batch every prompt appears G times (once per completion of its group), so the
trainer runs the prompt's L layers G times. Here, for a micro-batch of N rows with U distinct
prompts (left-padded to the batch's P columns, so equal prompts are equal rows of
`input_ids[:, :P]`):

1. prompt pass: the U prompts (U, P) with a KV cache; the logits at column P-1 (every prompt's
   last real token, left padding) predict each response's first token.
2. expand: `cache.batch_select_indices(inverse)` gathers each row's prompt keys/values
   (U -> N rows). Indexing is differentiable, so in the backward the N rows' key/value gradients
   are summed into their prompt's (index_select's backward is a scatter-add): the prompt's
   parameter gradient is the sum over its completions, exactly as in the padded batch.
3. response pass: the N rows' response tokens except the last (N, T-1), with the attention mask
   over all P+T-1 columns and the rows' own position ids, attending to the expanded prompt cache.

The maths is the padded forward's (a causal model's prompt states do not depend on what follows);
tests/rl/test_shared_prefix.py checks log-probs and parameter gradients to 1e-5 in fp32. The
prompt's matmuls run U instead of N times; attention still reads P+T keys per response token.
Rows of one group must share a micro-batch for this to pay (`group_micro_batches`).

Works for the transformers causal LMs whose forward takes a `cache`/`past_key_values` and
returns a `DynamicCache` (`supports_shared_prefix`); peft's LoRA wrapper passes both through.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import torch

from reasonrl.types import Batch


def _target(model: torch.nn.Module) -> torch.nn.Module:
    base = getattr(model, "get_base_model", None)  # peft: the base model's forward decides
    return base() if callable(base) else model


@functools.cache
def _cache_kwarg(cls: type) -> str | None:
    params = inspect.signature(cls.forward).parameters
    for name in ("cache", "past_key_values"):  # transformers >= 5.24 renamed it to `cache`
        if name in params:
            return name
    return None


def unsupported_reason(model: torch.nn.Module) -> str | None:
    """Why the shared-prefix forward cannot run `model`, or None when it can."""
    target = _target(model)
    if _cache_kwarg(type(target)) is None:
        return f"{type(target).__name__}.forward takes no cache / past_key_values"
    cfg = getattr(target, "config", None)
    sliding = "sliding_attention" in (getattr(cfg, "layer_types", None) or ())
    if getattr(cfg, "use_sliding_window", False) or sliding:
        return "sliding-window attention (the cache would drop prompt keys)"
    return None


def supports_shared_prefix(model: torch.nn.Module) -> bool:
    """Whether `shared_prefix_logits` can run `model` (see `unsupported_reason`)."""
    return unsupported_reason(model) is None


def prompt_groups(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """(U,) one row index per distinct prompt and (N,) each row's prompt in 0..U-1.

    Two rows share a prompt when their prompt columns (token ids and attention mask) are equal,
    so equal prompts from different groups are shared too (the same keys/values either way).
    """
    p = batch.prompt_len
    key = torch.cat([batch.input_ids[:, :p], batch.attention_mask[:, :p]], dim=1)
    _, inverse = torch.unique(key, dim=0, return_inverse=True)
    n = key.shape[0]
    first = torch.full((int(inverse.max()) + 1 if n else 0,), n, dtype=torch.long)
    first = first.scatter_reduce(0, inverse, torch.arange(n), reduce="amin")
    return first, inverse


def group_micro_batches(batch: Batch, rows: torch.Tensor, size: int) -> list[torch.Tensor]:
    """Split `rows` into chunks of `size` with the rows of one prompt next to each other.

    Groups are ordered by their longest row and rows within a group by length, so a chunk pads
    to about its own length (use with `trim`) and a group is split over two chunks only at a
    chunk boundary (its prompt then runs once in each: still exact).
    """
    if len(rows) == 0:
        return []
    sub = batch.select(rows)
    _, group = prompt_groups(sub)
    lengths = sub.attention_mask.sum(dim=1)
    longest = torch.zeros(int(group.max()) + 1, dtype=lengths.dtype)
    longest = longest.scatter_reduce(0, group, lengths, reduce="amax")
    span = int(lengths.max()) + 1
    key = (longest[group] * (int(group.max()) + 1) + group) * span + lengths  # lexicographic
    ordered = rows[torch.argsort(key, stable=True)]
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def _output_cache(out: Any) -> Any:
    cache = getattr(out, "cache", None)
    return cache if cache is not None else getattr(out, "past_key_values", None)


def shared_prefix_logits(
    model: torch.nn.Module, batch: Batch, *, logits_to_keep: bool
) -> torch.Tensor:
    """(N, T, V) logits that predict the response tokens: position P-1+t predicts token P+t.

    `logits_to_keep`: the model's forward takes it (the prompt pass then runs the LM head at its
    last column only; the response pass needs every position anyway).
    """
    p = batch.prompt_len
    t = batch.response_mask.shape[1]
    name = _cache_kwarg(type(_target(model)))
    if name is None:
        raise TypeError(unsupported_reason(model))
    first, inverse = prompt_groups(batch)
    extra = {"logits_to_keep": 1} if logits_to_keep else {}
    prompt_out = model(
        input_ids=batch.input_ids[first, :p],
        attention_mask=batch.attention_mask[first, :p],
        position_ids=batch.position_ids[first, :p],
        use_cache=True,
        **extra,
    )
    head = prompt_out.logits[:, -1:, :][inverse]  # (N, 1, V): predicts each first response token
    if t == 1:
        return head
    cache = _output_cache(prompt_out)
    if not hasattr(cache, "batch_select_indices"):
        raise TypeError(f"the prompt pass returned {type(cache).__name__}, not a DynamicCache")
    cache.batch_select_indices(inverse.to(head.device))  # U -> N rows; differentiable gather
    resp_out = model(
        input_ids=batch.input_ids[:, p : p + t - 1],
        attention_mask=batch.attention_mask[:, : p + t - 1],
        position_ids=batch.position_ids[:, p : p + t - 1],
        use_cache=True,  # the cache must be read; what the pass appends to it is dropped
        **{name: cache},
    )
    return torch.cat([head, resp_out.logits], dim=1)


def use_shared_prefix(setting: str, model: torch.nn.Module, *, group_size: int) -> bool:
    """Resolve `algo.shared_prefix` (auto|on|off) for `model`.

    auto: on when the model supports it and groups have more than one completion (with
    rollout.n = 1 no prompt repeats, so the second pass would only add overhead). on: raises
    ValueError naming why an unsupported model cannot.
    """
    if setting == "off":
        return False
    reason = unsupported_reason(model)
    if setting == "on":
        if reason is not None:
            raise ValueError(f"algo.shared_prefix=on: {reason}; use auto or off")
        return True
    return reason is None and group_size > 1
