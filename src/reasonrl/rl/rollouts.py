"""Sampling and scoring groups of completions, with DAPO dynamic sampling.

Dynamic sampling (arXiv 2503.14476): a group whose rewards are all equal has zero advantage and
teaches nothing, yet Adam still takes a full-size step from the few informative groups left. With
`algo.dynamic_sampling`, such groups are dropped and new prompts are drawn until the step has
`prompts_per_step` informative groups or `max_rounds` generations were spent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch

from reasonrl.algos.shaping import overlong_penalty
from reasonrl.data.templates import encode_prompt  # one prompt encoding for SFT, RL and eval
from reasonrl.rewards.api import call_reward
from reasonrl.rollout.base import SamplingParams
from reasonrl.types import Completion, RewardResult, Rollout, Sample

if TYPE_CHECKING:
    from reasonrl.rl.state import TrainState
    from reasonrl.runtime.timing import Timer

MAX_DYNAMIC_ROUNDS = 4


@dataclass
class Groups:
    """B prompts with G scored completions each (row-major flattening: prompt b, completion g)."""

    samples: list[Sample]
    prompt_ids: list[list[int]]
    completions: list[list[Completion]]
    rewards: list[list[RewardResult]]
    scores: torch.Tensor  # (B, G) float, shaped rewards used for advantages
    generated_groups: int = 0  # groups generated in total (>= B with dynamic sampling)
    rounds: int = 1

    @property
    def gen_tokens(self) -> int:
        return sum(len(c.token_ids) for group in self.completions for c in group)

    def flat_prompt_ids(self) -> list[list[int]]:
        return [ids for ids, group in zip(self.prompt_ids, self.completions) for _ in group]

    def flat_completions(self) -> list[Completion]:
        return [c for group in self.completions for c in group]

    def rollouts(self) -> list[Rollout]:
        return [
            Rollout(sample=s, prompt_ids=tuple(ids), completion=c, reward=r, group=b)
            for b, (s, ids, comps, rews) in enumerate(
                zip(self.samples, self.prompt_ids, self.completions, self.rewards, strict=True)
            )
            for c, r in zip(comps, rews, strict=True)
        ]

    def truncated(self) -> torch.Tensor:
        """(B*G,) bool: True where a completion hit max_new_tokens."""
        return torch.tensor([c.truncated for c in self.flat_completions()], dtype=torch.bool)

    def metrics(self) -> dict[str, float]:
        flat = [r for group in self.rewards for r in group]
        lengths = torch.tensor(
            [len(c.token_ids) for c in self.flat_completions()], dtype=torch.float
        )
        out = {
            "reward/mean": float(self.scores.mean()),
            "reward/failed": float(sum(bool(r.info.get("failed")) for r in flat)),
            "rollout/len_mean": float(lengths.mean()),
            "rollout/len_max": float(lengths.max()),
            "rollout/truncated_frac": float(self.truncated().float().mean()),
            "rollout/zero_std_frac": float((self.scores.std(dim=1) == 0).float().mean()),
            "rollout/groups_generated": float(self.generated_groups),
            "rollout/rounds": float(self.rounds),
        }
        for key in ("outcome", "verified_correct", "process"):
            values = [float(r.info[key]) for r in flat if key in r.info]
            if values:
                out[f"reward/{key}"] = sum(values) / len(values)
        return out


def _score(
    state: TrainState, samples: Sequence[Sample], completions: list[list[Completion]]
) -> tuple[list[list[RewardResult]], torch.Tensor]:
    rewards = [
        [call_reward(state.reward_fn, s, c) for c in group]
        for s, group in zip(samples, completions, strict=True)
    ]
    scores = torch.tensor([[r.score or 0.0 for r in group] for group in rewards])
    algo, cfg = state.cfg.algo, state.cfg
    if algo.overlong_buffer:
        lengths = torch.tensor([[len(c.token_ids) for c in g] for g in completions])
        scores = scores + overlong_penalty(
            lengths,
            max_len=cfg.rollout.max_new_tokens,
            buffer=algo.overlong_buffer,
            factor=algo.overlong_factor,
        )
    return rewards, scores


def sample_groups(state: TrainState, params: SamplingParams, timer: Timer) -> Groups:
    """Draw prompts, generate G completions each, score them; refill zero-spread groups if asked."""
    want = state.cfg.rollout.prompts_per_step
    dynamic = state.cfg.algo.dynamic_sampling
    kept: list[tuple[Sample, list[int], list[Completion], list[RewardResult], torch.Tensor]] = []
    last: list = []
    generated = rounds = 0
    while len(kept) < want and rounds < (MAX_DYNAMIC_ROUNDS if dynamic else 1):
        samples = state.source.next(want - len(kept))
        prompt_ids = [encode_prompt(state.tokenizer, s.prompt) for s in samples]
        with timer("generate"):  # each refill round gets its own seed
            round_params = replace(
                params, seed=None if params.seed is None else params.seed + 7919 * rounds
            )
            completions = state.engine.generate(prompt_ids, round_params)
        with timer("reward"):
            rewards, scores = _score(state, samples, completions)
        rounds, generated = rounds + 1, generated + len(samples)
        last = list(zip(samples, prompt_ids, completions, rewards, scores, strict=True))
        kept += [g for g in last if not dynamic or bool(g[4].max() > g[4].min())]
    if not kept:  # every group was uninformative: train on the last round (its update is skipped)
        kept = last
    kept = kept[:want]
    return Groups(
        samples=[g[0] for g in kept],
        prompt_ids=[g[1] for g in kept],
        completions=[g[2] for g in kept],
        rewards=[g[3] for g in kept],
        scores=torch.stack([g[4] for g in kept]),
        generated_groups=generated,
        rounds=rounds,
    )
