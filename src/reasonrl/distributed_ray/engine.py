"""`RayEngine`: the `RolloutEngine` protocol over N rollout actors.

Split: a call's B prompts go to the actors by whole groups (a prompt and its G samples stay on
one actor), in contiguous blocks of the distinct prompts (`dist.shard.shard_range`), and every
copy of a repeated prompt goes with its first one. The samplers key each sequence by (seed,
prompt tokens, how many identical prompts precede it in the call, sample index)
(`rollout.sampling.sequence_keys`), so with repeats kept together every sequence gets the key
it has in one engine call, and the completions are those of the local backend's engine with
the same weights. The results are put back in prompt order.

Weight sync: `load_weights` puts one copy of the weights in the object store (`ray.put`) and
every actor loads it with its version; `generate` checks that every actor answered with the
version last published (`versions` holds it per call), so each completion's version is known.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch

from reasonrl.dist.shard import shard_range
from reasonrl.rollout.base import SamplingParams
from reasonrl.types import Completion


def split_groups(prompt_ids: Sequence[Sequence[int]], workers: int) -> list[list[int]]:
    """Prompt indices per worker: contiguous blocks of the distinct prompts (first-occurrence
    order), each prompt's repeats with it; concatenating the blocks need not give 0..B-1."""
    first: dict[tuple[int, ...], int] = {}
    for ids in prompt_ids:
        first.setdefault(tuple(ids), len(first))
    keys = list(first)
    owner = {keys[j]: w for w in range(workers) for j in shard_range(len(keys), w, workers)}
    parts: list[list[int]] = [[] for _ in range(workers)]
    for i, ids in enumerate(prompt_ids):
        parts[owner[tuple(ids)]].append(i)
    return parts


class RayEngine:
    """Generation on the rollout actors (module docstring); `actors` are their handles."""

    def __init__(self, actors: Sequence[Any]) -> None:
        if not actors:
            raise ValueError("trainer.ray.rollout_workers must be >= 1")
        self.actors = list(actors)
        self.version: int | None = None  # of the weights the actors hold
        self.versions: list[int] = []  # the version that sampled each prompt of the last call

    def load_weights(
        self, named_tensors: Iterable[tuple[str, torch.Tensor]], version: int | None = None
    ) -> None:
        """One `ray.put` of the weights; every actor loads them as `version` (None: the last
        version + 1, for callers that do not count, e.g. the async producer thread)."""
        import ray

        if version is None:
            version = 0 if self.version is None else self.version + 1
        weights = {n: t.detach().to("cpu", copy=True) for n, t in named_tensors}
        ref = ray.put(weights)
        ray.get([a.load.remote(ref, version) for a in self.actors])
        self.version = version

    def generate(
        self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams
    ) -> list[list[Completion]]:
        import ray

        parts = split_groups(prompt_ids, len(self.actors))
        calls = [(part, actor.generate.remote([list(prompt_ids[i]) for i in part], params))
                 for part, actor in zip(parts, self.actors, strict=True) if part]  # fmt: skip
        out: list[list[Completion] | None] = [None] * len(prompt_ids)
        versions = [-1] * len(prompt_ids)
        for (part, _), (version, groups) in zip(calls, ray.get([c for _, c in calls]),
                                                strict=True):  # fmt: skip
            if version != self.version:
                raise RuntimeError(f"a rollout worker sampled with weights v{version}, "
                                   f"v{self.version} was published")  # fmt: skip
            for i, group in zip(part, groups, strict=True):
                out[i], versions[i] = group, version
        self.versions = versions
        return [g for g in out if g is not None]
