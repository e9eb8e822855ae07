"""Model merging by weight averaging: Kimi k1.5's long2short merge (arXiv 2501.12599 §2.4).

    theta = weight * theta_a + (1 - weight) * theta_b

for every floating-point tensor of two models of the same architecture (same parameter names and
shapes); any other tensor (integer buffers) must be equal in both and is copied. Kimi merges a
long-CoT model with a short-CoT one to get answers of intermediate length at little cost in
accuracy; the same function averages any two fine-tunes of one base (a "model soup").
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor


def merge_state_dicts(
    a: Mapping[str, Tensor], b: Mapping[str, Tensor], *, weight: float
) -> dict[str, Tensor]:
    """weight * a + (1 - weight) * b per floating-point tensor, computed in fp32 and cast back to
    a's dtype; ValueError (naming the first offending key) on different keys or shapes."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight}")
    if a.keys() != b.keys():
        only = sorted(set(a) ^ set(b))
        raise ValueError(f"the models' parameters differ (e.g. {only[0]!r}): not one architecture")
    out = {}
    for key, x in a.items():
        y = b[key]
        if x.shape != y.shape:
            raise ValueError(f"{key}: shape {tuple(x.shape)} vs {tuple(y.shape)}")
        if x.is_floating_point():
            out[key] = (weight * x.float() + (1.0 - weight) * y.float()).to(x.dtype)
        elif torch.equal(x, y):
            out[key] = x.clone()
        else:
            raise ValueError(f"{key}: a non-float tensor that differs cannot be averaged")
    return out


def merge_models(a: str | Path, b: str | Path, out: str | Path, *, weight: float) -> Path:
    """Load two HF model directories, average them (`merge_state_dicts`), write `out` as an HF
    directory with a's config and tokenizer and a `reasonrl.json` naming the parents."""
    from reasonrl.models.io import load_policy, save_policy

    model_a, tokenizer = load_policy(a)
    model_b, _ = load_policy(b)
    # tied weights (embeddings = LM head) appear once in the state dict: load_state_dict re-ties
    merged = merge_state_dicts(model_a.state_dict(), model_b.state_dict(), weight=weight)
    model_a.load_state_dict(merged)
    extra: dict[str, Any] = {"merge": {"a": str(a), "b": str(b), "weight": weight}}
    return save_policy(model_a, tokenizer, out, extra=extra)
