"""FSDP2 for the policy update (`trainer.parallel: fsdp2` under torchrun; docs/scaling.md).

The split is the one verl and OpenRLHF use for a colocated rollout engine: the trainer's copy of
the policy is sharded (`torch.distributed.fsdp.fully_shard`: each rank keeps 1/M of every
parameter, its gradient and its AdamW moments), while the rollout engine, the old/reference
log-prob passes, evaluation and checkpoints read a plain full copy (`TrainState.model`), which
gets the updated weights after every optimizer step (`gather_into`, one all-gather per
parameter). Generation therefore never waits on collectives (ranks sample different numbers of
tokens), and a checkpoint is the same Hugging Face directory as a one-process run's.

Exactness: the loss of every rank is divided by the GLOBAL normaliser (`DataParallel.normaliser`),
so the gradient of the batch is the SUM of the ranks' gradients; FSDP2 averages by default, so the
divide factor is set to 1 (`shard_for_training`). Each backward reduce-scatters, so every rank runs
the same number of micro-batches (`rl.update` pads a shorter rank with a zero-weight one).

The optimizer state is saved in the plain `torch.optim` format (`full_optimizer_state`: the
moments all-gathered, parameter ids as in a one-process optimizer over `TrainState.model`), so an
FSDP2 checkpoint resumes under FSDP2 (`load_optimizer_state`), DDP or one process alike.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import torch


def is_dtensor(x: object) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(x, DTensor)


def is_sharded(model: torch.nn.Module) -> bool:
    """Whether `model`'s parameters are FSDP2 shards (`shard_for_training`)."""
    return is_dtensor(next(model.parameters()))


def full(x: torch.Tensor) -> torch.Tensor:
    """The whole tensor of a DTensor (a collective: every rank calls it), x itself otherwise."""
    return x.full_tensor() if is_dtensor(x) else x


def local(x: torch.Tensor) -> torch.Tensor:
    """This rank's shard of a DTensor (no communication), x itself otherwise."""
    return x.to_local() if is_dtensor(x) else x


def _blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The repeated transformer blocks (`model.model.layers` in Hugging Face causal LMs): each is
    one FSDP2 unit, so a forward all-gathers one block at a time."""
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if isinstance(layers, torch.nn.ModuleList):
        return list(layers)
    return [m for m in model.modules() if type(m).__name__.endswith(("DecoderLayer", "Block"))]


def shard_for_training(model: torch.nn.Module) -> torch.nn.Module:
    """A sharded copy of `model` on the default process group (the 1-D mesh of all ranks).

    Every rank must hold the same weights first (`DataParallel.broadcast_module`). Blocks are
    sharded one by one, then the root (embeddings, final norm, head; tied weights stay one
    parameter in the root unit). Gradients are summed over ranks, not averaged.
    """
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import FSDPModule, fully_shard

    device = next(model.parameters()).device
    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    shard = copy.deepcopy(model)
    for block in _blocks(shard):
        fully_shard(block, mesh=mesh)
    fully_shard(shard, mesh=mesh)
    for unit in shard.modules():  # each unit keeps its own setting
        if isinstance(unit, FSDPModule):
            unit.set_gradient_divide_factor(1.0)  # the sum, see the module docstring ...
            # ... as a plain SUM (gloo has no PREMUL_SUM; NCCL's zero-copy path wants SUM)
            unit.set_force_sum_reduction_for_comms(True)
    return shard


@torch.no_grad()
def gather_into(shard: torch.nn.Module, model: torch.nn.Module) -> None:
    """Copy the sharded weights into the plain model, parameter by parameter (all-gathers)."""
    for ps, pm in zip(shard.parameters(), model.parameters(), strict=True):
        pm.copy_(full(ps.detach()))


@torch.no_grad()
def scatter_from(model: torch.nn.Module, shard: torch.nn.Module) -> None:
    """Copy the plain model's weights into the shards (after a checkpoint is loaded into it):
    every rank holds the full tensors already, so each takes its own slice, no communication."""
    from torch.distributed.tensor import distribute_tensor

    for ps, pm in zip(shard.parameters(), model.parameters(), strict=True):
        if is_dtensor(ps):
            part = distribute_tensor(pm.detach(), ps.device_mesh, ps.placements, src_data_rank=None)
            ps.to_local().copy_(part.to_local())
        else:
            ps.copy_(pm)


def full_optimizer_state(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """`optimizer.state_dict()` with every sharded tensor all-gathered: the state dict of a plain
    optimizer over the full parameters (a collective: every rank calls it)."""
    sd = optimizer.state_dict()
    state = {
        pid: {k: full(v).clone() if isinstance(v, torch.Tensor) else v for k, v in s.items()}
        for pid, s in sd["state"].items()
    }
    return {"state": state, "param_groups": sd["param_groups"]}


def load_optimizer_state(optimizer: torch.optim.Optimizer, sd: dict[str, Any]) -> None:
    """Load a plain (full-tensor) optimizer state dict into the optimizer of a sharded model:
    each moment of the shape of its parameter becomes this rank's slice of it."""
    from torch.distributed.tensor import distribute_tensor

    params = [p for group in optimizer.param_groups for p in group["params"]]
    state = {}
    for pid, s in sd["state"].items():
        p = params[int(pid)]
        out = {}
        for k, v in s.items():
            if is_dtensor(p) and isinstance(v, torch.Tensor) and v.shape == p.shape:
                v = distribute_tensor(v.to(p.device), p.device_mesh, p.placements,
                                      src_data_rank=None)  # fmt: skip
            out[k] = v
        state[pid] = out
    optimizer.load_state_dict({"state": state, "param_groups": sd["param_groups"]})


class FullOptimizerState:
    """What `runtime.checkpoint` reads and writes an optimizer through (`state_dict` /
    `load_state_dict`), over the optimizer of a sharded model: the state it writes was gathered
    beforehand on every rank (`gathered`), so rank 0 alone can write it."""

    def __init__(self, optimizer: torch.optim.Optimizer, gathered: dict | None = None) -> None:
        self.optimizer, self.gathered = optimizer, gathered

    def state_dict(self) -> dict[str, Any]:
        if self.gathered is None:
            raise RuntimeError("gather the sharded optimizer state on every rank first")
        return self.gathered

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        load_optimizer_state(self.optimizer, sd)


def local_params(params: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    """Each parameter's local shard (finite checks without communication)."""
    return [local(p) for p in params]
