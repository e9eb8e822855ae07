"""The Ray backend (`trainer.backend: ray`, docs/scaling.md "Ray"): everything Ray-specific.

    driver (the trainer, `rl.run.train`)      Ray actors
      step t: ray.put(weights v=t) ─────────▶ RolloutWorker x N: load v, generate its groups
              prompts split by whole groups ─▶ (one engine and one policy copy each)
              rewards of the completions ────▶ RewardWorker x R: call_reward_batch off-process
              update (M = 1 trainer rank)

Modules: `cluster` (ray.init / shutdown, the install hint), `workers` (the actor classes),
`engine` (`RayEngine`: the `RolloutEngine` protocol over the rollout actors), `rewards`
(`RayRewards`: a reward whose `batch` hook runs on the reward actors), `rollouts` (the step's
rollout producer and the `setup` hook), `run` (`train` / `train_main`). Ray is imported only
inside functions, so `import reasonrl.distributed_ray` works without it.
"""
