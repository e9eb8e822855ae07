"""A scalar reward model: any Hugging Face causal LM's transformer body plus a linear head.

    rm = RewardModel(lm, pooling="last")
    scores = rm(input_ids, attention_mask)          # (N,) float, one score per sequence
    save_reward_model(rm, tokenizer, "runs/rm/final"); rm, tok = load_reward_model(path)

Pooling (the sequence's representation the head reads):
- `last` (default, as InstructGPT's RM, arXiv 2203.02155, and TRL's reward trainer): the final
  hidden state at the LAST non-padding token; causal attention has let it see the whole prompt and
  response, so it is the natural summary;
- `mean`: the mean final hidden state over every non-padding token (prompt and response).
Sequences are RIGHT-padded, with `attention_mask` 1 on real tokens.

It lives in `models/` (not `rm/`) because both the RM trainer (`rm/`) and the learned reward
(`rewards/learned.py`) need it, and rewards sit below the training loops. A saved reward model is
a plain HF causal-LM directory (the LM head kept, so it still loads as a language model) plus
`reward_head.safetensors` (the head) and `reward_model.json` (pooling).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from reasonrl.models.io import load_policy, save_policy

Pooling = Literal["last", "mean"]
HEAD_FILE = "reward_head.safetensors"
META_FILE = "reward_model.json"


class RewardModel(nn.Module):
    """`lm`'s transformer body (its `base_model`) and a Linear(hidden, 1) head."""

    def __init__(self, lm: Any, *, pooling: Pooling = "last") -> None:
        super().__init__()
        if pooling not in ("last", "mean"):
            raise ValueError(f"pooling must be 'last' or 'mean', got {pooling!r}")
        self.lm = lm
        self.pooling = pooling
        hidden = int(lm.config.hidden_size)
        self.head = nn.Linear(hidden, 1)
        nn.init.normal_(self.head.weight, std=1.0 / (hidden + 1) ** 0.5)
        nn.init.zeros_(self.head.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Scores (N,) of right-padded sequences (N, T)."""
        body = self.lm.base_model  # the decoder stack without the LM head (final norm applied)
        hidden = body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.to(hidden.dtype)
        if self.pooling == "last":
            last = attention_mask.long().sum(1).clamp(min=1) - 1
            pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        else:
            pooled = (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return self.head(pooled.float()).squeeze(-1)


def pad_right(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask), both (N, max_len), right-padded with `pad_id`."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


@torch.no_grad()
def score_sequences(
    rm: RewardModel, seqs: list[list[int]], *, pad_id: int, batch_size: int = 64
) -> torch.Tensor:
    """Scores (N,) of token sequences, `batch_size` at a time, in eval mode (restored after)."""
    was_training = rm.training
    rm.eval()
    device = next(rm.parameters()).device
    out = []
    for i in range(0, len(seqs), batch_size):
        ids, mask = pad_right(seqs[i : i + batch_size], pad_id)
        out.append(rm(ids.to(device), mask.to(device)).float().cpu())
    rm.train(was_training)
    return torch.cat(out) if out else torch.zeros(0)


def save_reward_model(
    rm: RewardModel, tokenizer: Any, path: str | Path, *, extra: dict[str, Any] | None = None
) -> Path:
    """The LM as an HF directory, plus the head and its pooling (module docstring)."""
    out = save_policy(rm.lm, tokenizer, path, extra=extra)
    save_file({k: v.detach().contiguous().cpu() for k, v in rm.head.state_dict().items()},
              str(out / HEAD_FILE))  # fmt: skip
    (out / META_FILE).write_text(json.dumps({"pooling": rm.pooling}) + "\n")
    return out


def is_reward_model(path: str | Path) -> bool:
    """A directory `save_reward_model` wrote (it has the head file)."""
    return (Path(path) / HEAD_FILE).is_file()


def load_reward_model(
    path: str | Path, *, device: str = "cpu", pooling: Pooling | None = None
) -> tuple[RewardModel, Any]:
    """(reward model, tokenizer) from a `save_reward_model` directory, or a fresh head (seeded
    by the caller's RNG) on any causal LM directory / builtin:NAME when it has no head file."""
    lm, tokenizer = load_policy(path, dtype="fp32", device=device)
    meta_pooling: Pooling = "last"
    if is_reward_model(path):
        meta_pooling = json.loads((Path(path) / META_FILE).read_text())["pooling"]
    rm = RewardModel(lm, pooling=pooling or meta_pooling)
    if is_reward_model(path):
        rm.head.load_state_dict(load_file(str(Path(path) / HEAD_FILE)))
    rm.to(device)
    rm.eval()
    return rm, tokenizer


__all__ = [
    "HEAD_FILE",
    "Pooling",
    "RewardModel",
    "is_reward_model",
    "load_reward_model",
    "pad_right",
    "save_reward_model",
    "score_sequences",
]
