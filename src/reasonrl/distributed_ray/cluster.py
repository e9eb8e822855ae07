"""Starting and stopping Ray for a run; the one place `import ray` is checked."""

from __future__ import annotations

import os
from typing import Any

from reasonrl.config.rl import RayConfig

INSTALL_HINT = "trainer.backend=ray needs Ray: pip install 'reasonrl[ray]'"


def require_ray() -> Any:
    """The `ray` module, or ImportError with the install hint."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return ray


def start(rc: RayConfig) -> bool:
    """Connect to `trainer.ray.address`, or start a local cluster on 127.0.0.1 (no dashboard,
    worker logs not forwarded). Returns True when this call started Ray (so `stop` must end it);
    False when Ray was already initialised in this process (a caller's own cluster)."""
    ray = require_ray()
    if ray.is_initialized():
        return False
    if rc.address is None:
        # the actors import the driver's modules (a reward named by import path, a test's
        # helpers): the local workers inherit this process's environment
        here = os.getcwd()
        path = os.environ.get("PYTHONPATH", "")
        if here not in path.split(os.pathsep):
            os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (here, path) if p)
        ray.init(address="local", num_cpus=rc.num_cpus, include_dashboard=False,
                 log_to_driver=False, _node_ip_address="127.0.0.1",
                 configure_logging=False)  # fmt: skip
    else:
        ray.init(address=rc.address, log_to_driver=False, configure_logging=False)
    return True


def stop(started: bool) -> None:
    """`ray.shutdown()` when `start` started it (its raylet and workers end with it)."""
    if started:
        require_ray().shutdown()


def cpus_per_actor(actors: int) -> float:
    """Logical CPUs each actor reserves: 1, or less when the cluster offers fewer CPUs than
    there are actors (a laptop cluster of 2 CPUs still places 2 rollout + 1 reward actor; Ray's
    CPUs are a scheduling count, not a limit on what a process uses)."""
    total = float(require_ray().cluster_resources().get("CPU", 1.0))
    return min(1.0, total / max(1, actors))
