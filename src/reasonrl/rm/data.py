"""Pairwise preference data: the `PreferencePair` record, a JSONL loader with field mapping,
token encoding (prompt ids as SFT/RL/eval encode them) and a JSONL writer."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reasonrl.data.loaders import DataError, iter_jsonl
from reasonrl.data.templates import encode_prompt


@dataclass(frozen=True)
class PreferencePair:
    """One preference: `chosen` is preferred to `rejected` as a response to `prompt`.

    `*_ids` are token ids when the pair came from a sampler (exactly the sampled tokens, no
    re-tokenisation); None for pairs read from text, encoded by `encode_pair`.
    """

    prompt: str
    chosen: str
    rejected: str
    prompt_ids: tuple[int, ...] | None = None
    chosen_ids: tuple[int, ...] | None = None
    rejected_ids: tuple[int, ...] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def load_pairs(
    path: str | Path,
    *,
    prompt_key: str = "prompt",
    chosen_key: str = "chosen",
    rejected_key: str = "rejected",
) -> list[PreferencePair]:
    """Pairs of a JSONL file, fields named by the keys; a row without a string chosen/rejected
    raises `DataError` naming file:line (a row without the prompt key gets an empty prompt)."""
    pairs = []
    for line, row in iter_jsonl(path):
        texts = []
        for key in (chosen_key, rejected_key):
            value = row.get(key)
            if not isinstance(value, str):
                raise DataError(f"{path}:{line}: field {key!r} must be a string, got {value!r}")
            texts.append(value)
        prompt = row.get(prompt_key, "")
        if not isinstance(prompt, str):
            raise DataError(f"{path}:{line}: field {prompt_key!r} must be a string")
        rest = {k: v for k, v in row.items() if k not in (prompt_key, chosen_key, rejected_key)}
        pairs.append(PreferencePair(prompt, texts[0], texts[1], meta=rest))
    if not pairs:
        raise DataError(f"{path}: no pairs")
    return pairs


def encode_pair(tokenizer: Any, pair: PreferencePair) -> tuple[list[int], list[int], list[int]]:
    """(prompt ids, chosen ids, rejected ids): the prompt with `encode_prompt` (one BOS), the
    responses as their text's ids (no special tokens added)."""

    def text_ids(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    prompt = (
        list(pair.prompt_ids)
        if pair.prompt_ids is not None
        else encode_prompt(tokenizer, pair.prompt)
    )
    chosen = list(pair.chosen_ids) if pair.chosen_ids is not None else text_ids(pair.chosen)
    rejected = list(pair.rejected_ids) if pair.rejected_ids is not None else text_ids(pair.rejected)
    return prompt, chosen, rejected


def write_pairs(pairs: list[PreferencePair], path: str | Path) -> Path:
    """The pairs as JSONL (texts and meta; ids dropped): reloadable by `load_pairs`."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as fh:
        for p in pairs:
            row = {k: v for k, v in asdict(p).items() if not k.endswith("_ids") and k != "meta"}
            fh.write(json.dumps({**p.meta, **row}) + "\n")
    return out


__all__ = ["PreferencePair", "encode_pair", "load_pairs", "write_pairs"]
