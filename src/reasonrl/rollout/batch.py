"""The engine's running batch: cache, per-row sampling state, and row entry / exit.

Row life cycle: `admit_rows` prefills a prompt once, copies its keys/values into its G sample
rows and samples each row's first token; every decode step then appends one token per row
(`ActiveRows.record`); `ActiveRows.finished` reports rows that sampled EOS, completed a stop
string or reached max_new_tokens; `finish_rows` marks them dead and compacts the cache once enough
rows are dead. Dead rows still ride along until then, with frozen positions, and their outputs
are ignored.

Shapes: W rows, C cache columns, M = max_new_tokens, nL layers, kvh kv-heads, hd head dim.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch

from reasonrl.rollout.base import SamplingParams
from reasonrl.rollout.decoder import DecoderWeights, prefill, rope_table
from reasonrl.rollout.sampling import sample_next
from reasonrl.rollout.stops import StopChecker

FinishReason = Literal["stop", "length"]


@dataclass(slots=True)
class ActiveRows:
    """Everything the decode loop keeps per row; tensors are (W, ...) and share the row order."""

    k: torch.Tensor  # (nL, W, kvh, C, hd) ragged key cache
    v: torch.Tensor  # (nL, W, kvh, C, hd)
    positions: torch.Tensor  # (W,) int64 cache column where `pending` goes = tokens cached
    pending: torch.Tensor  # (W,) int64 last sampled token, not yet in the cache
    keys: torch.Tensor  # (W, 2) int64 sampling keys
    ngen: torch.Tensor  # (W,) int64 response tokens sampled so far
    out_tokens: torch.Tensor  # (W, M + 1) int64; the extra column absorbs dead rows' writes
    out_logprobs: torch.Tensor  # (W, M + 1) float32
    rope: tuple[torch.Tensor, torch.Tensor]  # cos/sin tables (C, hd)
    prompt_of: list[int]  # host: which prompt / sample each row is
    sample_of: list[int]
    pos_host: list[int]  # host mirror of `positions` (gives the attention span without a sync)
    ngen_host: list[int]
    alive_host: list[bool]
    latest: list[int] = field(default_factory=list)  # tokens sampled at the last step
    recent: list[list[int]] | None = None  # response tokens per row, kept only for stop strings

    @property
    def size(self) -> int:
        return len(self.prompt_of)

    @property
    def alive(self) -> int:
        return sum(self.alive_host)

    def span_after_step(self) -> int:
        """Columns the next decode step touches: every row writes at its position."""
        return max(self.pos_host) + 1

    def record(self, tokens: torch.Tensor, logprobs: torch.Tensor) -> None:
        """Store this step's samples; alive rows advance one position, dead rows stay put."""
        rows = torch.arange(self.size)
        self.out_tokens[rows, self.ngen] = tokens
        self.out_logprobs[rows, self.ngen] = logprobs
        alive = torch.tensor(self.alive_host, dtype=torch.int64)
        self.ngen += alive
        self.positions += alive
        self.pending = tokens
        self.latest = tokens.tolist()
        for r, live in enumerate(self.alive_host):
            if live:
                self.pos_host[r] += 1
                self.ngen_host[r] += 1
                if self.recent is not None:
                    self.recent[r].append(self.latest[r])

    def finished(
        self, eos_ids: frozenset[int], max_new_tokens: int, stops: StopChecker | None
    ) -> list[tuple[int, FinishReason]] | None:
        """Rows that just finished (index, reason), or None; EOS wins over the length cap."""
        done: list[tuple[int, FinishReason]] = []
        for r, live in enumerate(self.alive_host):
            if not live:
                continue
            stopped = stops is not None and self.recent is not None and stops.hit(self.recent[r])
            if self.latest[r] in eos_ids or stopped:
                done.append((r, "stop"))
            elif self.ngen_host[r] >= max_new_tokens:
                done.append((r, "length"))
        return done or None

    def output(self, r: int) -> tuple[list[int], list[float]]:
        """Response tokens and their log-probs of row r."""
        n = self.ngen_host[r]
        return self.out_tokens[r, :n].tolist(), self.out_logprobs[r, :n].tolist()


def _empty_cache_like(k: torch.Tensor, rows: int, columns: int) -> torch.Tensor:
    # zeros, not empty: unused columns are masked with -inf, and 0 * NaN garbage would be NaN
    return k.new_zeros((k.shape[0], rows, k.shape[2], columns, k.shape[4]))


def _select(batch: ActiveRows, keep: list[int]) -> ActiveRows:
    """The batch restricted to rows `keep` (in order); the cache is compacted in place.

    Kept rows move to the front of the same buffer and only their used columns are copied; the
    columns beyond come from whatever row was there before, finite values that stay masked.
    This costs less than zeroing a fresh buffer, which a compaction would otherwise be dominated by.
    """
    index = torch.tensor(keep, dtype=torch.int64)
    n = len(keep)
    if keep != list(range(n)):
        span = max(batch.pos_host[r] for r in keep) + 1
        batch.k[:, :n, :, :span] = batch.k[:, index, :, :span]  # RHS is a copy: no aliasing
        batch.v[:, :n, :, :span] = batch.v[:, index, :, :span]
    return ActiveRows(
        k=batch.k[:, :n],
        v=batch.v[:, :n],
        positions=batch.positions[index],
        pending=batch.pending[index],
        keys=batch.keys[index],
        ngen=batch.ngen[index],
        out_tokens=batch.out_tokens[index],
        out_logprobs=batch.out_logprobs[index],
        rope=batch.rope,
        prompt_of=[batch.prompt_of[r] for r in keep],
        sample_of=[batch.sample_of[r] for r in keep],
        pos_host=[batch.pos_host[r] for r in keep],
        ngen_host=[batch.ngen_host[r] for r in keep],
        alive_host=[True] * len(keep),
        latest=[batch.latest[r] for r in keep] if batch.latest else [],
        recent=None if batch.recent is None else [batch.recent[r] for r in keep],
    )


def finish_rows(batch: ActiveRows, rows: Sequence[int], compact_fraction: float) -> ActiveRows:
    """Mark `rows` dead; drop all dead rows from the batch once `compact_fraction` are dead."""
    for r in rows:
        batch.alive_host[r] = False
    alive = [r for r, live in enumerate(batch.alive_host) if live]
    if len(alive) == batch.size:
        return batch
    if not alive or batch.size - len(alive) >= compact_fraction * batch.size:
        return _select(batch, alive)
    return batch


def admit_rows(
    w: DecoderWeights,
    batch: ActiveRows | None,
    items: Sequence[tuple[int, Sequence[int]]],
    keys: torch.Tensor,
    params: SamplingParams,
    capacity: int,
    track_text: bool = False,
) -> ActiveRows:
    """Prefill prompts once, give each `params.n` rows, sample their first tokens, join the batch.

    Args:
        w: packed weights.
        batch: the running batch (its dead rows are dropped here), or None.
        items: (prompt index, prompt ids) pairs to admit.
        keys: (B*G, 2) sampling keys of the whole request, row b*G + j.
        params: sampling settings (n, temperature, ...).
        capacity: cache columns C (longest prompt of the request + max_new_tokens).
        track_text: keep host token lists for stop-string checks.
    """
    n = params.n
    lengths = torch.tensor([len(ids) for _, ids in items], dtype=torch.int64)
    width = int(lengths.max())
    tokens = torch.zeros((len(items), width), dtype=torch.int64)
    for i, (_, ids) in enumerate(items):
        tokens[i, : len(ids)] = torch.tensor(ids, dtype=torch.int64)
    logits, pk, pv = prefill(w, tokens, lengths)  # pk/pv: (nL, P, kvh, Lp, hd)
    row_keys = torch.cat([keys[b * n : (b + 1) * n] for b, _ in items])
    first, first_lp = sample_next(
        logits.repeat_interleave(n, dim=0),
        row_keys,
        torch.zeros(len(items) * n, dtype=torch.int64),
        temperature=params.temperature,
        top_k=params.top_k,
        top_p=params.top_p,
        greedy=params.greedy,
    )
    old = (
        None if batch is None else _select(batch, [r for r, a in enumerate(batch.alive_host) if a])
    )
    n_old = 0 if old is None else old.size
    rows_new = len(items) * n
    k = _empty_cache_like(pk, n_old + rows_new, capacity)
    v = _empty_cache_like(pv, n_old + rows_new, capacity)
    new_k = k[:, n_old:].unflatten(1, (len(items), n))  # (nL, P, G, kvh, C, hd) view
    new_v = v[:, n_old:].unflatten(1, (len(items), n))
    new_k[..., :width, :] = pk[:, :, None]  # the prompt's cache copied to its G rows
    new_v[..., :width, :] = pv[:, :, None]
    out_tokens = torch.zeros((rows_new, params.max_new_tokens + 1), dtype=torch.int64)
    out_logprobs = torch.zeros((rows_new, params.max_new_tokens + 1), dtype=torch.float32)
    out_tokens[:, 0], out_logprobs[:, 0] = first, first_lp
    prompt_of = [b for b, _ in items for _ in range(n)]
    plens = lengths.repeat_interleave(n)
    latest = first.tolist()
    new = ActiveRows(
        k=k,
        v=v,
        positions=plens.clone(),
        pending=first,
        keys=row_keys,
        ngen=torch.ones(rows_new, dtype=torch.int64),
        out_tokens=out_tokens,
        out_logprobs=out_logprobs,
        rope=rope_table(w, capacity) if batch is None else batch.rope,
        prompt_of=prompt_of,
        sample_of=[j for _ in items for j in range(n)],
        pos_host=plens.tolist(),
        ngen_host=[1] * rows_new,
        alive_host=[True] * rows_new,
        latest=latest,
        recent=[[t] for t in latest] if track_text else None,
    )
    return new if old is None or old.size == 0 else _concat(old, new, k, v)


def _concat(old: ActiveRows, new: ActiveRows, k: torch.Tensor, v: torch.Tensor) -> ActiveRows:
    """Join two batches; `k`/`v` already hold `new`'s rows after `old.size` rows of space."""
    span = max(old.pos_host) + 1
    k[:, : old.size, :, :span] = old.k[:, :, :, :span]
    v[:, : old.size, :, :span] = old.v[:, :, :, :span]
    width = new.out_tokens.shape[1]
    return ActiveRows(
        k=k,
        v=v,
        positions=torch.cat([old.positions, new.positions]),
        pending=torch.cat([old.pending, new.pending]),
        keys=torch.cat([old.keys, new.keys]),
        ngen=torch.cat([old.ngen, new.ngen]),
        out_tokens=torch.cat([old.out_tokens[:, :width], new.out_tokens]),
        out_logprobs=torch.cat([old.out_logprobs[:, :width], new.out_logprobs]),
        rope=old.rope,
        prompt_of=old.prompt_of + new.prompt_of,
        sample_of=old.sample_of + new.sample_of,
        pos_host=old.pos_host + new.pos_host,
        ngen_host=old.ngen_host + new.ngen_host,
        alive_host=old.alive_host + new.alive_host,
        latest=old.latest + new.latest,
        recent=None if old.recent is None else old.recent + (new.recent or []),
    )
