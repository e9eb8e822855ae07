"""Data-parallel training with torch.distributed (docs/scaling.md).

`group.init_from_env()` reads torchrun's RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR and joins
the process group (gloo on CPU, nccl on CUDA); it returns None for a single-process run without
touching torch.distributed, so that path is exactly the one-process loop. The `DataParallel`
it returns carries the collectives the RL loop's hooks call (`parallel.py`) and the rules that
split a step's groups between ranks (`shard.py`). Nothing here knows RL: the formulas stay in
`reasonrl.algos`, the hooks in `reasonrl.rl`.
"""

from reasonrl.exports import lazy_exports

__all__ = ["DataParallel", "init_from_env", "is_main", "quiet_unless_main", "shard_range"]
__getattr__, __dir__ = lazy_exports(
    globals(),
    {
        "DataParallel": "reasonrl.dist.parallel",
        "init_from_env": "reasonrl.dist.group",
        "is_main": "reasonrl.dist.group",
        "quiet_unless_main": "reasonrl.dist.group",
        "shard_range": "reasonrl.dist.shard",
    },
)
