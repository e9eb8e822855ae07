"""The per-prompt statistics store against hand-computed values (decay, NaN, eviction, state)."""

from __future__ import annotations

import copy
import math

import pytest

from reasonrl.data.stats import PromptStats, bucket_name, difficulty_of
from reasonrl.types import Sample


def _s(i: int, op: object = 2) -> Sample:
    return Sample(id=f"p{i}", prompt="q", meta={"op": op})


def test_decayed_success_and_variance_by_hand() -> None:
    stats = PromptStats(decay=0.5)
    s = _s(0)
    stats.observe(s, [1.0, 1.0], step=3)  # n = 2, sum = 2, sumsq = 2
    stats.observe(s, [0.0, 0.0], step=4)  # n = 0.5*2 + 2 = 3, sum = 1, sumsq = 1
    assert stats.success(s) == pytest.approx(1 / 3)
    assert stats.variance(s) == pytest.approx(1 / 3 - 1 / 9)
    row = stats.row(s)
    assert row is not None and row["attempts"] == 4 and row["last"] == 4


def test_plain_mean_without_decay_and_nan_is_skipped() -> None:
    stats = PromptStats(decay=1.0)
    s = _s(0)
    stats.observe(s, [1.0, math.nan, 0.0], [True, True, True], step=0)
    assert stats.row(s)["attempts"] == 2  # the NaN (not applicable) is not an attempt
    assert stats.success(s) == 0.5
    assert stats.hack_rate(s) == 0.5  # right answer with reward 0 -> one hack of two
    stats.observe(_s(1), [math.nan, math.nan], step=0)
    assert stats.row(_s(1)) is None  # nothing applicable: nothing recorded


def test_bucket_estimate_for_unseen_prompts() -> None:
    stats = PromptStats()
    stats.observe(_s(0, op=3), [1.0, 0.0, 0.0, 0.0], step=0)
    unseen = _s(9, op=3)
    assert stats.success(unseen) is None
    assert stats.estimate(unseen) == 0.25  # the bucket's rate
    assert stats.estimate(_s(8, op=5)) is None
    table = stats.bucket_table()
    assert table["3"] == {"attempts": 4, "success": 0.25, "var": pytest.approx(0.1875), "last": 0}


def test_least_recently_seen_prompts_are_forgotten() -> None:
    stats = PromptStats(max_prompts=2)
    for i in range(3):
        stats.observe(_s(i), [1.0], step=i)
    stats.observe(_s(1), [0.0], step=3)  # p1 becomes the most recent
    stats.observe(_s(3), [0.0], step=4)  # evicts p2 (p0 went at step 2)
    assert [k for k in stats.prompts] == ["p1", "p3"]
    assert stats.buckets["2"][0] == 5  # buckets keep every attempt


def test_state_round_trip_is_exact() -> None:
    stats = PromptStats(decay=0.9)
    for i in range(5):
        stats.observe(_s(i % 3, op=i), [0.1 * i, 1.0], [False, True], step=i)
    twin = PromptStats(decay=0.9)
    twin.load_state_dict(copy.deepcopy(stats.state_dict()))
    assert twin.prompts == stats.prompts and twin.buckets == stats.buckets
    assert list(twin.prompts) == list(stats.prompts)  # recency order survives
    for s in (_s(0), _s(1)):
        twin.observe(s, [0.3], step=9)
        stats.observe(s, [0.3], step=9)
    assert twin.state_dict() == stats.state_dict()


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3, 3.0), ("4", 4.0), (2.5, 2.5), (True, None), ("x", None), (math.inf, None), (None, None)],
)
def test_difficulty_of(value: object, expected: float | None) -> None:
    assert difficulty_of(_s(0, op=value), "op") == expected


def test_bucket_names() -> None:
    assert [bucket_name(v) for v in (3.0, 2.5, None)] == ["3", "2.5", "none"]


def test_bad_decay_is_refused() -> None:
    with pytest.raises(ValueError, match="decay"):
        PromptStats(decay=0.0)
