"""One EGGROLL generation (arXiv 2511.16652) in place of an RL step, on the RL run's TrainState:

    B prompts -> for each member i of N: weights base + E_i (perturb.py), rollouts through the
    engine, fitness_i = mean task reward -> shaped fitness -> W += lr sqrt(N) (1/N) sum f_i E_i

All members see the same B prompts and, when sampling, the same sampling seed (common random
numbers: fitness differences come from the weights, not from the dice). Greedy decoding is the
default, as in the paper's LLM script (temperature 0). No gradient is computed: the model is
only run forward, and the optimizer that `build_state` makes is never stepped (`optim.lr`,
betas, weight decay and clipping are unused); `optim.warmup_steps` / `optim.schedule` scale
`es.lr` through the same schedule as RL.

Metrics: es/fitness_mean, es/fitness_std, es/fitness_max, es/update_norm (Frobenius norm of all
weight changes), es/lr, es/noise_bytes (one member's perturbation, measured), es/update_noise_bytes
(the most noise held at once while updating), reward/* over every member's rollouts.
"""

from __future__ import annotations

import math

import torch

from reasonrl.algos.es import shape_fitness
from reasonrl.data.templates import PromptFormat, prompt_token_ids
from reasonrl.es.perturb import (
    MemberNoise,
    NoiseSpec,
    Target,
    base_copy,
    es_targets,
    hooked,
    in_place,
)
from reasonrl.es.update import es_deltas
from reasonrl.rl.build import lr_schedule
from reasonrl.rl.rollouts import Groups, score_groups
from reasonrl.rl.state import TrainState
from reasonrl.rl.step import sync_weights
from reasonrl.rollout.base import SamplingParams
from reasonrl.runtime.schedule import advance
from reasonrl.runtime.timing import Timer


def apply_mode(state: TrainState) -> str:
    """`es.apply` resolved: auto = hook where the engine runs the model's modules (hf)."""
    mode = state.cfg.es.apply
    if mode == "auto":
        return "hook" if state.engine_name == "hf" else "inplace"
    if mode == "hook" and state.engine_name != "hf":
        raise ValueError(
            f"es.apply=hook needs rollout.engine=hf (the engine is {state.engine_name}: it does "
            "not run the model's nn.Linear modules, so hooks would not be seen)"
        )
    return mode


def member_params(state: TrainState) -> SamplingParams:
    """Sampling of every member in this generation (same seed for all: common random numbers)."""
    cfg, es = state.cfg, state.cfg.es
    return SamplingParams(
        n=es.samples,
        max_new_tokens=cfg.rollout.max_new_tokens,
        temperature=cfg.rollout.temperature,
        top_p=cfg.rollout.top_p,
        top_k=cfg.rollout.top_k,
        greedy=es.greedy,
        seed=cfg.trainer.seed * 1_000_003 + state.step,
    )


def es_step(state: TrainState) -> tuple[dict[str, float], Groups]:
    """One ES generation; returns its metrics and the population's scored rollouts (groups of
    N * es.samples completions per prompt, member-major within a prompt)."""
    cfg, es, timer = state.cfg, state.cfg.es, Timer()
    targets: list[Target] = es_targets(state.model)
    spec = NoiseSpec(seed=cfg.trainer.seed, generation=state.step, rank=es.rank,
                     sigma=es.sigma, noise=es.noise)  # fmt: skip
    mode = apply_mode(state)
    samples = state.source.next(cfg.rollout.prompts_per_step)
    fmt = PromptFormat.from_config(cfg)
    prompt_ids = [prompt_token_ids(state.tokenizer, s, fmt) for s in samples]
    params = member_params(state)
    base = base_copy(targets) if mode == "inplace" else []
    fitness = torch.zeros(es.population)
    completions: list[list] = [[] for _ in samples]
    rewards: list[list] = [[] for _ in samples]
    scores = []
    noise_bytes = 0
    with timer("rollout"):
        for i in range(es.population):
            noise = MemberNoise(targets, spec, i)
            noise_bytes = max(noise_bytes, noise.nbytes)
            ctx = hooked(targets, noise) if mode == "hook" else in_place(targets, noise, base)
            with timer("generate"), ctx:
                out = state.engine.generate(prompt_ids, params)
            with timer("reward"):
                r, s = score_groups(state, samples, out)
            fitness[i] = float(torch.nan_to_num(s, nan=0.0).mean())  # not applicable counts 0
            for b in range(len(samples)):
                completions[b] += out[b]
                rewards[b] += r[b]
            scores.append(s)
            del noise
    del base
    shaped = shape_fitness(fitness, es.shaping)
    lr = es.lr * lr_schedule(cfg)(state.step)
    metrics: dict[str, float] = {}
    with timer("update"):
        deltas, update_bytes = es_deltas(targets, spec, shaped, lr=lr)
        norm = math.sqrt(sum(float(d.double().pow(2).sum()) for d in deltas))
        if math.isfinite(norm):
            with torch.no_grad():
                for t, d in zip(targets, deltas, strict=True):
                    t.module.weight.add_(d)
        else:  # counted by the run's non-finite streak, as a skipped RL update is
            metrics["actor/nonfinite_grad"] = 1.0
        advance(state.scheduler)
    with timer("sync"):
        sync_weights(state)
    state.step += 1
    groups = Groups(
        samples=list(samples),
        prompt_ids=prompt_ids,
        completions=completions,
        rewards=rewards,
        scores=torch.cat(scores, dim=1),
        generated_groups=len(samples) * es.population,
        skipped_prompts=int(getattr(state.source, "skipped", 0)),
    )
    metrics |= groups.metrics() | timer.metrics()
    metrics |= {
        "es/fitness_mean": float(fitness.mean()),
        "es/fitness_std": float(fitness.std(unbiased=False)),
        "es/fitness_max": float(fitness.max()),
        "es/update_norm": norm,
        "es/lr": lr,
        "es/noise_bytes": float(noise_bytes),
        "es/update_noise_bytes": float(update_bytes),
        "perf/gen_tokens_per_s": groups.gen_tokens / max(timer.seconds("generate"), 1e-9),
        "perf/step_s": timer.total(),
    }
    return metrics, groups
