"""Turn sampled groups into padded training tensors (`reasonrl.types.Batch`).

Prompts are left-padded and responses right-padded, so every response starts at the same column
and explicit position ids make the result independent of the padding (tested).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from reasonrl.types import Batch, Completion


def collate(
    prompt_ids: Sequence[Sequence[int]],
    completions: Sequence[Completion],
    advantages: torch.Tensor,
    *,
    pad_id: int,
    loss_mask: Sequence[Sequence[float]] | None = None,
) -> Batch:
    """Pad N (prompt, completion) pairs into a Batch.

    Args:
        prompt_ids: N prompt token lists (a prompt repeated G times for a group is fine).
        completions: N completions, aligned with `prompt_ids`.
        advantages: (N,) sequence advantages or (N, T_max) token advantages
            (T_max >= the longest response).
        pad_id: token used for padding (masked out everywhere).
        loss_mask: optional per-token 0/1 mask for each response (e.g. 0 on tool output tokens).
    Returns:
        Batch: input_ids (N, P+T); response_mask, rollout_logprobs, advantages (N, T).
    """
    n = len(completions)
    p = max(len(ids) for ids in prompt_ids)
    t = max(1, max(len(c.token_ids) for c in completions))
    input_ids = torch.full((n, p + t), pad_id, dtype=torch.long)
    attention = torch.zeros((n, p + t), dtype=torch.long)
    response_mask = torch.zeros((n, t))
    rollout_lp = torch.zeros((n, t))
    for i, (prompt, comp) in enumerate(zip(prompt_ids, completions, strict=True)):
        start = p - len(prompt)  # left padding
        input_ids[i, start:p] = torch.tensor(prompt, dtype=torch.long)
        attention[i, start:p] = 1
        length = len(comp.token_ids)
        if length:
            input_ids[i, p : p + length] = torch.tensor(comp.token_ids, dtype=torch.long)
            attention[i, p : p + length] = 1
            rollout_lp[i, :length] = torch.tensor(comp.logprobs, dtype=torch.float32)
            mask = loss_mask[i] if loss_mask is not None else [1.0] * length
            response_mask[i, :length] = torch.tensor(mask[:length], dtype=torch.float32)
    position_ids = (attention.cumsum(dim=1) - 1).clamp(min=0)
    if advantages.dim() == 1:
        adv = advantages.float().unsqueeze(1).expand(n, t) * response_mask
    else:
        adv = advantages[:, :t].float() * response_mask
    return Batch(
        input_ids=input_ids,
        attention_mask=attention,
        position_ids=position_ids,
        response_mask=response_mask,
        rollout_logprobs=rollout_lp,
        advantages=adv.contiguous(),
    )


def trim(batch: Batch) -> Batch:
    """Drop all-padding columns at the left of the prompt and the right of the response.

    Micro-batches of similar lengths then cost only their own length (a large CPU saving).
    """
    real = batch.attention_mask.bool()
    p = batch.prompt_len
    prompt_cols = real[:, :p].any(dim=0).nonzero()
    left = int(prompt_cols[0]) if len(prompt_cols) else p
    resp_cols = real[:, p:].any(dim=0).nonzero()
    right = int(resp_cols[-1]) + 1 if len(resp_cols) else 1
    cols = slice(left, p + right)
    return Batch(
        input_ids=batch.input_ids[:, cols],
        attention_mask=batch.attention_mask[:, cols],
        position_ids=batch.position_ids[:, cols],
        response_mask=batch.response_mask[:, :right],
        rollout_logprobs=batch.rollout_logprobs[:, :right],
        advantages=batch.advantages[:, :right],
        old_logprobs=None if batch.old_logprobs is None else batch.old_logprobs[:, :right],
        ref_logprobs=None if batch.ref_logprobs is None else batch.ref_logprobs[:, :right],
    )


def micro_batches(batch: Batch, rows: torch.Tensor, size: int) -> list[torch.Tensor]:
    """Split `rows` of `batch` into chunks of `size`, sorted by length so that each micro-batch
    pads only to its own longest sequence (use with `trim`)."""
    lengths = batch.attention_mask[rows].sum(dim=1)
    ordered = rows[torch.argsort(lengths, stable=True)]
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]
