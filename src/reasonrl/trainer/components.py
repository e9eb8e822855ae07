"""Config -> components: the prompt source and the reward function of a run."""

from __future__ import annotations

from collections.abc import Callable

from reasonrl.config import RLConfig
from reasonrl.data.samplers import ListSource, PromptSource, SynthSource
from reasonrl.types import Completion, RewardResult, Sample

RewardCallable = Callable[[Sample, Completion], RewardResult]


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


def make_reward(cfg: RLConfig) -> RewardCallable:
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
