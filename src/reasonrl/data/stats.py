"""Per-prompt statistics of the RAW reward: what the samplers of `reasonrl.data.samplers` read.

For each prompt key (its `Sample.id`) and each difficulty bucket (the sample's `meta[key]`,
e.g. the synthetic `op`) the store keeps:

- `attempts`: completions scored, a plain count;
- `n`, `sum`, `sumsq`: exponentially decayed count, sum and sum of squares of the raw rewards,
  so `success = sum / n` is a running success rate (for a 0/1 reward; the mean reward of a
  graded one) and `var = sumsq / n - success**2` the reward variance. Each new group first
  multiplies the old sums by `decay` (1.0 = the plain mean over the whole run; < 1 follows a
  policy that is improving, which the samplers need: a prompt solved 40 steps ago may be
  unsolved now and vice versa);
- `hacks`: completions whose final answer was right while the raw reward was below 1 (the
  trace was not valid: Kimi k1.5's "easy to hack", arXiv 2501.12599 Sec. 2.1);
- `last`: the RL step that last scored it.

Rewards are the raw verifier scores (never shaped: a length penalty must not make a solved
prompt look unsolved); NaN (reward not applicable) is skipped. State is plain values
(`state_dict`), so a checkpoint resumes bit-identically. At most `max_prompts` prompt entries are
kept; beyond that the least recently seen are forgotten (an endless synthetic stream would
otherwise grow the checkpoint without bound).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from reasonrl.types import Sample

FIELDS = ("attempts", "n", "sum", "sumsq", "hacks", "last")


def _empty() -> list[float]:
    return [0, 0.0, 0.0, 0.0, 0, -1]


def difficulty_of(sample: Sample, key: str) -> float | None:
    """`sample.meta[key]` as a number (the synthetic `op`, any numeric JSONL column), or None."""
    value = sample.meta.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        x = float(value)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def bucket_name(value: float | None) -> str:
    """The bucket key of a difficulty: "3" for 3.0, "2.5" for 2.5, "none" when unknown."""
    if value is None:
        return "none"
    return str(int(value)) if value == int(value) else f"{value:g}"


class PromptStats:
    """Running raw-reward statistics per prompt and per difficulty bucket (see module doc)."""

    def __init__(
        self, *, decay: float = 1.0, difficulty_key: str = "op", max_prompts: int = 100_000
    ) -> None:
        if not 0 < decay <= 1:
            raise ValueError(f"decay must be in (0, 1], got {decay}")
        self.decay, self.difficulty_key, self.max_prompts = decay, difficulty_key, max_prompts
        self.prompts: dict[str, list[float]] = {}
        self.buckets: dict[str, list[float]] = {}

    # -------------------------------------------------------------- updates

    def observe(
        self,
        sample: Sample,
        scores: Sequence[float],
        correct: Sequence[bool] | None = None,
        *,
        step: int,
    ) -> None:
        """Record one scored group: G raw rewards of `sample` (NaN = not applicable) and, when
        known, whether each final answer was right (for `hacks`)."""
        flags = correct or [False] * len(scores)
        pairs = zip(scores, flags, strict=True)
        ok = [(float(s), bool(c)) for s, c in pairs if not math.isnan(float(s))]
        if not ok:
            return
        key = bucket_name(difficulty_of(sample, self.difficulty_key))
        for table, name in ((self.prompts, sample.id), (self.buckets, key)):
            row = table.pop(name, None) or _empty()  # re-inserted: dict order = recency
            d = self.decay
            row[0] += len(ok)
            row[1] = d * row[1] + len(ok)
            row[2] = d * row[2] + sum(s for s, _ in ok)
            row[3] = d * row[3] + sum(s * s for s, _ in ok)
            row[4] += sum(1 for s, c in ok if c and s < 1)
            row[5] = step
            table[name] = row
        while len(self.prompts) > self.max_prompts:  # forget the least recently seen
            del self.prompts[next(iter(self.prompts))]

    # -------------------------------------------------------------- reads

    def row(self, sample: Sample) -> dict[str, float] | None:
        """The prompt's entry as a dict of FIELDS, or None if it was never scored."""
        row = self.prompts.get(sample.id)
        return None if row is None else dict(zip(FIELDS, row, strict=True))

    def success(self, sample: Sample) -> float | None:
        """The prompt's running success rate, or None if never scored."""
        row = self.prompts.get(sample.id)
        return None if row is None else row[2] / row[1]

    def bucket_success(self, sample: Sample) -> float | None:
        """The running success rate of the prompt's difficulty bucket, or None."""
        row = self.buckets.get(bucket_name(difficulty_of(sample, self.difficulty_key)))
        return None if row is None else row[2] / row[1]

    def estimate(self, sample: Sample) -> float | None:
        """The prompt's own success rate once scored, else its bucket's, else None: an
        endless synthetic stream rarely repeats a prompt, so the bucket is what it knows."""
        s = self.success(sample)
        return self.bucket_success(sample) if s is None else s

    def variance(self, sample: Sample) -> float | None:
        row = self.prompts.get(sample.id)
        if row is None:
            return None
        mean = row[2] / row[1]
        return max(0.0, row[3] / row[1] - mean * mean)

    def hack_rate(self, sample: Sample) -> float | None:
        """Fraction of the prompt's completions with a right answer but a raw reward < 1."""
        row = self.prompts.get(sample.id)
        return None if row is None else row[4] / row[0]

    def bucket_table(self) -> dict[str, dict[str, float]]:
        """Per-bucket success, variance and attempts (for metrics and the report)."""
        out = {}
        for name, (attempts, n, s, sq, _hacks, last) in sorted(self.buckets.items()):
            mean = s / n
            out[name] = {"attempts": attempts, "success": mean,
                         "var": max(0.0, sq / n - mean * mean), "last": last}  # fmt: skip
        return out

    # -------------------------------------------------------------- state

    def state_dict(self) -> dict[str, Any]:
        # lists of pairs keep the recency order explicitly (plain values for torch.save)
        return {
            "prompts": [[k, list(v)] for k, v in self.prompts.items()],
            "buckets": [[k, list(v)] for k, v in self.buckets.items()],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.prompts = {str(k): list(v) for k, v in state["prompts"]}
        self.buckets = {str(k): list(v) for k, v in state["buckets"]}
