"""What every local rollout engine does the same way: prompt checks, EOS ids, completions, weights.

`hf_engine.HFEngine` (fused decoder) and `transformers_engine.TransformersEngine` (the model's own
forward) differ only in how they compute logits; these functions are the rest, written once so the
two engines cannot drift apart on the conventions of `base.py`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch

from reasonrl.types import Completion, FinishReason


def check_prompts(
    prompt_ids: Sequence[Sequence[int]], vocab_size: int, *, owner: str
) -> list[list[int]]:
    """The prompts as lists of ints; an empty prompt or an id outside [0, vocab_size) raises.

    Args:
        prompt_ids: B prompts of token ids (no padding).
        vocab_size: the model's vocabulary size V.
        owner: what the error message names, e.g. "HFEngine.generate".
    """
    prompts = []
    for i, prompt in enumerate(prompt_ids):
        ids = [int(t) for t in prompt]
        if not ids:
            raise ValueError(f"{owner}: prompt {i} is empty (needs >= 1 token)")
        bad = [t for t in ids if not 0 <= t < vocab_size]
        if bad:
            raise ValueError(
                f"{owner}: prompt {i} has token ids outside [0, {vocab_size}): {bad[:5]}"
            )
        prompts.append(ids)
    return prompts


def eos_ids(model: Any, tokenizer: Any, eos_token_id: int | Sequence[int] | None) -> frozenset[int]:
    """The stop token ids: the argument, else the generation config's, else the tokenizer's."""
    candidates: Any = eos_token_id
    if candidates is None:
        gen = getattr(model, "generation_config", None)
        candidates = getattr(gen, "eos_token_id", None)
    if candidates is None:
        candidates = getattr(tokenizer, "eos_token_id", None)
    if candidates is None:
        return frozenset()
    if isinstance(candidates, int):
        return frozenset({candidates})
    return frozenset(int(c) for c in candidates)


def make_completion(
    tokenizer: Any,
    tokens: list[int],
    logprobs: list[float],
    reason: FinishReason,
    *,
    pad_id: int | None,
    stop_ids: frozenset[int],
) -> Completion:
    """A `Completion` with the text rule of `base.py`: pad tokens dropped, then decoded as is.

    A pad id that doubles as an EOS id (`stop_ids`) stays in the text, so the text shows the EOS
    the tokens hold; `token_ids` always keep every token.
    """
    shown = tokens
    if pad_id is not None and pad_id not in stop_ids:
        shown = [t for t in tokens if t != pad_id]
    text = tokenizer.decode(shown, skip_special_tokens=False)
    return Completion(
        text=text, token_ids=tuple(tokens), logprobs=tuple(logprobs), finish_reason=reason
    )


def copy_weights(
    model: torch.nn.Module, named_tensors: Iterable[tuple[str, torch.Tensor]], *, owner: str
) -> None:
    """Copy named tensors into `model`'s parameters/buffers in place (the `load_weights` contract).

    Names are those of `model.named_parameters()` / `named_buffers()`; an unknown name raises
    KeyError and a shape mismatch ValueError. A tensor that IS the target (the trainer's own model
    shared with the engine) is skipped: it is already current.
    """
    params = dict(model.named_parameters())
    params.update(model.named_buffers())
    with torch.no_grad():
        for name, tensor in named_tensors:
            if name not in params:
                raise KeyError(f"{owner}: unknown parameter {name!r}")
            target = params[name]
            if target is tensor or target.data_ptr() == tensor.data_ptr():
                continue  # shared weights: already current
            if target.shape != tensor.shape:
                raise ValueError(
                    f"{owner}: {name!r} has shape {tuple(tensor.shape)}, "
                    f"expected {tuple(target.shape)}"
                )
            target.copy_(tensor)
