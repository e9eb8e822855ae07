"""The engine's running batch: cache, per-row sampling state, and row entry / exit.

Row life cycle: `admit_rows` prefills a prompt once, copies its keys/values into its G sample
rows and samples each row's first token; every decode step then appends one token per row
(`ActiveRows.record`); `ActiveRows.finished` reports rows that sampled EOS, completed a stop
string or reached max_new_tokens; `remove_rows` takes them out at once, so no step computes a
finished row.

Removal is swap-remove: the live rows at the end of the batch move into the freed slots and the
batch is narrowed. Only the moved rows' used cache columns are copied, so removing every row
over a whole generation copies about one batch worth of cache, however the finishes spread.
Row order therefore changes; each row carries its prompt / sample index and its sampling key.

Cache width: the decode step attends over the whole (contiguous) cache width Cw, so Cw follows
the longest row: it starts at the longest prompt + 1 rounded up to `_WIDTH_STEP` columns and grows
by that step (`ActiveRows.reserve`, one copy every 32 steps) up to the capacity C.

Shapes: W rows, C cache capacity, Cw <= C its current width, M = max_new_tokens, nL layers, kvh
kv-heads, hd head dim.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from reasonrl.rollout.base import SamplingParams
from reasonrl.rollout.decoder import DecoderWeights, prefill, rope_table
from reasonrl.rollout.sampling import sample_next
from reasonrl.rollout.stops import StopChecker
from reasonrl.types import FinishReason

# Columns the cache width grows by: wide enough that growing (a copy of the cache) is rare, narrow
# enough that attention over the masked tail stays cheap (< 32 wasted columns per row).
_WIDTH_STEP = 32


def _width_for(span: int, capacity: int) -> int:
    """The cache width for `span` columns: rounded up to `_WIDTH_STEP`, at most `capacity`."""
    return min(capacity, -(-span // _WIDTH_STEP) * _WIDTH_STEP)


@dataclass(slots=True)
class ActiveRows:
    """Everything the decode loop keeps per row; tensors are (W, ...) and share the row order."""

    k: torch.Tensor  # (nL, W, kvh, hd, Cw) ragged key cache, transposed (decoder.decode_step)
    v: torch.Tensor  # (nL, W, kvh, Cw, hd)
    positions: torch.Tensor  # (W,) int64 cache column where `pending` goes = tokens cached
    pending: torch.Tensor  # (W,) int64 last sampled token, not yet in the cache
    keys: torch.Tensor  # (W, 2) int64 sampling keys
    ngen: torch.Tensor  # (W,) int64 response tokens sampled so far
    out_tokens: torch.Tensor  # (W, M) int64 response tokens
    out_logprobs: torch.Tensor  # (W, M) float32 their log-probs
    rope: tuple[torch.Tensor, torch.Tensor]  # cos/sin tables (C, hd): C = the capacity
    prompt_of: list[int]  # host: which prompt / sample each row is
    sample_of: list[int]
    pos_host: list[int]  # host mirror of `positions` (gives the attention span without a sync)
    ngen_host: list[int]
    latest: list[int] = field(default_factory=list)  # tokens sampled at the last step
    recent: list[list[int]] | None = None  # response tokens per row, kept only for stop strings

    @property
    def size(self) -> int:
        return len(self.prompt_of)

    def span_after_step(self) -> int:
        """Columns the next decode step touches: every row writes at its position."""
        return max(self.pos_host) + 1

    def reserve(self, span: int) -> None:
        """Widen the cache (zero-filled new columns) so that it holds at least `span` columns."""
        width = self.k.shape[-1]
        if span <= width:
            return
        new = _width_for(span, self.rope[0].shape[0])
        k = self.k.new_zeros((*self.k.shape[:-1], new))
        v = self.v.new_zeros((*self.v.shape[:3], new, self.v.shape[-1]))
        k[..., :width] = self.k
        v[:, :, :, :width] = self.v
        self.k, self.v = k, v

    def record(self, tokens: torch.Tensor, logprobs: torch.Tensor) -> None:
        """Store this step's samples; every row advances one position."""
        rows = torch.arange(self.size)
        self.out_tokens[rows, self.ngen] = tokens
        self.out_logprobs[rows, self.ngen] = logprobs
        self.ngen += 1
        self.positions += 1
        self.pending = tokens
        self.latest = tokens.tolist()
        self.pos_host = [p + 1 for p in self.pos_host]
        self.ngen_host = [n + 1 for n in self.ngen_host]
        if self.recent is not None:
            for tokens_so_far, token in zip(self.recent, self.latest):
                tokens_so_far.append(token)

    def finished(
        self, eos_ids: frozenset[int], max_new_tokens: int, stops: StopChecker | None
    ) -> list[tuple[int, FinishReason]] | None:
        """Rows that just finished (index, reason), or None; EOS wins over the length cap."""
        done: list[tuple[int, FinishReason]] = []
        for r in range(self.size):
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


def remove_rows(batch: ActiveRows, rows: Sequence[int]) -> ActiveRows:
    """Drop `rows` from the batch in place (swap-remove); returns the narrowed batch.

    Every slot below the new size that was freed receives one of the surviving rows from above
    it; the freed rows' stale cache columns are overwritten up to the mover's span and the rest
    holds finite old values that stay masked.
    """
    gone = set(rows)
    size = batch.size - len(gone)
    holes = [r for r in sorted(gone) if r < size]
    movers = [r for r in range(size, batch.size) if r not in gone]
    if movers:
        dst, src = torch.tensor(holes), torch.tensor(movers)
        span = max(batch.pos_host[r] for r in movers) + 1
        batch.k[:, dst, :, :, :span] = batch.k[:, src, :, :, :span]
        batch.v[:, dst, :, :span] = batch.v[:, src, :, :span]
        for name in ("positions", "pending", "keys", "ngen", "out_tokens", "out_logprobs"):
            tensor = getattr(batch, name)
            tensor[dst] = tensor[src]
        for name in ("prompt_of", "sample_of", "pos_host", "ngen_host", "latest", "recent"):
            values = getattr(batch, name)
            if values:
                for h, m in zip(holes, movers):
                    values[h] = values[m]
    for name in ("k", "v"):
        setattr(batch, name, getattr(batch, name)[:, :size])
    for name in ("positions", "pending", "keys", "ngen", "out_tokens", "out_logprobs"):
        setattr(batch, name, getattr(batch, name)[:size])
    for name in ("prompt_of", "sample_of", "pos_host", "ngen_host", "latest", "recent"):
        values = getattr(batch, name)
        if values:
            setattr(batch, name, values[:size])
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
        batch: the running batch (new rows are appended after its rows), or None.
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
    logits, pk, pv = prefill(w, tokens, lengths)  # per layer (P, kvh, Lp, hd)
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
    old = batch if batch is not None and batch.size > 0 else None
    n_old = 0 if old is None else old.size
    rows_new = len(items) * n
    cols = _width_for(width + 1, capacity)  # room for the first decode step's token
    if old is not None:
        cols = max(cols, old.k.shape[-1])
    n_layers, kvh, head_dim = len(pk), pk[0].shape[1], pk[0].shape[3]
    # zeros, not empty: unused columns are masked with -inf, and 0 * NaN garbage would be NaN
    k = pk[0].new_zeros((n_layers, n_old + rows_new, kvh, head_dim, cols))
    v = pv[0].new_zeros((n_layers, n_old + rows_new, kvh, cols, head_dim))
    for i in range(len(pk)):  # each prompt's keys/values copied to its G rows
        k[i, n_old:].unflatten(0, (len(items), n))[..., :width] = pk[i].transpose(2, 3)[:, None]
        v[i, n_old:].unflatten(0, (len(items), n))[..., :width, :] = pv[i][:, None]
    out_tokens = torch.zeros((rows_new, params.max_new_tokens), dtype=torch.int64)
    out_logprobs = torch.zeros((rows_new, params.max_new_tokens), dtype=torch.float32)
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
        latest=latest,
        recent=[[t] for t in latest] if track_text else None,
    )
    return new if old is None else _concat(old, new, k, v)


def _concat(old: ActiveRows, new: ActiveRows, k: torch.Tensor, v: torch.Tensor) -> ActiveRows:
    """Join two batches; `k`/`v` already hold `new`'s rows after `old.size` rows of space."""
    span = max(old.pos_host) + 1
    k[:, : old.size, :, :, :span] = old.k[:, :, :, :, :span]
    v[:, : old.size, :, :span] = old.v[:, :, :, :span]
    return ActiveRows(
        k=k,
        v=v,
        positions=torch.cat([old.positions, new.positions]),
        pending=torch.cat([old.pending, new.pending]),
        keys=torch.cat([old.keys, new.keys]),
        ngen=torch.cat([old.ngen, new.ngen]),
        out_tokens=torch.cat([old.out_tokens, new.out_tokens]),
        out_logprobs=torch.cat([old.out_logprobs, new.out_logprobs]),
        rope=old.rope,
        prompt_of=old.prompt_of + new.prompt_of,
        sample_of=old.sample_of + new.sample_of,
        pos_host=old.pos_host + new.pos_host,
        ngen_host=old.ngen_host + new.ngen_host,
        latest=old.latest + new.latest,
        recent=None if old.recent is None else old.recent + (new.recent or []),
    )
