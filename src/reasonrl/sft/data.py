"""SFT data: prompt/completion rows -> token ids -> length-bucketed, right-padded batches.

Why bucketing and not packing: packing several samples into one row needs a block-diagonal
attention mask (or per-sample position resets) to stop a sample attending to its neighbours;
bucketing needs neither. Rows are right-padded and the model runs with *no* attention mask: under
causal attention a real token only sees earlier positions, which are never padding, so padding
changes no real token's output (tested) and SDPA keeps its fast `is_causal` path.

Row fields: `prompt` (str), `completion` (str), optional `weight` (float >= 0, multiplies the row's
token losses) and `repeat` (int >= 1, the row appears that many times per epoch: DRIVE's
hard-sample duplication, arXiv 2511.06307). Other fields are ignored, except by a prompt format
string that names them (`data.template`).

The prompt is encoded by `data.templates.prompt_token_ids` under the run's `PromptFormat`
(`data.template`, `data.system_prompt`, `data.instruction`), the function RL rollouts and
evaluation use, so the model is fine-tuned on the prefix it is later sampled from.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from reasonrl.data.templates import PromptFormat, prompt_token_ids
from reasonrl.types import Sample


@dataclass(frozen=True, slots=True)
class TokenizedRow:
    """One training sequence: prompt ids then completion ids (ending in EOS).

    token_mask: per completion token, 1.0 = trained, 0.0 = observation (a tool's `<output>`
    span, never predicted by the policy); None = every completion token is trained.
    """

    prompt_ids: tuple[int, ...]
    completion_ids: tuple[int, ...]
    weight: float = 1.0
    token_mask: tuple[float, ...] | None = None

    def __len__(self) -> int:
        return len(self.prompt_ids) + len(self.completion_ids)

    @property
    def masked_tokens(self) -> int:
        """Completion tokens with mask 0 (tool outputs)."""
        return 0 if self.token_mask is None else sum(1 for m in self.token_mask if m == 0.0)


@dataclass(frozen=True, slots=True)
class SFTBatch:
    """Right-padded token ids and the per-token loss weights of the predicted tokens.

    input_ids    (R, L) long   prompt + completion, right-padded with pad_id
    loss_weight  (R, L) float  weight of predicting input_ids[:, t] from positions < t:
                               row weight on completion tokens, 0 on prompt and padding
    n_tokens     int           number of trained completion tokens (unweighted; tool outputs
                               not counted), for normalising
    """

    input_ids: torch.Tensor
    loss_weight: torch.Tensor
    n_tokens: int


# Row fields that are the row's own data, not meta a prompt template may name.
_ROW_FIELDS = ("prompt", "completion", "weight", "repeat")


def encode_row(
    tokenizer: Any,
    row: dict[str, Any],
    *,
    where: str = "row",
    prompt_format: PromptFormat | None = None,
) -> TokenizedRow:
    """Tokenize one prompt/completion row; EOS is appended to the completion when missing.
    The prompt goes through `prompt_format` (None = as is); the other fields are its meta.

    Raises:
        ValueError: naming `where` and the key when a field is missing or has a bad value.
    """
    for key in ("prompt", "completion"):
        if not isinstance(row.get(key), str):
            raise ValueError(f"{where}: field {key!r} must be a string")
    weight = row.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
        raise ValueError(f"{where}: field 'weight' must be a number >= 0, got {weight!r}")
    meta = {k: v for k, v in row.items() if k not in _ROW_FIELDS}
    sample = Sample(id=where, prompt=row["prompt"], meta=meta)
    try:
        prompt_ids = prompt_token_ids(tokenizer, sample, prompt_format)
    except ValueError as exc:  # a template field the row lacks
        raise ValueError(f"{where}: {exc}") from None
    completion_ids, mask = completion_tokens(tokenizer, row["completion"])
    eos = tokenizer.eos_token_id
    if eos is not None and (not completion_ids or completion_ids[-1] != eos):
        completion_ids.append(eos)
        mask.append(1.0)
    if not completion_ids:
        raise ValueError(f"{where}: empty completion")
    token_mask = tuple(mask) if 0.0 in mask else None
    return TokenizedRow(tuple(prompt_ids), tuple(completion_ids), float(weight), token_mask)


def completion_tokens(tokenizer: Any, text: str) -> tuple[list[int], list[float]]:
    """Token ids of a completion and their loss mask: 0.0 on the tokens of its tool-output
    spans (`<output>...</output>`, tags included: `tasks.synth.tooltrace.tool_output_spans`),
    1.0 elsewhere (AgentMath's observation masking; what RL's `loss_mask` does to inserted
    observation tokens).

    With spans, the text is tokenized piece by piece at the span boundaries, as the tool env
    tokenizes an observation on its own and appends it (token in, token out), so the SFT
    sequence is the one an RL episode would hold; without spans it is one call, as before.
    """
    from reasonrl.tasks.synth.tooltrace import tool_output_spans

    def ids(piece: str) -> list[int]:
        return list(tokenizer(piece, add_special_tokens=False)["input_ids"]) if piece else []

    spans = tool_output_spans(text)
    if not spans:
        out = ids(text)
        return out, [1.0] * len(out)
    tokens: list[int] = []
    mask: list[float] = []
    cursor = 0
    for start, end in spans:
        for piece, weight in ((text[cursor:start], 1.0), (text[start:end], 0.0)):
            piece_ids = ids(piece)
            tokens += piece_ids
            mask += [weight] * len(piece_ids)
        cursor = end
    tail = ids(text[cursor:])
    return tokens + tail, mask + [1.0] * len(tail)


def encode_rows(
    tokenizer: Any,
    rows: Sequence[dict[str, Any]],
    *,
    max_len: int | None = None,
    source: str = "",
    prompt_format: PromptFormat | None = None,
) -> list[TokenizedRow]:
    """Tokenize rows, expand `repeat`, and drop rows longer than `max_len` (they would be cut);
    prompts go through `prompt_format` (`PromptFormat.from_config(cfg)`; None = as is)."""
    out: list[TokenizedRow] = []
    for index, row in enumerate(rows):
        where = f"{source or 'data'} row {index}"
        repeat = row.get("repeat", 1)
        if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
            raise ValueError(f"{where}: field 'repeat' must be an integer >= 1, got {repeat!r}")
        encoded = encode_row(tokenizer, row, where=where, prompt_format=prompt_format)
        if max_len is not None and len(encoded) > max_len:
            continue
        out.extend([encoded] * repeat)
    return out


def bucketed_batches(
    rows: Sequence[TokenizedRow],
    *,
    batch_size: int,
    rng: random.Random,
    bucket_batches: int = 32,
    drop_last: bool = True,
) -> list[list[TokenizedRow]]:
    """One epoch of batches: shuffle, sort by length inside windows, shuffle the batches.

    Each window of `bucket_batches * batch_size` shuffled rows is sorted by length and cut into
    batches, so a batch holds rows of similar length (little padding) while batch order and
    membership stay random across epochs.
    """
    order = list(rows)
    rng.shuffle(order)
    window = batch_size * bucket_batches
    batches: list[list[TokenizedRow]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=len)
        for b in range(0, len(chunk), batch_size):
            batch = chunk[b : b + batch_size]
            if len(batch) == batch_size or not drop_last:
                batches.append(batch)
    rng.shuffle(batches)
    return batches


def collate_sft(rows: Sequence[TokenizedRow], *, pad_id: int) -> SFTBatch:
    """Right-pad rows into an `SFTBatch` whose loss weights cover completion tokens only."""
    length = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    loss_weight = torch.zeros((len(rows), length))
    n_tokens = 0
    for i, row in enumerate(rows):
        ids = row.prompt_ids + row.completion_ids
        input_ids[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        loss_weight[i, len(row.prompt_ids) : len(ids)] = row.weight
        if row.token_mask is not None:  # tool outputs: weight exactly 0
            loss_weight[i, len(row.prompt_ids) : len(ids)] *= torch.tensor(row.token_mask)
        n_tokens += len(row.completion_ids) - row.masked_tokens
    return SFTBatch(input_ids=input_ids, loss_weight=loss_weight, n_tokens=n_tokens)


def iterate_epochs(
    rows: Sequence[TokenizedRow], *, batch_size: int, seed: int
) -> Iterator[list[TokenizedRow]]:
    """Endless stream of bucketed batches, reshuffled every epoch (deterministic given seed)."""
    if len(rows) < batch_size:
        raise ValueError(f"need at least batch_size={batch_size} rows, got {len(rows)}")
    rng = random.Random(seed)
    while True:
        yield from bucketed_batches(rows, batch_size=batch_size, rng=rng)


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
