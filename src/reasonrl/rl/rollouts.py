"""Sampling and scoring groups of completions, with DAPO dynamic sampling.

Dynamic sampling (arXiv 2503.14476): a group whose rewards are all equal has zero advantage and
teaches nothing, yet Adam still takes a full-size step from the few informative groups left. With
`algo.dynamic_sampling`, such groups are dropped and new prompts are drawn until the step has
`prompts_per_step` informative groups or `max_rounds` generations were spent.

Every reward call goes through `call_reward` with `reward.timeout_s`: a reward that raises, hangs,
returns a non-number (a string is never coerced) or a non-finite value fails that one sample
(score 0, `reward/failed`, and `reward/failed/<cause>` per cause: "timeout", "bad_type",
"non_finite", or the exception's class, "SystemExit" included).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch

from reasonrl.data.templates import PromptFormat, prompt_token_ids  # one for SFT, RL and eval
from reasonrl.rewards.api import is_correct
from reasonrl.rewards.batch import call_reward_batch
from reasonrl.rollout.base import SamplingParams
from reasonrl.types import Completion, RewardResult, Rollout, Sample

if TYPE_CHECKING:
    from reasonrl.rl.state import TrainState
    from reasonrl.runtime.timing import Timer

MAX_DYNAMIC_ROUNDS = 4


@dataclass
class Groups:
    """B prompts with G scored completions each (row-major flattening: prompt b, completion g).

    `scores` are the RAW rewards (B, G), NaN where the reward was not applicable (None); shaping
    (length penalties) happens later, in `rl.advantage.shaped_scores`, so that dynamic sampling
    and the reward metrics see what the verifier said.
    """

    samples: list[Sample]
    prompt_ids: list[list[int]]
    completions: list[list[Completion]]
    rewards: list[list[RewardResult]]
    scores: torch.Tensor  # (B, G) float32 raw rewards, NaN = not applicable
    generated_groups: int = 0  # groups generated in total (>= B with dynamic sampling)
    rounds: int = 1
    greedy_scores: torch.Tensor | None = None  # (B,) raw reward of a greedy completion (ReMax)
    advantages: torch.Tensor | None = None  # (B*G,) mean advantage per completion, once known
    skipped_prompts: int = 0  # prompts the source dropped as longer than data.max_prompt_tokens

    @property
    def gen_tokens(self) -> int:
        return sum(len(c.token_ids) for group in self.completions for c in group)

    def flat_prompt_ids(self) -> list[list[int]]:
        return [ids for ids, group in zip(self.prompt_ids, self.completions) for _ in group]

    def flat_completions(self) -> list[Completion]:
        return [c for group in self.completions for c in group]

    def rollouts(self) -> list[Rollout]:
        """One record per completion, with its advantage when the step has computed it (NaN,
        for a completion none of whose tokens trained, becomes None)."""
        adv = [None] * self.scores.numel()
        if self.advantages is not None:
            adv = [None if math.isnan(a) else a for a in self.advantages.tolist()]
        rows = [
            (b, s, ids, c, r)
            for b, (s, ids, comps, rews) in enumerate(
                zip(self.samples, self.prompt_ids, self.completions, self.rewards, strict=True)
            )
            for c, r in zip(comps, rews, strict=True)
        ]
        return [
            Rollout(sample=s, prompt_ids=tuple(ids), completion=c, reward=r, group=b, advantage=a)
            for (b, s, ids, c, r), a in zip(rows, adv, strict=True)
        ]

    def applicable(self) -> torch.Tensor:
        """(B, G) bool: the reward applied (its score was not None)."""
        return ~torch.isnan(self.scores)

    def lengths(self) -> torch.Tensor:
        """(B, G) completion lengths in tokens."""
        return torch.tensor([[len(c.token_ids) for c in g] for g in self.completions])

    def correct(self) -> torch.Tensor:
        """(B, G) bool: final answer right (`RewardResult.outcome`; unknown -> score >= 1)."""
        return torch.tensor([[is_correct(r) for r in g] for g in self.rewards], dtype=torch.bool)

    def truncated(self) -> torch.Tensor:
        """(B*G,) bool: True where a completion hit max_new_tokens."""
        return torch.tensor([c.truncated for c in self.flat_completions()], dtype=torch.bool)

    def metrics(self) -> dict[str, float]:
        """Rollout and RAW reward metrics. Not-applicable rewards are counted
        (`reward/not_applicable`) and left out of every mean; failed ones are counted in all
        (`reward/failed`) and per cause (`reward/failed/<error_kind>`, only causes that occur).
        Numeric keys a reward puts in `info` are logged as `reward/<key>` (`info_metrics`)."""
        flat = [r for group in self.rewards for r in group]
        applied = [r for r in flat if r.score is not None]
        failed = [r for r in flat if r.info.get("failed")]
        lengths = self.lengths().float()
        out = {
            "reward/mean": _mean([float(r.score) for r in applied]),  # type: ignore[arg-type]
            "reward/failed": float(len(failed)),
            "reward/not_applicable": float(len(flat) - len(applied)),
            "data/skipped_long_prompts": float(self.skipped_prompts),
            "rollout/len_mean": float(lengths.mean()),
            "rollout/len_max": float(lengths.max()),
            "rollout/truncated_frac": float(self.truncated().float().mean()),
            "rollout/zero_std_frac": float(sum(not informative(row) for row in self.scores))
            / len(self.scores),
            "rollout/groups_generated": float(self.generated_groups),
            "rollout/rounds": float(self.rounds),
        }
        typed = {
            "reward/outcome": [r.outcome for r in applied],
            "reward/verified_correct": [r.verified for r in applied],
            "reward/process": [r.info.get("process") for r in applied],  # synth diagnostic
        }
        for key, values in typed.items():
            known = [float(v) for v in values if v is not None]
            if known:
                out[key] = _mean(known)
        for key, value in info_metrics(applied).items():
            out.setdefault(key, value)  # never overwrites a metric above (reward/mean, ...)
        for r in failed:
            key = f"reward/failed/{r.info.get('error_kind') or 'unknown'}"
            out[key] = out.get(key, 0.0) + 1.0
        if self.greedy_scores is not None:
            out["reward/greedy_mean"] = float(self.greedy_scores.nanmean())
        return out


# info keys that call_reward itself writes on a failure (counted as reward/failed/<kind>)
FAILURE_KEYS = frozenset({"failed", "error", "error_kind"})


def _number(value: object) -> float | None:
    if not isinstance(value, numbers.Real):
        return None  # strings, None, lists are not numbers
    x = float(value)  # bools count 0/1 (a rate); numpy scalars are numbers.Real too
    return x if math.isfinite(x) else None


def info_metrics(results: Sequence[RewardResult]) -> dict[str, float]:
    """`reward/<key>`: the mean of each numeric `RewardResult.info[key]` over the results that
    report it (ints, floats and bools as 0/1; non-finite values and the failure keys
    `failed`, `error`, `error_kind` of `call_reward` are skipped). A
    dict of numbers one level down, such as combine's `info["components"]`, gives
    `reward/<key>/<name>`."""
    values: dict[str, list[float]] = {}
    for r in results:
        for key, value in r.info.items():
            if key in FAILURE_KEYS:
                continue
            if isinstance(value, dict):
                for name, sub in value.items():
                    x = _number(sub)
                    if x is not None:
                        values.setdefault(f"reward/{key}/{name}", []).append(x)
            elif (x := _number(value)) is not None:
                values.setdefault(f"reward/{key}", []).append(x)
    return {key: _mean(v) for key, v in values.items()}


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def informative(scores: torch.Tensor) -> bool:
    """A group teaches something when at least two applicable rewards differ (DAPO's filter,
    applied to the raw rewards: a length penalty alone must not make a group look informative)."""
    ok = scores[~torch.isnan(scores)]
    return len(ok) >= 2 and bool(ok.max() > ok.min())


def _score(
    state: TrainState, samples: Sequence[Sample], completions: list[list[Completion]]
) -> tuple[list[list[RewardResult]], torch.Tensor]:
    timeout_s = state.cfg.reward.timeout_s
    # one call for the whole batch when the reward has a `batch` hook (a learned reward model)
    flat_s = [s for s, group in zip(samples, completions, strict=True) for _ in group]
    flat = call_reward_batch(state.reward_fn, flat_s, [c for g in completions for c in g],
                             timeout_s=timeout_s)  # fmt: skip
    sizes = [len(g) for g in completions]
    rewards = [flat[sum(sizes[:b]) : sum(sizes[: b + 1])] for b in range(len(sizes))]
    nan = float("nan")
    scores = torch.tensor(
        [[nan if r.score is None else r.score for r in group] for group in rewards],
        dtype=torch.float32,
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
        fmt = PromptFormat.from_config(state.cfg)  # data.template / system_prompt / instruction
        prompt_ids = [prompt_token_ids(state.tokenizer, s, fmt) for s in samples]
        with timer("generate"):  # each refill round gets its own seed
            round_params = replace(
                params, seed=None if params.seed is None else params.seed + 7919 * rounds
            )
            completions = state.engine.generate(prompt_ids, round_params)
        with timer("reward"):
            rewards, scores = _score(state, samples, completions)
        rounds, generated = rounds + 1, generated + len(samples)
        observe = getattr(state.source, "observe", None)  # samplers' statistics: RAW rewards
        if callable(observe):
            correct = torch.tensor([[is_correct(r) for r in g] for g in rewards])
            observe(samples, scores, correct, step=state.step)
        last = list(zip(samples, prompt_ids, completions, rewards, scores, strict=True))
        kept += [g for g in last if not dynamic or informative(g[4])]
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
        skipped_prompts=int(getattr(state.source, "skipped", 0)),
    )


def greedy_baseline(state: TrainState, groups: Groups, params: SamplingParams) -> torch.Tensor:
    """ReMax's baseline: the raw reward of one greedy completion per prompt, (B,); NaN where the
    reward does not apply (arXiv 2310.10505, Alg. 1)."""
    greedy = replace(params, n=1, greedy=True)
    completions = state.engine.generate(groups.prompt_ids, greedy)
    _, scores = _score(state, groups.samples, completions)
    return scores[:, 0]
