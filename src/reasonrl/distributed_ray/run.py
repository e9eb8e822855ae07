"""`reasonrl train` with `trainer.backend: ray`: `rl.run.train` with the actors installed.

The driver is the trainer (M = 1 trainer rank under Ray; data-parallel training runs through
torchrun on the local backend, `reasonrl.dist`). Ray is started before the run and shut down
on every way out, so no raylet or worker outlives a run that ends (a SIGKILLed driver's local
cluster is ended by Ray itself: its processes share the driver's fate).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from reasonrl.config import ConfigError, RLConfig
from reasonrl.distributed_ray.cluster import start, stop
from reasonrl.distributed_ray.rollouts import install
from reasonrl.rl import run as rl_run
from reasonrl.rl.plugins import resolve_config
from reasonrl.rl.state import TrainState

T = TypeVar("T")


def check(cfg: RLConfig) -> None:
    """Refuse what the Ray backend does not run (ConfigError, before Ray starts)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError(
            "trainer.backend=ray runs one trainer rank: launch it without torchrun "
            "(data parallel is the local backend's, docs/scaling.md)"
        )
    if cfg.algo.kind == "es":
        raise ConfigError("algo.kind=es runs on the local backend only (trainer.backend=local)")


def train(cfg: Any, **kwargs: Any) -> TrainState:
    """`reasonrl.rl.run.train` on Ray (same arguments; `cfg` may be a recipe path)."""
    cfg = resolve_config(cfg, tuple(kwargs.pop("overrides", ())))
    return _on_ray(cfg, rl_run.train, kwargs)


def train_main(cfg: RLConfig, **kwargs: Any) -> int:
    """`reasonrl.rl.run.train_main` on Ray (same arguments and exit codes)."""
    return _on_ray(cfg, rl_run.train_main, kwargs)


def _on_ray(cfg: RLConfig, loop: Callable[..., T], kwargs: dict[str, Any]) -> T:
    """`loop` with the actors installed; the run's actors are killed at its end on every way
    out (on a cluster it joined, nothing of the run stays), and a cluster it started stops."""
    check(cfg)
    started = start(cfg.trainer.ray)
    actors: list[Any] = []
    try:
        return loop(cfg, setup=lambda state: actors.extend(install(state)), **kwargs)
    finally:
        if actors:
            import ray

            for actor in actors:
                ray.kill(actor)
        stop(started)
