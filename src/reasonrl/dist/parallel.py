"""The collectives the data-parallel RL step needs, behind one object (`DataParallel`).

Exactness (docs/scaling.md): rank r's loss is (its sequences' numerator) / (the GLOBAL
normaliser, `normaliser`), so the SUM over ranks of the ranks' gradients (`all_reduce_grads`)
is the gradient of the single-process batch, up to float summation order. Every method is a
collective: all ranks call it the same number of times, in the same order, whatever their data
(an empty shard still joins each call; that is why gradients are reduced once, after the
micro-batch loop, and not per backward as DDP hooks would).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from reasonrl.dist.shard import shard_range

T = TypeVar("T")
BUCKET_NUMEL = 1 << 24  # elements per gradient all-reduce: 64 MiB in fp32
SUMMED_METRICS = ("reward/failed", "reward/not_applicable", "rollout/groups_generated")


@dataclass
class DataParallel:
    """This process's place in the group and the collectives of a data-parallel step."""

    rank: int
    world_size: int
    local_rank: int = 0
    backend: str = "gloo"
    owns_group: bool = False  # init_from_env started the group: `close` ends it

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ---------------------------------------------------------------- plain collectives

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier()

    def _device(self) -> torch.device:
        # nccl reduces device tensors only; gloo host tensors
        if self.backend == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def all_reduce(self, x: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """A new tensor: x reduced over ranks ("sum" or "max"), on x's device and dtype."""
        import torch.distributed as dist

        ops = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX}
        buf = x.detach().to(self._device(), copy=True)
        dist.all_reduce(buf, op=ops[op])
        return buf.to(x.device)

    def agree(self, flag: bool) -> bool:
        """True on every rank when it is True on any (stop decisions: time budget, signals)."""
        return bool(self.all_reduce(torch.tensor([float(flag)]), op="max").item() > 0)

    def max_int(self, value: int) -> int:
        return int(self.all_reduce(torch.tensor([float(value)]), op="max").item())

    def all_gather_object(self, obj: T) -> list[T]:
        """Every rank's obj, in rank order (pickled: for small host data only)."""
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    # ---------------------------------------------------------------- the RL step's needs

    def shard(self, n: int) -> range:
        """The rows of an n-row draw this rank owns (`shard.shard_range`)."""
        return shard_range(n, self.rank, self.world_size)

    def gather_rows(self, x: torch.Tensor) -> tuple[torch.Tensor, slice]:
        """All ranks' rows of x concatenated in rank order (the draw order), and the slice of
        the result that holds this rank's rows. Row counts may differ between ranks."""
        parts = self.all_gather_object(x.detach().cpu())
        start = sum(p.shape[0] for p in parts[: self.rank])
        full = torch.cat(parts, dim=0).to(x.device)
        return full, slice(start, start + x.shape[0])

    def normaliser(self, counts: torch.Tensor) -> torch.Tensor:
        """The global count (tokens or sequences) of the step's batch: the sum of every rank's."""
        return self.all_reduce(counts.to(torch.float64)).to(counts.dtype)

    def broadcast_module(self, module: torch.nn.Module) -> None:
        """Rank 0's parameters and buffers on every rank (identical starting weights)."""
        import torch.distributed as dist

        with torch.no_grad():
            for t in [*module.parameters(), *module.buffers()]:
                buf = t.detach().to(self._device(), copy=True)
                dist.broadcast(buf, src=0)
                t.copy_(buf.to(t.device))

    def all_reduce_grads(self, params: Iterable[torch.Tensor]) -> None:
        """Sum `.grad` over ranks, in place.

        A parameter with a gradient on any rank gets one on every rank (zeros where this rank's
        shard gave none: an empty shard or only skipped zero-advantage rows); one without a
        gradient anywhere keeps None, as in one process, so Adam skips it exactly as it would.
        """
        params = [p for p in params if p.requires_grad]
        has = torch.tensor([float(p.grad is not None) for p in params])
        has = self.all_reduce(has, op="max")
        live = [p for p, h in zip(params, has.tolist(), strict=True) if h > 0]
        for p in live:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        for bucket in _buckets(live):
            flat = torch.cat([p.grad.reshape(-1) for p in bucket])
            flat = self.all_reduce(flat)
            offset = 0
            for p in bucket:
                n = p.grad.numel()
                p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
                offset += n

    def mean_metrics(self, metrics: Mapping[str, float]) -> dict[str, float]:
        """One metrics row for the step: each key's mean over the ranks that report it (the
        counts in SUMMED_METRICS and `reward/failed/*` are summed). Every rank gets the row, so
        anything decided from it (the KL controller) stays identical across ranks."""
        rows = self.all_gather_object(dict(metrics))
        out: dict[str, float] = {}
        for key in dict.fromkeys(k for row in rows for k in row):
            values = [float(row[key]) for row in rows if key in row]
            summed = key in SUMMED_METRICS or key.startswith("reward/failed/")
            finite = [v for v in values if math.isfinite(v)]
            if summed:
                out[key] = sum(values)
            else:
                out[key] = sum(finite) / len(finite) if finite else values[0]
        return out

    def close(self) -> None:
        """Leave the group if `init_from_env` started it."""
        import torch.distributed as dist

        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def _buckets(params: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    """Consecutive parameters of one dtype and device, at most BUCKET_NUMEL elements a bucket
    (a single larger parameter gets its own)."""
    out: list[list[torch.Tensor]] = []
    size = 0
    for p in params:
        key = (p.grad.dtype, p.grad.device)
        same = out and (out[-1][0].grad.dtype, out[-1][0].grad.device) == key
        if same and size + p.numel() <= BUCKET_NUMEL:
            out[-1].append(p)
            size += p.numel()
            continue
        out.append([p])
        size = p.numel()
    return out
