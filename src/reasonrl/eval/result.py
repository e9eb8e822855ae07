"""Scored evaluation records and their metrics: per-problem `ProblemRecord`s, `EvalResult`, and
`group_metrics` (pass@k, strict pass@k, maj@k and length statistics of a group of problems)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reasonrl.eval.metrics import maj_at_k, pass_at_k_array


def ks_up_to(n: int) -> list[int]:
    """1, 2, 4, ... up to n, plus n itself when n is not a power of two."""
    ks = [1 << i for i in range(n.bit_length()) if (1 << i) <= n]
    return ks if ks[-1] == n else [*ks, n]


@dataclass
class ProblemRecord:
    """Scored samples of one problem (`answers` normalised to strings; None = unparsed).

    `gold` is the gold answer in the answers' form, None when the reward defines none (no maj@k).
    """

    id: str
    group: str
    gold: str | None
    outcome: list[bool]
    strict: list[bool] | None
    answers: list[str | None]
    lengths: list[int]
    truncated: list[bool]
    texts: list[str] = field(default_factory=list)


@dataclass
class EvalResult:
    """Metrics overall and per group, the settings used, and the per-problem records."""

    overall: dict[str, float]
    per_op: dict[str, dict[str, float]]
    settings: dict[str, Any]
    records: list[ProblemRecord]

    def to_dict(self, *, with_records: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "settings": self.settings,
            "overall": self.overall,
            "per_op": self.per_op,
        }
        if with_records:
            out["records"] = [r.__dict__ for r in self.records]
        return out


def group_metrics(records: Sequence[ProblemRecord], n: int) -> dict[str, float]:
    """pass@k, strict_pass@k, maj@k (k = 1, 2, 4, .., n) and length stats of some problems.

    strict_pass@k only when every problem has strict records; maj@k over the problems that have a
    gold answer, absent when none has (a reward without `gold_answer`)."""
    outcome = np.array([r.outcome for r in records], dtype=bool)  # (P, n)
    out: dict[str, float] = {"problems": float(len(records))}
    for k in ks_up_to(n):
        out[f"pass@{k}"] = pass_at_k_array(outcome, k)
    if all(r.strict is not None for r in records):
        strict = np.array([r.strict for r in records], dtype=bool)
        for k in ks_up_to(n):
            out[f"strict_pass@{k}"] = pass_at_k_array(strict, k)
    voted = [r for r in records if r.gold is not None]
    if voted:
        answers, golds = [r.answers for r in voted], [str(r.gold) for r in voted]
        for k in ks_up_to(n):
            out[f"maj@{k}"] = maj_at_k(answers, golds, k)
    out["mean_tokens"] = float(np.mean([x for r in records for x in r.lengths]))
    out["truncated"] = float(np.mean([x for r in records for x in r.truncated]))
    return out
