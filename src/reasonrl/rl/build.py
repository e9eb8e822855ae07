"""Config -> components: the model, optimizer and schedule, rollout engine, prompt source and
reward of a run, gathered into a `TrainState`. Each `make_*` is the one place its choice is made."""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from typing import Any

import torch

from reasonrl.algos.kl import AdaptiveKLController, FixedKLController
from reasonrl.config import ConfigError, RLConfig
from reasonrl.data.loaders import DataError
from reasonrl.data.sources import ListSource, PromptSource, SynthSource, split_long
from reasonrl.data.templates import PromptFormat, prompt_token_ids
from reasonrl.models.io import load_policy
from reasonrl.rewards.api import RewardFn
from reasonrl.rewards.trl_adapter import adapt_reward
from reasonrl.rl.envs import ensure_tool_tokens, with_tool_reward
from reasonrl.rl.plugins import load_import_path
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


def make_engine(
    cfg: RLConfig,
    model: torch.nn.Module,
    tokenizer: object,
    *,
    share_weights: bool = True,
    name: str | None = None,
) -> RolloutEngine:
    """The rollout engine named by `rollout.engine` (`reasonrl.rollout.registry.ENGINES`), or by
    `name` where the caller has already resolved `auto` (`registry.choose_engine`)."""
    from reasonrl.models.io import resolve_policy_path
    from reasonrl.rollout.registry import EngineArgs, create_engine

    args = EngineArgs(
        model_path=str(resolve_policy_path(cfg.model.path)),
        dtype=cfg.model.dtype,
        device=cfg.model.device,
        max_batch_size=cfg.rollout.max_batch_size,
        share_weights=share_weights,
        options=_engine_options(cfg),
    )
    return create_engine(name or cfg.rollout.engine, args, model, tokenizer)


def _engine_options(cfg: RLConfig) -> dict[str, Any]:
    """Engine-specific settings from the config: vLLM's memory share and sleep mode."""
    if cfg.rollout.engine != "vllm":
        return {}
    return {"gpu_memory_utilization": cfg.rollout.vllm_gpu_memory, "enable_sleep_mode": True}


def context_length(model: Any, tokenizer: Any = None) -> int | None:
    """The model's context in tokens (`max_position_embeddings`, else a finite
    `tokenizer.model_max_length`), or None when neither says."""
    n = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if isinstance(n, int) and n > 0:
        return n
    n = getattr(tokenizer, "model_max_length", None)
    return n if isinstance(n, int) and 0 < n < 10**8 else None


def prompt_limit(cfg: RLConfig, context: int | None) -> int | None:
    """`data.max_prompt_tokens`, or (None) the context minus `rollout.max_new_tokens`; None when
    neither is known. Raises ConfigError when prompt + completion cannot fit the context."""
    new, limit = cfg.rollout.max_new_tokens, cfg.data.max_prompt_tokens
    if context is None:
        return limit
    where = f"the context of model.path={cfg.model.path} ({context} tokens)"
    if new >= context:
        raise ConfigError(f"rollout.max_new_tokens={new} leaves no room for a prompt in {where}")
    if limit is not None and limit + new > context:
        raise ConfigError(
            f"data.max_prompt_tokens={limit} + rollout.max_new_tokens={new} exceed {where}; "
            f"lower data.max_prompt_tokens to at most {context - new}"
        )
    return context - new if limit is None else limit


def _drop_long(
    cfg: RLConfig, samples: list[Any], origin: str, tokenizer: Any, limit: int | None
) -> tuple[list[Any], int]:
    """The rows of a file that fit `limit` tokens; the others are refused (data.long_prompts=
    error: ConfigError naming the first) or dropped with one warning naming file and rows."""
    if not samples:
        raise DataError(f"{origin}: no rows (the file is empty)")
    if tokenizer is None or limit is None:
        return samples, 0
    fmt = PromptFormat.from_config(cfg)  # lengths as the rollouts encode the prompts
    kept, long = split_long(samples, lambda s: len(prompt_token_ids(tokenizer, s, fmt)), limit)
    if not long:
        return samples, 0
    limit_key = f"data.max_prompt_tokens={limit}" + (
        "" if cfg.data.max_prompt_tokens else " (model context - rollout.max_new_tokens)"
    )
    shown = ", ".join(f"row {i} (id {s.id}, {n} tokens)" for i, s, n in long[:5])
    more = f" and {len(long) - 5} more" if len(long) > 5 else ""
    if cfg.data.long_prompts == "error" or not kept:
        why = "every row is" if not kept else "data.long_prompts=error and"
        raise ConfigError(
            f"{origin}: {why} longer than {limit_key}: {shown}{more}; raise the limit, shorten "
            "the prompts, or set data.long_prompts=skip"
        )
    print(
        f"reasonrl: warning: {origin}: skipped {len(long)} of {len(samples)} prompts longer than "
        f"{limit_key}: {shown}{more}",
        file=sys.stderr,
    )
    return kept, len(long)


def make_source(
    cfg: RLConfig, tokenizer: Any = None, *, max_prompt_tokens: int | None = None
) -> PromptSource:
    """The prompt source named by `data.source` (`custom_source`), else that of `data.task`.
    With a tokenizer and a limit, prompts of a data.task source longer than `max_prompt_tokens`
    tokens are skipped (counted in the source's `skipped`) or refused (`data.long_prompts`); an
    empty file raises DataError naming it."""
    d = cfg.data
    if d.source is not None:
        return custom_source(cfg, load_import_path(d.source, "data.source"), "data.source")
    limit = max_prompt_tokens if tokenizer is not None else None
    fmt = PromptFormat.from_config(cfg)
    if d.task == "synth":
        fits = None
        if limit is not None:

            def fits(sample: Any) -> bool:
                return len(prompt_token_ids(tokenizer, sample, fmt)) <= limit

        synth = SynthSource(
            d.ops, contexts=d.contexts, modes=d.modes, seed=d.seed, fits=fits,
            magnitude=d.magnitude,
        )  # fmt: skip
        if d.sampler.pool_size:  # a finite pool: per-prompt statistics see repeats
            synth = ListSource(synth.next(d.sampler.pool_size), seed=d.seed)
        return _sampled(cfg, synth)
    if d.task == "benchmark":
        from reasonrl.data.benchmarks import BENCHMARKS, load_benchmark

        assert d.benchmark is not None  # guaranteed by DataConfig validation
        origin = f"data.benchmark={d.benchmark}"
        if d.benchmark in BENCHMARKS:
            origin += f" ({d.data_dir}/{BENCHMARKS[d.benchmark][0]})"
        samples = load_benchmark(d.benchmark, d.data_dir)
    else:
        from reasonrl.data.loaders import load_any

        assert d.train_file is not None  # guaranteed by DataConfig validation
        origin = f"data.train_file={d.train_file}"
        mapping = {"fields": dict(d.fields)} if d.fields else {}  # else the loader's defaults
        samples = load_any(d.train_file, **mapping)
    samples, skipped = _drop_long(cfg, samples, origin, tokenizer, limit)
    return _sampled(cfg, ListSource(samples, seed=d.seed, skipped=skipped, origin=origin))


def _sampled(cfg: RLConfig, base: PromptSource) -> PromptSource:
    """`base` behind the sampler of data.sampler (reasonrl.data.samplers); the default (uniform,
    no pool, no hack filter) is `base` itself: today's prompts and checkpoint layout exactly."""
    from reasonrl.data.samplers import SampledSource

    s = cfg.data.sampler
    if s.kind == "uniform" and not s.pool_size and not s.hack_filter:
        return base
    return SampledSource(base, s, total_steps=cfg.trainer.steps, seed=cfg.data.seed)


SOURCE_METHODS = ("next", "state_dict", "load_state_dict")


def custom_source(cfg: RLConfig, source: object, key: str) -> PromptSource:
    """A prompt source passed in (`train(source=...)`) or named by `data.source`: an object with
    next/state_dict/load_state_dict, or a factory `(cfg) -> such an object`; ConfigError naming
    `key` otherwise."""
    obj = source
    # a class is a factory too (its methods are attributes of it, not of a source yet)
    if isinstance(obj, type) or not all(callable(getattr(obj, m, None)) for m in SOURCE_METHODS):
        if not callable(obj):
            raise ConfigError(f"{key}: {obj!r} is neither a prompt source nor a factory")
        obj = obj(cfg)
    missing = [m for m in SOURCE_METHODS if not callable(getattr(obj, m, None))]
    if missing:
        raise ConfigError(
            f"{key}: the factory returned a {type(obj).__name__} without "
            f"{', '.join(missing)}: a prompt source needs next(k), state_dict(), load_state_dict()"
        )
    return obj  # type: ignore[return-value]


def make_reward(cfg: RLConfig) -> RewardFn:
    """The configured reward as a plain `(sample, completion) -> RewardResult` callable:
    `reward.kind` (a built-in name or an import path), or with kind=combine the weighted sum of
    `reward.components` (`rewards.api.combine_rewards`)."""
    problem = cfg.reward_problem()
    if problem is not None:
        raise ConfigError(problem)
    r = cfg.reward
    if r.kind == "combine":
        from reasonrl.rewards.api import combine_rewards

        parts: dict[str, tuple[RewardFn, float]] = {}
        for i, c in enumerate(r.components):
            name = c.kind if c.kind not in parts else f"{c.kind}#{i}"
            parts[name] = (reward_of_kind(cfg, c.kind, f"reward.components[{i}].kind"), c.weight)
        combined = combine_rewards(parts, timeout_s=r.timeout_s)
        combined.__name__ = "combine"  # type: ignore[attr-defined]
        return combined
    return reward_of_kind(cfg, r.kind, "reward.kind")


def reward_of_kind(cfg: RLConfig, kind: str, key: str) -> RewardFn:
    """One reward by name (synth_*, reasonrl.rewards.REWARDS) or import path (`key` names it in
    errors)."""
    if ":" in kind:  # a TRL-style (prompts, completions, **kw) function is adapted
        return adapt_reward(load_import_path(kind, key))
    if kind in ("learned", "judge"):
        return learned_reward(cfg, kind)
    if kind.startswith("synth_"):
        from reasonrl.rewards.api import with_gold_answer
        from reasonrl.tasks.synth.reward import gold_answer_key, synth_reward

        strict = kind == "synth_strict"
        alpha = 1.0 if kind == "synth_outcome" else cfg.reward.alpha

        def reward(sample: Sample, completion: Completion) -> RewardResult:
            return synth_reward(sample, completion.text, alpha=alpha, strict=strict)

        reward.__name__ = kind
        return with_gold_answer(reward, gold_answer_key)  # maj@k in held-out evaluation
    from reasonrl.rewards import REWARDS

    return REWARDS[kind]


def learned_reward(cfg: RLConfig, kind: str) -> RewardFn:
    """reward.kind=learned (a reward model) or judge (a pairwise judge LM), per reward.learned_*;
    both score a rollout batch at once (their `batch` hook, `rewards.batch`)."""
    r = cfg.reward
    if r.learned_model is None:
        raise ConfigError(f"reward.kind={kind} needs reward.learned_model (a model directory)")
    if kind == "judge":
        from reasonrl.rewards.judge import PairwiseJudge

        lm, tok = load_policy(r.learned_model, device=cfg.model.device)
        return PairwiseJudge(lm, tok, yes=r.judge_tokens[0], no=r.judge_tokens[1])
    from reasonrl.rewards.learned import load_learned_reward

    fmt = PromptFormat.from_config(cfg)
    verifiable = None
    if r.learned_combine != "none":
        verifiable = reward_of_kind(cfg, r.learned_verifiable, "reward.learned_verifiable")
    # the synthetic task's strict reward rides along as `reward/strict` (never in the score)
    monitor = reward_of_kind(cfg, "synth_strict", "reward") if cfg.data.task == "synth" else None
    holder: list[Any] = []  # the RM's own tokenizer renders the prompt (as `reasonrl rm` did)

    def encode(x: Sample, c: Completion) -> list[int]:
        return prompt_token_ids(holder[0].tokenizer, x, fmt) + list(c.token_ids)

    holder.append(load_learned_reward(r.learned_model, device=cfg.model.device, encode=encode,
                                      normalize=r.learned_normalize, combine=r.learned_combine,
                                      weight=r.learned_weight, verifiable=verifiable,
                                      monitor=monitor))  # fmt: skip
    return holder[0]


def make_kl_controller(cfg: RLConfig) -> FixedKLController | AdaptiveKLController:
    """Fixed `algo.kl_coef`, or adapted towards `algo.kl_target` (Ziegler et al. 2019)."""
    a = cfg.algo
    if a.kl_target is None:
        return FixedKLController(a.kl_coef)
    return AdaptiveKLController(a.kl_coef, target=a.kl_target, horizon=a.kl_horizon)


def make_optimizer(
    cfg: RLConfig, model: torch.nn.Module
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW over what trains (all weights, or the LoRA adapter) and its lr schedule."""
    o = cfg.optim
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=o.lr,
        betas=o.betas,
        weight_decay=o.weight_decay,
    )
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lr_schedule(cfg))


def attach_shard(state: TrainState) -> None:
    """trainer.parallel=fsdp2: train a sharded copy of the policy (`dist.fsdp`), with its own
    optimizer and schedule; `state.model` stays the full copy. Call on every rank once the
    ranks hold the same weights and before any checkpoint is restored."""
    from reasonrl.dist.fsdp import shard_for_training

    state.shard = shard_for_training(state.model)
    state.optimizer, state.scheduler = make_optimizer(state.cfg, state.shard)


def build_state(
    cfg: RLConfig, *, reward_fn: RewardFn | None = None, source: object = None
) -> TrainState:
    """Model, optimizer, schedule, engine, prompt source and reward from the config.

    `reward_fn` replaces the configured reward: any `(sample, completion) -> float | RewardResult`;
    `source` the prompt source (an object or a factory, `custom_source`).
    """
    if cfg.model.threads:
        torch.set_num_threads(cfg.model.threads)
    seed_everything(cfg.trainer.seed)
    # Master weights stay fp32; bf16 is used through autocast in the engine and the update.
    model, tokenizer = load_policy(cfg.model.path, dtype="fp32", device=cfg.model.device)
    model.train(cfg.model.train_dropout)  # eval mode = dropout off (the engines sample so)
    ensure_tool_tokens(cfg, tokenizer, model)  # env.kind=tool: <code>/<output> ids (synth)
    # the data next: a prompt-length refusal (data.long_prompts=error) comes before anything else
    limit = prompt_limit(cfg, context_length(model, tokenizer))
    if source is None:
        source = make_source(cfg, tokenizer, max_prompt_tokens=limit)
    else:
        source = custom_source(cfg, source, "train(source=...)")
    ref_model = None
    if cfg.algo.kl_coef > 0:  # the reference model exists only when KL is on
        ref_model = copy.deepcopy(model).eval().requires_grad_(False)
    engine_model = model  # the local engines read the policy's own weights (a free sync) ...
    if cfg.model.lora is not None:  # ... or, with LoRA, a plain copy kept at base + adapter
        from reasonrl.models.lora import apply_lora

        engine_model = copy.deepcopy(model).eval().requires_grad_(False)
        lo = cfg.model.lora
        model = apply_lora(model, r=lo.r, alpha=lo.alpha, dropout=lo.dropout,
                           target_modules=lo.target_modules)  # fmt: skip
        model.train(cfg.model.train_dropout)
    optimizer, scheduler = make_optimizer(cfg, model)
    from reasonrl.rollout.registry import choose_engine

    engine_name = choose_engine(cfg.rollout.engine, engine_model, cfg.model.device)
    engine = make_engine(cfg, engine_model, tokenizer, name=engine_name)
    critic = None
    if cfg.algo.advantage == "gae":  # PPO's learned value model
        from reasonrl.rl.critic import Critic

        critic = Critic.from_config(cfg, device=cfg.model.device)
    state = TrainState(
        cfg=cfg,
        model=model,
        tokenizer=tokenizer,
        optimizer=optimizer,
        scheduler=scheduler,
        engine=engine,
        source=source,
        reward_fn=with_tool_reward(cfg, adapt_reward(reward_fn) or make_reward(cfg)),
        ref_model=ref_model,
        critic=critic,
        kl_ctl=make_kl_controller(cfg),
        engine_name=engine_name,
    )
    from reasonrl.rl.async_rollouts import with_rollouts  # max_staleness / partial rollouts

    # max_staleness >= 1: the producer thread samples from its own copy of the policy
    copy_engine = None
    if cfg.rollout.max_staleness:
        copy_engine = make_engine(cfg, engine_model, tokenizer, share_weights=False,
                                  name=engine_name)  # fmt: skip
    return with_rollouts(state, copy_engine)
