"""Code that runs inside the spawned gloo ranks of tests/dist (importable by reference, as
torch.multiprocessing.spawn needs), and the launcher itself."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from reasonrl.types import Completion, Sample


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn(fn: Callable[..., None], world_size: int, *args: Any) -> None:
    """Run fn(rank, world_size, *args) in world_size processes joined by gloo on 127.0.0.1.

    Forked, not spawned: the children inherit the imported torch and transformers, which is
    most of a fresh interpreter's start-up (seconds per process on this 2-core machine).
    """
    import torch.multiprocessing as mp

    mp.start_processes(_entry, args=(fn, world_size, free_port(), args), nprocs=world_size,
                       join=True, start_method="fork")  # fmt: skip


def _entry(rank: int, fn: Callable[..., None], world_size: int, port: int, args: tuple) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))  # fmt: skip
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        fn(rank, world_size, *args)
    finally:
        dist.destroy_process_group()


def third_reward(sample: Sample, completion: Completion) -> float:
    """1 when the first response token's id is a multiple of 3: about one group in five of four
    completions has no spread, so dynamic sampling drops and refills groups."""
    return float(bool(completion.token_ids) and completion.token_ids[0] % 3 == 0)


def grads_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


# ----------------------------------------------------------------------------- the checks


def update_batch() -> Any:
    """8 fake rollouts; rows 4..7 (rank 1's shard of 2) have zero advantage, so that rank has
    no active row at all in token-mean mode and must still join the gradient all-reduce."""
    from reasonrl.rl.batching import collate
    from tests.rl.helpers import PAD, fake_rollouts

    prompts, comps = fake_rollouts(8, seed=11)
    adv = torch.tensor([1.0, -0.5, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0])
    return collate(prompts, comps, adv, pad_id=PAD)


def update_cfg(agg: str) -> Any:
    from reasonrl.config import RLConfig

    return RLConfig.model_validate({
        "rollout": {"n": 2, "prompts_per_step": 4, "max_new_tokens": 16},
        "algo": {"agg": agg, "micro_batch_size": 2},
        "optim": {"grad_clip": None},
        "model": {"dtype": "fp32"},
    })  # fmt: skip


def update_grads(batch: Any, agg: str, dp: Any = None) -> dict[str, torch.Tensor]:
    from reasonrl.rl.update import policy_update
    from tests.rl.helpers import tiny_model

    model = tiny_model(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: only the gradient matters
    policy_update(model, opt, batch, update_cfg(agg), dp=dp)
    return grads_of(model)


def adjust(batch: Any, agg: str) -> Any:
    """seq-mean case: give rank 1's rows advantages too (both ranks active)."""
    if agg == "token_mean":
        return batch
    adv = batch.advantages.clone()
    adv[4:] = torch.tensor([0.7, 0.0, -1.2, 0.4])[:, None] * (batch.response_mask[4:] > 0)
    return batch.with_fields(advantages=adv)


def step_state(recipe: Path, dp: Any = None) -> Any:
    from reasonrl.config import load_config
    from reasonrl.rl.build import build_state

    state = build_state(load_config(recipe), reward_fn=third_reward)
    if dp is not None:
        state.dp = dp
        dp.broadcast_module(state.model)
    return state


def one_step(state: Any) -> dict[str, Any]:
    from reasonrl.rl.step import train_step

    metrics, groups = train_step(state)
    return {"grads": grads_of(state.model), "metrics": metrics,
            "prompts": [list(p) for p in groups.prompt_ids],
            "completions": [[list(c.token_ids) for c in g]
                            for g in groups.completions]}  # fmt: skip


def gradient_checks(rank: int, world_size: int, out: Path, recipe: Path) -> None:
    """Rank `rank`'s gradients: the update on its shard of a fixed batch for each aggregation,
    then a whole train_step with dynamic sampling on the toy task."""
    from reasonrl.dist.group import init_from_env

    dp = init_from_env("cpu")
    assert dp is not None and dp.world_size == world_size
    result: dict[str, Any] = {}
    for agg in ("token_mean", "seq_mean_token_mean"):
        batch = adjust(update_batch(), agg)
        mine = batch.select(torch.tensor(list(dp.shard(batch.input_ids.shape[0]))))
        result[agg] = update_grads(mine, agg, dp)
    result["step"] = one_step(step_state(recipe, dp))
    torch.save(result, out / f"rank{rank}.pt")


def resume_run(rank: int, world_size: int, recipe: Path, extra: list[str] | None = None) -> None:
    """A straight 4-step run, and one stopped after its step-2 checkpoint then resumed."""
    extra = extra or []
    from reasonrl.config import load_config
    from reasonrl.rl.run import train

    class Crash(RuntimeError):
        pass

    class CrashAfter:
        def on_step(self, state: Any, metrics: Any) -> None:
            if state.step == 3:  # the step-2 checkpoint is on disk, step 3 is not
                raise Crash

    train(load_config(recipe, ["trainer.run_name=straight", *extra]), progress=False,
          reward_fn=third_reward)  # fmt: skip
    cfg = load_config(recipe, ["trainer.run_name=killed", *extra])
    with contextlib.suppress(Crash):
        train(cfg, progress=False, reward_fn=third_reward, callbacks=[CrashAfter()])
    train(cfg, resume=True, progress=False, reward_fn=third_reward)


# ----------------------------------------------------------------------------- FSDP2


def shard_grads(shard: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The full gradients of a sharded model (all-gathered), by parameter name."""
    from reasonrl.dist.fsdp import full

    return {n: full(p.grad).detach().clone() for n, p in shard.named_parameters()
            if p.grad is not None}  # fmt: skip


def fsdp_checks(rank: int, world_size: int, out: Path, recipe: Path) -> None:
    """As `gradient_checks`, with the update on an FSDP2 shard of the model: the fixed batch
    for each aggregation (rank 1 has no active row in token-mean: it pads), then a train_step."""
    from reasonrl.dist.fsdp import shard_for_training
    from reasonrl.dist.group import init_from_env
    from reasonrl.rl.build import attach_shard
    from reasonrl.rl.update import policy_update
    from tests.rl.helpers import tiny_model

    dp = init_from_env("cpu")
    assert dp is not None
    result: dict[str, Any] = {}
    for agg in ("token_mean", "seq_mean_token_mean"):
        batch = adjust(update_batch(), agg)
        mine = batch.select(torch.tensor(list(dp.shard(batch.input_ids.shape[0]))))
        shard = shard_for_training(tiny_model(0))
        opt = torch.optim.SGD(shard.parameters(), lr=0.0)
        result[agg] = {"metrics": policy_update(shard, opt, mine, update_cfg(agg), dp=dp),
                       "grads": shard_grads(shard)}  # fmt: skip
    state = step_state(recipe, dp)
    attach_shard(state)
    step = one_step(state)
    step["grads"] = shard_grads(state.shard)
    step["weights"] = {n: p.detach().clone() for n, p in state.model.named_parameters()}
    step["local_numel"] = sum(p.to_local().numel() for p in state.shard.parameters())
    result["step"] = step
    torch.save(result, out / f"fsdp{rank}.pt")


def fsdp_resume_run(rank: int, world_size: int, recipe: Path) -> None:
    resume_run(rank, world_size, recipe, ["trainer.parallel=fsdp2"])
