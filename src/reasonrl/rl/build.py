"""Config -> components: the model, optimizer and schedule, rollout engine, prompt source and
reward of a run, gathered into a `TrainState`. Each `make_*` is the one place its choice is made."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch

from reasonrl.algos.kl import AdaptiveKLController, FixedKLController
from reasonrl.config import RLConfig
from reasonrl.data.sources import ListSource, PromptSource, SynthSource
from reasonrl.models.io import load_policy
from reasonrl.rewards.api import RewardFn
from reasonrl.rl.state import TrainState
from reasonrl.rollout.base import RolloutEngine
from reasonrl.runtime.schedule import lr_factor
from reasonrl.runtime.seeding import seed_everything
from reasonrl.types import Completion, RewardResult, Sample


def lr_schedule(cfg: RLConfig) -> Callable[[int], float]:
    """`LambdaLR` factor: linear warm-up, then constant or cosine decay to 0 over trainer.steps."""
    warm, total = cfg.optim.warmup_steps, cfg.trainer.steps
    cosine = cfg.optim.schedule == "cosine"
    return lambda step: lr_factor(
        step, (step - warm) / max(1, total - warm), warmup_steps=warm, cosine=cosine
    )


def make_engine(cfg: RLConfig, model: torch.nn.Module, tokenizer: object) -> RolloutEngine:
    """The rollout engine named by `rollout.engine` (`reasonrl.rollout.registry.ENGINES`)."""
    from reasonrl.models.io import resolve_policy_path
    from reasonrl.rollout.registry import EngineArgs, create_engine

    args = EngineArgs(
        model_path=str(resolve_policy_path(cfg.model.path)),
        dtype=cfg.model.dtype,
        device=cfg.model.device,
        max_batch_size=cfg.rollout.max_batch_size,
    )
    return create_engine(cfg.rollout.engine, args, model, tokenizer)


def make_source(cfg: RLConfig) -> PromptSource:
    d = cfg.data
    if d.task == "synth":
        return SynthSource(d.ops, contexts=d.contexts, modes=d.modes, seed=d.seed)
    if d.task == "benchmark":
        from reasonrl.data.benchmarks import load_benchmark

        assert d.benchmark is not None  # guaranteed by DataConfig validation
        return ListSource(load_benchmark(d.benchmark, d.data_dir), seed=d.seed)
    from reasonrl.data.loaders import load_any

    assert d.train_file is not None  # guaranteed by DataConfig validation
    mapping = {"fields": dict(d.fields)} if d.fields else {}  # else the loader's defaults
    return ListSource(load_any(d.train_file, **mapping), seed=d.seed)


def make_reward(cfg: RLConfig) -> RewardFn:
    """The configured reward as a plain `(sample, completion) -> RewardResult` callable."""
    kind = cfg.reward.kind
    if kind.startswith("synth_"):
        from reasonrl.tasks.synth.reward import synth_reward

        strict = kind == "synth_strict"
        alpha = 1.0 if kind == "synth_outcome" else cfg.reward.alpha

        def reward(sample: Sample, completion: Completion) -> RewardResult:
            return synth_reward(sample, completion.text, alpha=alpha, strict=strict)

        reward.__name__ = kind
        return reward
    from reasonrl.rewards import REWARDS

    return REWARDS[kind]


def make_kl_controller(cfg: RLConfig) -> FixedKLController | AdaptiveKLController:
    """Fixed `algo.kl_coef`, or adapted towards `algo.kl_target` (Ziegler et al. 2019)."""
    a = cfg.algo
    if a.kl_target is None:
        return FixedKLController(a.kl_coef)
    return AdaptiveKLController(a.kl_coef, target=a.kl_target, horizon=a.kl_horizon)


def build_state(cfg: RLConfig, *, reward_fn: RewardFn | None = None) -> TrainState:
    """Model, optimizer, schedule, engine, prompt source and reward from the config.

    `reward_fn` replaces the configured reward: any `(sample, completion) -> float | RewardResult`.
    """
    if cfg.model.threads:
        torch.set_num_threads(cfg.model.threads)
    seed_everything(cfg.trainer.seed)
    # Master weights stay fp32; bf16 is used through autocast in the engine and the update.
    model, tokenizer = load_policy(cfg.model.path, dtype="fp32", device=cfg.model.device)
    model.train()
    o = cfg.optim
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=o.lr, betas=o.betas, weight_decay=o.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_schedule(cfg))
    engine = make_engine(cfg, model, tokenizer)
    ref_model = None
    if cfg.algo.kl_coef > 0:  # the reference model exists only when KL is on
        ref_model = copy.deepcopy(model).eval().requires_grad_(False)
    critic = None
    if cfg.algo.advantage == "gae":  # PPO's learned value model
        from reasonrl.rl.critic import Critic

        critic = Critic.from_config(cfg, device=cfg.model.device)
    return TrainState(
        cfg=cfg,
        model=model,
        tokenizer=tokenizer,
        optimizer=optimizer,
        scheduler=scheduler,
        engine=engine,
        source=make_source(cfg),
        reward_fn=reward_fn or make_reward(cfg),
        ref_model=ref_model,
        critic=critic,
        kl_ctl=make_kl_controller(cfg),
    )
