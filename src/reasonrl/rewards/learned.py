"""A learned reward: a trained reward model (`reasonrl rm`) scoring rollouts, batched.

    reward = LearnedReward(rm, tokenizer, encode=..., verifiable=strict, combine="gated")
    reward.batch(samples, completions)   # one RM forward pass (chunked) for the whole batch
    reward(sample, completion)           # the same, for one

In RL (`reward.kind: learned`, settings `reward.learned_*`) the loop calls `batch` once per
rollout batch (`rewards.batch.call_reward_batch`), so the RM runs once per batch, not per sample.

Score of a completion y of prompt x, with raw RM score s = r_phi(x, y):
- running normalisation (`normalize=True`): z = (s - mu) / (sigma + 1e-6), mu and sigma the
  running mean and std (Welford, every score seen so far, this batch included: the batch's
  scores update the moments BEFORE they are normalised); else z = s;
- `combine="none"`: z;
- `combine="weighted"`: weight * z + (1 - weight) * v, v the verifiable reward's score;
- `combine="gated"`: sigmoid(z) if the verifiable reward counts y as correct (`is_correct`),
  else 0 (the verifier stays the hard constraint; the RM only ranks among correct answers).
The result carries the verifiable reward's `answer`, `outcome` and `verified` (so evaluation
and the strict metrics still see the truth) and info `learned` (s) and `learned_norm` (z): the
gap between `reward/learned` and the strict reward over training is the reward-hacking signal.
A `monitor` reward (RL on the synthetic task: its strict reward) is scored beside the RM and
never enters the score: info `strict` (logged `reward/strict`), and with combine="none" its
answer/outcome/verified ride along, so training on the RM alone still logs the truth.

Per-sample and batched calls give the same scores when normalisation is off (or `frozen`);
with it on, the moments depend on how the scores arrive (one batch vs one by one).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

from reasonrl.models.reward_model import RewardModel, load_reward_model, score_sequences
from reasonrl.rewards.api import call_reward, is_correct
from reasonrl.types import Completion, RewardResult, Sample

Combine = Literal["none", "weighted", "gated"]
Encode = Callable[[Sample, Completion], list[int]]


class RunningMoments:
    """Running mean and (population) std of every value added (Welford / Chan's merge)."""

    def __init__(self) -> None:
        self.count, self.mean, self.m2 = 0, 0.0, 0.0

    def update(self, values: Sequence[float]) -> None:
        for x in values:
            self.count += 1
            delta = x - self.mean
            self.mean += delta / self.count
            self.m2 += delta * (x - self.mean)

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.count) if self.count else 1.0

    def state_dict(self) -> dict[str, float]:
        return {"count": self.count, "mean": self.mean, "m2": self.m2}


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


class LearnedReward:
    """The learned reward (module docstring). `encode(sample, completion)` gives the token ids
    the RM reads: the prompt as the run renders it, then the completion's tokens."""

    def __init__(
        self,
        rm: RewardModel,
        tokenizer: Any,
        *,
        encode: Encode,
        normalize: bool = True,
        combine: Combine = "none",
        weight: float = 1.0,
        verifiable: Callable[[Sample, Completion], object] | None = None,
        batch_size: int = 64,
        monitor: Callable[[Sample, Completion], object] | None = None,
    ) -> None:
        if combine != "none" and verifiable is None:
            raise ValueError(f"combine={combine!r} needs a verifiable reward")
        self.rm, self.tokenizer, self.encode = rm, tokenizer, encode
        self.normalize, self.combine, self.weight = normalize, combine, weight
        self.verifiable, self.batch_size, self.monitor = verifiable, batch_size, monitor
        self.moments = RunningMoments()
        self.frozen = False  # True: the moments stop updating (evaluation)
        self.__name__ = "learned"

    def raw_scores(
        self, samples: Sequence[Sample], completions: Sequence[Completion]
    ) -> list[float]:
        """r_phi(x, y) of each aligned pair, `batch_size` sequences per forward."""
        seqs = [self.encode(s, c) for s, c in zip(samples, completions, strict=True)]
        pad = self.tokenizer.pad_token_id
        return score_sequences(self.rm, seqs, pad_id=pad, batch_size=self.batch_size).tolist()

    def batch(
        self, samples: Sequence[Sample], completions: Sequence[Completion]
    ) -> list[RewardResult]:
        """One result per aligned (sample, completion); the RM runs once over all of them."""
        raw = self.raw_scores(samples, completions)
        if self.normalize and not self.frozen:
            self.moments.update(raw)
        out = []
        for s, c, x in zip(samples, completions, raw, strict=True):
            z = (x - self.moments.mean) / (self.moments.std + 1e-6) if self.normalize else x
            v = call_reward(self.verifiable, s, c) if self.verifiable is not None else None
            if self.combine == "weighted":
                score = self.weight * z + (1 - self.weight) * float(v.score or 0.0)  # type: ignore[union-attr]
            elif self.combine == "gated":
                score = _sigmoid(z) if v is not None and is_correct(v) else 0.0
            else:
                score = z
            info = {"learned": x, "learned_norm": z}
            if self.monitor is not None:
                m = call_reward(self.monitor, s, c)
                info["strict"] = float(m.score or 0.0)  # type: ignore[union-attr]
                v = m if v is None else v
            if v is None:
                out.append(RewardResult(score, info))
            else:
                info["verifiable"] = float(v.score or 0.0)
                out.append(RewardResult(score, info, answer=v.answer, outcome=v.outcome,
                                        verified=v.verified))  # fmt: skip
        return out

    def __call__(self, sample: Sample, completion: Completion) -> RewardResult:
        return self.batch([sample], [completion])[0]


def load_learned_reward(path: str, *, device: str = "cpu", **kwargs: Any) -> LearnedReward:
    """A `LearnedReward` on the reward model saved at `path` (`models.reward_model`)."""
    rm, tokenizer = load_reward_model(path, device=device)
    return LearnedReward(rm, tokenizer, **kwargs)


__all__ = ["LearnedReward", "RunningMoments", "load_learned_reward"]
