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
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch

from reasonrl.envs.rollout import episode_metrics, loss_masks, run_episodes, score_episodes
from reasonrl.rewards.api import is_correct
from reasonrl.rewards.batch import call_reward_batch
from reasonrl.rl.envs import decoder, env_factory
from reasonrl.rollout.base import SamplingParams
from reasonrl.types import Completion, RewardResult, Rollout, Sample

if TYPE_CHECKING:
    from reasonrl.dist.parallel import DataParallel
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

    def flat_loss_masks(self) -> list[list[float]] | None:
        """Per-token loss masks (0 on env observation tokens); None for single-turn groups."""
        return loss_masks(self.flat_completions())

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
            # Dr. GRPO's length bias (arXiv 2503.20783) shows as the gap between these two:
            # split by the reward itself (full score >= 1 = rewarded), NaN where a side is empty
            **_split_lengths(lengths, self.scores),
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
        out |= episode_metrics(self.flat_completions())  # env/*: multi-turn episodes only
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


def _split_lengths(lengths: torch.Tensor, scores: torch.Tensor) -> dict[str, float]:
    """Mean length (tokens) of the completions the reward scored in full (score >= 1:
    `rollout/len_correct`) and of the rest (`rollout/len_wrong`); not-applicable (NaN) scores
    are in neither; NaN where a side has no completion."""
    ok = ~torch.isnan(scores)
    right, wrong = ok & (scores >= 1.0), ok & (scores < 1.0)
    return {
        "rollout/len_correct": float(lengths[right].mean()) if right.any() else float("nan"),
        "rollout/len_wrong": float(lengths[wrong].mean()) if wrong.any() else float("nan"),
    }


def informative(scores: torch.Tensor) -> bool:
    """A group teaches something when at least two applicable rewards differ (DAPO's filter,
    applied to the raw rewards: a length penalty alone must not make a group look informative)."""
    ok = scores[~torch.isnan(scores)]
    return len(ok) >= 2 and bool(ok.max() > ok.min())


def score_groups(
    state: TrainState, samples: Sequence[Sample], completions: list[list[Completion]]
) -> tuple[list[list[RewardResult]], torch.Tensor]:
    """Rewards of B groups of completions and their raw scores (B, G), NaN = not applicable
    (one implementation for RL, ReMax's baseline and the ES trainer's fitness)."""
    timeout_s = state.cfg.reward.timeout_s
    # one call for the whole batch when the reward has a `batch` hook (a learned reward model)
    flat_s = [s for s, group in zip(samples, completions, strict=True) for _ in group]
    flat = call_reward_batch(state.reward_fn, flat_s, [c for g in completions for c in g],
                             timeout_s=timeout_s)  # fmt: skip
    sizes = [len(g) for g in completions]
    rewards = [flat[sum(sizes[:b]) : sum(sizes[: b + 1])] for b in range(len(sizes))]
    return rewards, raw_scores(rewards)


def raw_scores(rewards: list[list[RewardResult]]) -> torch.Tensor:
    """(B, G) float32 scores of B groups of rewards, NaN where not applicable."""
    nan = float("nan")
    return torch.tensor(
        [[nan if r.score is None else r.score for r in group] for group in rewards],
        dtype=torch.float32,
    )


def play_groups(
    state: TrainState, samples: Sequence[Sample], params: SamplingParams, timer: Timer | None
) -> tuple[list[list[int]], list[list[Completion]], list[list[RewardResult]], torch.Tensor]:
    """G episodes per sample in the run's env (`state.env`; the single-turn env by default:
    one engine call with n = G, then one batched reward call, as before envs existed);
    returns prompt ids (B), completions and rewards (B lists of G) and raw scores (B, G)."""
    if not samples:
        return [], [], [], raw_scores([])
    factory = env_factory(state)
    episodes = run_episodes(state.engine, factory, samples, params,
                            decode=decoder(state.tokenizer), workers=state.cfg.env.workers,
                            timer=timer)  # fmt: skip
    with timer("reward") if timer is not None else nullcontext():
        rewards = score_episodes(state.reward_fn, factory, samples, episodes,
                                 timeout_s=state.cfg.reward.timeout_s)  # fmt: skip
    prompt_ids = [list(row[0].prompt_ids) for row in episodes]
    completions = [[ep.completion() for ep in row] for row in episodes]
    return prompt_ids, completions, rewards, raw_scores(rewards)


def sample_groups(state: TrainState, params: SamplingParams, timer: Timer) -> Groups:
    """Draw prompts, generate G completions each, score them; refill zero-spread groups if asked."""
    want = state.cfg.rollout.prompts_per_step
    dynamic = state.cfg.algo.dynamic_sampling
    dp = state.dp  # data parallel: every rank draws the same prompts and generates its shard
    kept: list[tuple[Sample, list[int], list[Completion], list[RewardResult], torch.Tensor]] = []
    last: list = []
    generated = rounds = n_kept = 0
    while n_kept < want and rounds < (MAX_DYNAMIC_ROUNDS if dynamic else 1):
        samples = state.source.next(want - n_kept)
        own = range(len(samples)) if dp is None else dp.shard(len(samples))
        mine = samples if dp is None else [samples[i] for i in own]
        # each refill round gets its own seed; episodes run in the env (envs/, rl/envs.py)
        round_params = replace(
            params, seed=None if params.seed is None else params.seed + 7919 * rounds
        )
        prompt_ids, completions, rewards, scores = play_groups(state, mine, round_params, timer)
        scores = scores if dp is None else scores.reshape(len(mine), params.n)  # (0, G) if none
        rounds, generated = rounds + 1, generated + len(mine)
        observe = getattr(state.source, "observe", None)  # samplers' statistics: RAW rewards
        if callable(observe):
            correct = torch.tensor([[is_correct(r) for r in g] for g in rewards])
            if dp is not None:  # every rank's source sees the whole draw: their states stay equal
                correct = dp.gather_rows(correct.reshape(len(mine), params.n).bool())[0]
                observe(samples, dp.gather_rows(scores)[0], correct, step=state.step)
            else:
                observe(samples, scores, correct, step=state.step)
        last = list(zip(mine, prompt_ids, completions, rewards, scores, strict=True))
        if dp is not None:  # tagged (round, position in the draw): the single-process order
            last = [(*g, (rounds, i)) for g, i in zip(last, own, strict=True)]
        kept += [g for g in last if not dynamic or informative(g[4])]
        n_kept = len(kept) if dp is None else sum(dp.all_gather_object(len(kept)))
    if dp is not None:
        kept, last = reshard_groups(dp, kept, last, want)
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


def reshard_groups(dp: DataParallel, kept: list, last: list, want: int) -> tuple[list, list]:
    """Data parallel: every rank's kept groups in the single-process order (by round, then
    position in the draw), cut to `want` and split again into contiguous shards
    (`dist.shard`), so each rank trains on about want / M groups whoever generated them.

    Fewer than M kept groups (dynamic sampling found too few in MAX_DYNAMIC_ROUNDS) are padded
    with the last round's other groups so that no rank is empty: their tokens then count in
    the normaliser, the one case where the step differs from the single-process one.
    """

    def merged(local: list) -> list:
        return sorted((g for part in dp.all_gather_object(local) for g in part),
                      key=lambda g: g[-1])  # fmt: skip

    every_kept, every_last = merged(kept)[:want], merged(last)
    every_kept = every_kept or every_last  # none informative: the last round, as in one process
    tags = {g[-1] for g in every_kept}
    every_kept += [g for g in every_last if g[-1] not in tags][: dp.world_size - len(every_kept)]
    return [every_kept[i][:-1] for i in dp.shard(len(every_kept))], []


def greedy_baseline(state: TrainState, groups: Groups, params: SamplingParams) -> torch.Tensor:
    """ReMax's baseline: the raw reward of one greedy completion per prompt, (B,); NaN where the
    reward does not apply (arXiv 2310.10505, Alg. 1)."""
    greedy = replace(params, n=1, greedy=True)
    _, _, _, scores = play_groups(state, groups.samples, greedy, None)  # in the run's env
    return scores[:, 0]
