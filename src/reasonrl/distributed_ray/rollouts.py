"""The Ray backend's rollout producer and the `setup` hook that installs it on a run.

`max_staleness: 0` (`RayRollouts`): at the start of step t the trainer's weights (LoRA: merged)
are published as version t, unless the actors already hold it; then the step's groups are
sampled by the synchronous producer (`sample_groups`, or the partial-rollout producer) on a
view of the run state whose engine is the `RayEngine`. The prompt source is the trainer's own
object, so checkpoints hold exactly what the local backend's do and resume is exact.

`max_staleness: K >= 1`: the local backend's producer thread (`rl.async_rollouts`) with the
`RayEngine` as its engine: the thread publishes and generates through the actors while the
trainer updates, with the same admission control.

Every group is a `VersionedGroups`: `rollout/staleness_*` and `rollout/version_lag_max` are
logged (0 for K = 0; the local backend's synchronous loop logs none of them).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from reasonrl.distributed_ray.cluster import cpus_per_actor
from reasonrl.distributed_ray.engine import RayEngine
from reasonrl.distributed_ray.rewards import RayRewards
from reasonrl.distributed_ray.workers import RewardWorker, RolloutWorker, remote
from reasonrl.models.lora import engine_weights
from reasonrl.rl.async_rollouts import AsyncRollouts, Produce, make_producer, with_rollouts
from reasonrl.rl.envs import env_factory
from reasonrl.rl.rollouts import Groups

if TYPE_CHECKING:
    from reasonrl.rl.state import TrainState
    from reasonrl.rollout.base import SamplingParams
    from reasonrl.runtime.timing import Timer


class RayRollouts:
    """Synchronous rollouts on the actors (module docstring)."""

    def __init__(self, engine: RayEngine, produce: Produce) -> None:
        self.engine, self.produce = engine, produce

    def next(self, state: TrainState, params: SamplingParams, timer: Timer) -> Groups:
        with timer("publish"):  # perf/time_publish: ray.put + every actor's load
            if self.engine.version != state.step:
                self.engine.load_weights(engine_weights(state.model), version=state.step)
        env_factory(state)  # built once on the trainer's state; the view shares it
        view = replace(state, engine=self.engine, rollouts=None)
        groups = self.produce(view, params, timer, state.step)
        if any(v != state.step for v in self.engine.versions):
            raise RuntimeError(f"step {state.step} was sampled by other weights")
        groups.trained_at = state.step
        return groups

    def close(self) -> None:
        pass  # the actors end with ray.shutdown (distributed_ray.run)


def start_actors(state: TrainState) -> tuple[list[Any], list[Any]]:
    """The rollout and reward actors of `trainer.ray`, each ready (its model loaded)."""
    import ray

    cfg = state.cfg
    rc = cfg.trainer.ray
    cpus = cpus_per_actor(rc.rollout_workers + rc.reward_workers)
    gpus = 1 if cfg.model.device.startswith("cuda") else 0  # an engine per GPU (untested)
    rollout_cls = remote(RolloutWorker, num_cpus=cpus, num_gpus=gpus)
    rollout = [rollout_cls.remote(cfg, rc.worker_threads) for _ in range(rc.rollout_workers)]
    reward: list[Any] = []
    if rc.reward_workers:
        try:  # the driver's reward object itself (a Python `reward_fn=` included) ...
            fn: Any = ray.put(state.reward_fn)
        except Exception:  # ... or, where it cannot be pickled, rebuilt from the config
            fn = None
        reward_cls = remote(RewardWorker, num_cpus=cpus)
        reward = [reward_cls.remote(cfg, fn) for _ in range(rc.reward_workers)]
    ray.get([a.__ray_ready__.remote() for a in rollout + reward])  # fail here, not mid-step
    return rollout, reward


def install(state: TrainState) -> list[Any]:
    """The `setup` hook of `rl.run.train`: actors up, rewards routed to them, and the step's
    rollouts produced on them (`RayRollouts`, or the async producer thread for K >= 1).
    Returns the actors (the run kills them at its end)."""
    cfg = state.cfg
    rollout, reward = start_actors(state)
    engine = RayEngine(rollout)
    if reward:
        state.reward_fn = RayRewards(state.reward_fn, reward, cfg.reward.timeout_s)
    if isinstance(state.rollouts, AsyncRollouts):  # built on a local copy: rebuilt on the actors
        state.rollouts.close()
        state.source = state.rollouts.source
        state.rollouts = None
        with_rollouts(state, engine)  # type: ignore[arg-type]
        return rollout + reward
    state.rollouts = RayRollouts(engine, make_producer(state))
    return rollout + reward
