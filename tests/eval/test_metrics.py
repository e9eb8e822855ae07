"""pass@k (unbiased, stable), maj@k, avg@k."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reasonrl.eval.metrics import avg_at_k, maj_at_k, pass_at_k, pass_at_k_array


def test_pass_at_k_hand_values():
    # n = 4, c = 1: pass@1 = 1/4; pass@2 = 1 - C(3,2)/C(4,2) = 1 - 3/6 = 0.5; pass@4 = 1.
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)
    assert pass_at_k(4, 1, 4) == 1.0
    assert pass_at_k(4, 0, 3) == 0.0
    assert pass_at_k(5, 5, 1) == 1.0


def test_pass_at_k_matches_subset_enumeration():
    # brute force: fraction of k-subsets of n samples with at least one correct.
    for n, c, k in [(6, 2, 3), (7, 3, 2), (5, 1, 4)]:
        items = [1] * c + [0] * (n - c)
        subsets = list(itertools.combinations(range(n), k))
        brute = sum(any(items[i] for i in s) for s in subsets) / len(subsets)
        assert pass_at_k(n, c, k) == pytest.approx(brute, abs=1e-12)


def test_pass_at_k_large_n_is_stable():
    # C(1024, 512) overflows float64; the product form does not.
    # 1 - C(1000, 8)/C(1024, 8) computed with exact integers:
    exact = 1 - math.comb(1000, 8) / math.comb(1024, 8)
    assert pass_at_k(1024, 24, 8) == pytest.approx(exact, rel=1e-12)
    v = pass_at_k(1024, 3, 512)
    assert 0.0 < v < 1.0 and math.isfinite(v)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 64).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))))
def test_pass_at_k_monotone_and_k1_is_c_over_n(nc):
    n, c = nc
    assert pass_at_k(n, c, 1) == pytest.approx(c / n, abs=1e-12)
    vals = [pass_at_k(n, c, k) for k in range(1, n + 1)]
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(vals))
    assert all(0.0 <= v <= 1.0 for v in vals)


def test_pass_at_k_errors():
    with pytest.raises(ValueError, match="c <= n"):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError, match="k <= n"):
        pass_at_k(3, 1, 4)


def test_array_and_avg():
    correct = np.array([[1, 0, 0, 0], [1, 1, 1, 1]])
    # pass@2: (0.5 + 1) / 2; avg@2: (1 + 0 + 1 + 1) / 4; avg@4: (1 + 4) / 8
    assert pass_at_k_array(correct, 2) == pytest.approx(0.75)
    assert avg_at_k(correct, 2) == pytest.approx(0.75)
    assert avg_at_k(correct, 4) == pytest.approx(5 / 8)
    with pytest.raises(ValueError, match=r"\(P, n\)"):
        pass_at_k_array(np.array([1, 0]), 1)
    with pytest.raises(ValueError, match="k <= n"):
        avg_at_k(correct, 5)


def test_maj_at_k():
    answers = [
        ["3", "4", "3", None],  # majority of first 3: "3" (2 votes) -> gold "3" correct
        [None, None, "7", "7"],  # first 2 all unparsed -> wrong at k=2; k=4 -> "7"
        ["1", "2", "2", "1"],  # k=4 tie 2-2 -> first seen "1"
    ]
    gold = ["3", "7", "1"]
    # k=3: "3" (2 votes) ok; "7" (its only vote) ok; "2" (2 votes) vs gold "1" wrong -> 2/3
    assert maj_at_k(answers, gold, 3) == pytest.approx(2 / 3)
    # k=2: tie "3"/"4" -> first seen "3" ok; no parsed answer -> wrong; tie "1"/"2" -> "1" ok
    assert maj_at_k(answers, gold, 2) == pytest.approx(2 / 3)
    assert maj_at_k(answers, gold, 4) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="fewer than k"):
        maj_at_k([["1"]], ["1"], 2)
