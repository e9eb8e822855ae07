"""Joining torchrun's process group, lazily.

torchrun (or any launcher that sets the same variables) gives every process RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR and MASTER_PORT. `init_from_env` returns None when WORLD_SIZE is unset
or 1, and then imports nothing of torch.distributed's setup: a single-process run is the
one-process loop, unchanged. Otherwise it joins with gloo on CPU and nccl on CUDA (where each
process uses GPU LOCAL_RANK), or reuses a group someone else already initialised (a test, a
Python caller).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reasonrl.dist.parallel import DataParallel

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def world_size_from_env() -> int:
    """WORLD_SIZE of the launcher, 1 without one."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main() -> bool:
    """Whether this process is rank 0 (True without a launcher): the one that logs and writes."""
    return int(os.environ.get("RANK", "0")) == 0


def default_backend(device: str) -> str:
    """nccl for a CUDA device, gloo for everything else."""
    return "nccl" if device.startswith("cuda") else "gloo"


def init_from_env(device: str = "cpu") -> DataParallel | None:
    """Join (or reuse) the process group the environment describes; None for one process.

    Args:
        device: the trainer's device (`model.device`): picks the backend; with CUDA, process
            LOCAL_RANK is bound to GPU LOCAL_RANK before the group starts.
    """
    if world_size_from_env() <= 1:
        return None
    missing = [v for v in ENV_VARS if v not in os.environ]
    if missing:
        raise RuntimeError(
            f"WORLD_SIZE={world_size_from_env()} but {', '.join(missing)} unset: launch with "
            "torchrun --nproc-per-node N -m reasonrl.cli train RECIPE"
        )
    import torch
    import torch.distributed as dist

    from reasonrl.dist.parallel import DataParallel

    local_rank = int(os.environ["LOCAL_RANK"])
    owned = not dist.is_initialized()
    if owned:
        backend = default_backend(device)
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    return DataParallel(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=local_rank,
        backend=str(dist.get_backend()),
        owns_group=owned,
    )


@contextlib.contextmanager
def quiet_unless_main(dp: DataParallel | None) -> Iterator[None]:
    """Silence stdout on ranks other than 0 (only rank 0 prints the banner and step lines;
    errors on stderr still show from every rank)."""
    if dp is None or dp.is_main:
        yield
        return
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


@contextlib.contextmanager
def rank_session(dp: DataParallel | None) -> Iterator[None]:
    """A run's time in the group: stdout quiet unless rank 0; at exit (errors included) the
    group is left if `init_from_env` started it. Nothing at all for one process."""
    try:
        with quiet_unless_main(dp):
            yield
    finally:
        if dp is not None:
            dp.close()


class Silent:
    """What ranks other than 0 log into: nothing (stands in for the metrics and sample loggers,
    so only rank 0 writes metrics.jsonl, samples.jsonl and tracker runs)."""

    def __init__(self) -> None:
        self.trackers: list = []

    def log(self, *args: object, **kwargs: object) -> dict:
        return {}

    def close(self) -> None:
        pass

    def __enter__(self) -> Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        pass
