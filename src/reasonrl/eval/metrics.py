"""Sampling-based evaluation metrics: unbiased pass@k, maj@k, avg@k.

Shapes: P problems, n samples per problem.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem: 1 - C(n - c, k) / C(n, k).

    Computed as 1 - prod_{i = n-c+1}^{n} (1 - k / i), which never forms a binomial coefficient
    (no overflow at n = 1024); equals 1 when n - c < k.

    Reference: Evaluating Large Language Models Trained on Code (Codex), arXiv 2107.03374.

    Args:
        n: samples drawn.
        c: correct samples, 0 <= c <= n.
        k: budget, 1 <= k <= n.

    Returns:
        Probability that at least one of k samples drawn without replacement is correct.
    """
    if not 0 <= c <= n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"pass_at_k needs 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:
        return 1.0
    i = np.arange(n - c + 1, n + 1, dtype=np.float64)
    return float(1.0 - np.prod(1.0 - k / i))


def pass_at_k_array(correct: np.ndarray, k: int) -> float:
    """Mean unbiased pass@k over problems.

    Args:
        correct: (P, n) bool/0-1 array, one row per problem.
        k: budget, 1 <= k <= n.

    Returns:
        Mean pass@k over the P problems.
    """
    arr = np.asarray(correct)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"correct must have shape (P, n) with P > 0, got {arr.shape}")
    n = arr.shape[1]
    counts = arr.astype(bool).sum(axis=1)
    return float(np.mean([pass_at_k(n, int(c), k) for c in counts]))


def avg_at_k(correct: np.ndarray, k: int) -> float:
    """avg@k: mean accuracy over the first k samples of every problem (e.g. AIME avg@32).

    Args:
        correct: (P, n) bool/0-1 array.
        k: samples used, 1 <= k <= n.

    Returns:
        Mean over problems and the first k samples.
    """
    arr = np.asarray(correct)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"correct must have shape (P, n) with P > 0, got {arr.shape}")
    if not 1 <= k <= arr.shape[1]:
        raise ValueError(f"avg_at_k needs 1 <= k <= n={arr.shape[1]}, got k={k}")
    return float(arr[:, :k].astype(np.float64).mean())


def _majority(answers: Sequence[str | None]) -> str | None:
    votes = [a for a in answers if a is not None]
    if not votes:
        return None
    counts = Counter(votes)
    best = max(counts.values())
    # ties go to the answer seen first, so the result does not depend on hash order
    return next(a for a in votes if counts[a] == best)


def maj_at_k(answers: Sequence[Sequence[str | None]], gold: Sequence[str], k: int) -> float:
    """maj@k: fraction of problems whose majority answer over the first k samples is the gold one.

    Unparsed answers (None) do not vote; a problem with no parsed answer counts as wrong. Ties go
    to the answer that appeared first. Answers are compared as given: normalise them first.

    Reference: Self-Consistency, arXiv 2203.11171.

    Args:
        answers: P lists of at least k extracted answers.
        gold: P gold answers.
        k: votes per problem.

    Returns:
        Accuracy of the majority vote.
    """
    if len(answers) != len(gold) or not gold:
        raise ValueError(
            f"need equal, non-zero numbers of answer lists and golds: {len(answers)} vs {len(gold)}"
        )
    if k < 1:
        raise ValueError(f"maj_at_k needs k >= 1, got {k}")
    hits = 0
    for p, (row, g) in enumerate(zip(answers, gold)):
        if len(row) < k:
            raise ValueError(f"problem {p} has {len(row)} answers, fewer than k={k}")
        hits += _majority(row[:k]) == g
    return hits / len(gold)
