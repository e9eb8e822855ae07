"""Partial rollouts (Kimi k1.5, arXiv 2501.12599, Sec. 2.6): a per-iteration token budget.

Each completion may generate `rollout.partial_token_budget` tokens per iteration (step). One
that hits the budget before EOS and before `rollout.max_new_tokens` is unfinished: its group is
carried to the next iteration, where the engine continues it from prompt + its tokens so far
with the NEW weights (an engine continues any prompt, so `generate` on the concatenated ids is a
continuation). Every token keeps the sampler log-prob and the weight version that drew it
(`VersionedGroups.token_versions`); `rl.versions.loss_mask` masks the older segments or leaves
them to token-level IS correction (`rollout.partial_old_segments`).

An iteration keeps `rollout.prompts_per_step` groups in flight: the carried ones first, then new
prompts; it trains on the groups whose G completions all finished (when none did, the carried
rows are continued again with the same weights until one group finishes, so a step is never
empty). Invariants (tests/rl/test_partial.py): concatenated segments are the completion; with a
budget >= max_new_tokens it is the ordinary rollout; a budget of half the longest completion
finishes every completion within two iterations.

Resume: carried groups are not checkpointed; a resumed run draws new prompts instead.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch

from reasonrl.data.templates import PromptFormat, prompt_token_ids
from reasonrl.rewards.api import is_correct
from reasonrl.rewards.batch import call_reward_batch
from reasonrl.rl.versions import VersionedGroups
from reasonrl.rollout.base import SamplingParams
from reasonrl.rollout.completions import make_completion
from reasonrl.types import Completion, FinishReason, Sample

if TYPE_CHECKING:
    from reasonrl.rl.state import TrainState
    from reasonrl.runtime.timing import Timer

# a continuation round's seed offset per completion index, so members with equal prefixes do not
# continue identically (the engine's streams depend on seed, prompt and sample index only)
_MEMBER_SEED = 104_729
_ROUND_SEED = 7_919


@dataclass
class Member:
    """One completion being generated: its tokens, sampler log-probs, versions, and state."""

    tokens: list[int]
    logprobs: list[float]
    versions: list[int]
    reason: FinishReason | None = None  # None while unfinished
    only: Completion | None = None  # the engine's own completion while there is one segment


@dataclass
class Pending:
    """A prompt and its G members; finished when every member is."""

    sample: Sample
    prompt_ids: list[int]
    members: list[Member]

    @property
    def done(self) -> bool:
        return all(m.reason is not None for m in self.members)


class PartialRollouts:
    """`produce(state, params, timer, version) -> VersionedGroups` with a token budget; holds
    the carried groups between calls."""

    def __init__(self, budget: int, *, mask_old_segments: bool) -> None:
        if budget < 1:
            raise ValueError(f"partial token budget must be >= 1, got {budget}")
        self.budget = budget
        self.mask_old_segments = mask_old_segments
        self.carried: list[Pending] = []

    def __call__(
        self, state: TrainState, params: SamplingParams, timer: Timer, version: int
    ) -> VersionedGroups:
        want = state.cfg.rollout.prompts_per_step
        with timer("generate"):
            self._continue(state, params, version, round_=0)
            fresh = self._start(state, params, want - len(self.carried), version)
        groups = self.carried + fresh
        rounds = 1
        while not any(g.done for g in groups):  # nothing to train on: continue, same weights
            self.carried = groups
            with timer("generate"):
                self._continue(state, params, version, round_=rounds)
            rounds += 1
        done = [g for g in groups if g.done]
        self.carried = [g for g in groups if not g.done]
        with timer("reward"):
            out = self._score(state, done)
        out.generated_groups, out.rounds = len(fresh), rounds
        out.carried_groups = len(self.carried)
        return out

    # ------------------------------------------------------------------ generation
    def _budget(self, params: SamplingParams, used: int) -> SamplingParams:
        return replace(params, max_new_tokens=min(self.budget, params.max_new_tokens - used))

    def _start(
        self, state: TrainState, params: SamplingParams, k: int, version: int
    ) -> list[Pending]:
        if k <= 0:
            return []
        samples = state.source.next(k)
        fmt = PromptFormat.from_config(state.cfg)
        prompt_ids = [prompt_token_ids(state.tokenizer, s, fmt) for s in samples]
        completions = state.engine.generate(prompt_ids, self._budget(params, 0))
        out = []
        for s, ids, group in zip(samples, prompt_ids, completions, strict=True):
            members = [Member([], [], []) for _ in group]
            for m, c in zip(members, group, strict=True):
                self._extend(m, c, version, params.max_new_tokens)
            out.append(Pending(s, list(ids), members))
        return out

    def _continue(
        self, state: TrainState, params: SamplingParams, version: int, *, round_: int
    ) -> None:
        """Continue every unfinished member from prompt + its tokens (each member index with its
        own seed)."""
        # one call per (member index, tokens so far): the rows of a call share its budget
        by_index: dict[tuple[int, int], list[tuple[Pending, Member]]] = {}
        for g in self.carried:
            for j, m in enumerate(g.members):
                if m.reason is None:
                    by_index.setdefault((j, len(m.tokens)), []).append((g, m))
        for (j, used), rows in sorted(by_index.items()):
            seed = None if params.seed is None else params.seed + _MEMBER_SEED * (j + 1)
            p = self._budget(replace(params, n=1, seed=seed), used)
            if round_:
                p = replace(p, seed=None if p.seed is None else p.seed + _ROUND_SEED * round_)
            outs = state.engine.generate([g.prompt_ids + m.tokens for g, m in rows], p)
            for (_, m), (c,) in zip(rows, outs, strict=True):
                self._extend(m, c, version, params.max_new_tokens)

    @staticmethod
    def _extend(m: Member, c: Completion, version: int, max_new: int) -> None:
        m.only = c if not m.tokens else None
        m.tokens += c.token_ids
        m.logprobs += c.logprobs
        m.versions += [version] * len(c.token_ids)
        if c.finish_reason == "stop" or len(m.tokens) >= max_new:
            m.reason = c.finish_reason  # EOS/stop, or the real max_new_tokens limit
        # else: the budget cut it: unfinished, continued next iteration

    # ------------------------------------------------------------------ scoring
    def _score(self, state: TrainState, done: list[Pending]) -> VersionedGroups:
        tok = state.tokenizer
        stop_ids = frozenset(getattr(state.engine, "eos_ids", ()) or ())
        completions = [
            [m.only or make_completion(tok, m.tokens, m.logprobs, m.reason or "length",
                                       pad_id=getattr(tok, "pad_token_id", None),
                                       stop_ids=stop_ids)
             for m in g.members]
            for g in done
        ]  # fmt: skip
        samples = [g.sample for g in done]
        flat_s = [s for s, group in zip(samples, completions, strict=True) for _ in group]
        flat = call_reward_batch(state.reward_fn, flat_s, [c for g in completions for c in g],
                                 timeout_s=state.cfg.reward.timeout_s)  # fmt: skip
        size = len(completions[0])  # every group has G = rollout.n members
        rewards = [flat[b * size : (b + 1) * size] for b in range(len(done))]
        nan = float("nan")
        scores = torch.tensor(
            [[nan if r.score is None else r.score for r in group] for group in rewards],
            dtype=torch.float32,
        )
        observe = getattr(state.source, "observe", None)  # samplers' statistics: RAW rewards
        if callable(observe):
            correct = torch.tensor([[is_correct(r) for r in g] for g in rewards])
            observe(samples, scores, correct, step=state.step)
        return VersionedGroups(
            samples=samples,
            prompt_ids=[g.prompt_ids for g in done],
            completions=completions,
            rewards=rewards,
            scores=scores,
            skipped_prompts=int(getattr(state.source, "skipped", 0)),
            token_versions=[[tuple(m.versions) for m in g.members] for g in done],
            mask_old_segments=self.mask_old_segments,
        )
