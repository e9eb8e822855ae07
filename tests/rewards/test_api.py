"""Reward contract: normalisation, failure handling, combination, stats."""

from __future__ import annotations

import math
import os
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reasonrl.rewards import REWARDS
from reasonrl.rewards.api import (
    RewardFn,
    RewardStats,
    call_reward,
    combine_rewards,
    normalize_reward_output,
)
from reasonrl.types import Completion, RewardResult, Sample

S = Sample(id="s", prompt="p", answer="4")
C = Completion(text="4", token_ids=(1,), logprobs=(0.0,))


def test_plain_function_is_a_reward():
    def r(sample, completion):
        return 1.0

    assert isinstance(r, RewardFn)
    assert call_reward(r, S, C) == RewardResult(score=1.0, info={})


@pytest.mark.parametrize(
    ("value", "score"),
    [(1, 1.0), (True, 1.0), (np.float32(0.5), 0.5), (RewardResult(0.25, {"k": 1}), 0.25)],
)
def test_numbers_and_results_normalise(value, score):
    res = normalize_reward_output(value)
    assert res.score == score and not res.info.get("failed")


def test_none_means_not_applicable_not_zero():
    assert normalize_reward_output(None).score is None
    assert normalize_reward_output(RewardResult(None, {"why": "x"})).info == {"why": "x"}


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (float("nan"), "non-finite"),
        (float("inf"), "non-finite"),
        (RewardResult(float("nan")), "non-finite"),
        ("1.0x", "reward returned str"),
        ([1.0], "reward returned list"),
    ],
)
def test_invalid_outputs_fail_the_sample(value, fragment):
    res = normalize_reward_output(value)
    assert res.score == 0.0 and res.info["failed"] is True
    assert fragment in res.info["error"]


def test_exception_is_recorded_not_raised():
    def boom(sample, completion):
        raise KeyError("gold")

    res = call_reward(boom, S, C)
    assert res.score == 0.0 and res.info["failed"]
    assert res.info["error"].startswith("KeyError")


def test_timeout_fails_the_sample_quickly():
    def slow(sample, completion):
        time.sleep(2.0)
        return 1.0

    start = time.perf_counter()
    res = call_reward(slow, S, C, timeout_s=0.1)
    assert time.perf_counter() - start < 1.0
    assert res.info["failed"] and "timeout" in res.info["error"]
    assert res.info["error_kind"] == "timeout"


def test_stats_count_failures_by_reason():
    stats = RewardStats()
    for fn in (lambda s, c: 1.0, lambda s, c: None, lambda s, c: 1 / 0, lambda s, c: math.nan):
        call_reward(fn, S, C, stats=stats)
    m = stats.metrics()
    assert m["reward/calls"] == 4.0
    assert m["reward/failed_frac"] == 0.5  # ZeroDivisionError and NaN: 2 of 4
    assert m["reward/not_applicable_frac"] == 0.25
    assert m["reward/failed/ZeroDivisionError"] == 1.0
    assert m["reward/failed/non_finite"] == 1.0
    other = RewardStats()
    other.merge(stats)
    assert other.metrics() == m


def test_combination_weighted_sum_and_component_info():
    combined = combine_rewards({"a": (lambda s, c: 1.0, 2.0), "b": (lambda s, c: 0.5, 1.0)})
    res = combined(S, C)
    # all applicable: 2*1.0 + 1*0.5 = 2.5, renormalisation factor W/W_app = 3/3 = 1
    assert res.score == pytest.approx(2.5)
    assert res.info["components"] == {"a": 1.0, "b": 0.5}


def test_combination_skips_not_applicable_and_renormalises():
    combined = combine_rewards({"a": (lambda s, c: 1.0, 1.0), "b": (lambda s, c: None, 3.0)})
    res = combined(S, C)
    # only a applies: 1*1.0 * (W=4 / W_app=1) = 4.0, the scale the full sum would have
    assert res.score == pytest.approx(4.0)
    assert res.info["components"]["b"] is None
    assert combine_rewards({"b": (lambda s, c: None, 1.0)})(S, C).score is None


def test_combination_failed_component_scores_zero_and_is_flagged():
    combined = combine_rewards({"a": (lambda s, c: 1.0, 1.0), "bad": (lambda s, c: 1 / 0, 1.0)})
    res = combined(S, C)
    assert res.score == pytest.approx(1.0)  # (1*1 + 1*0) * 2/2
    assert res.info["failed_components"] == ["bad"]


def test_combination_rejects_bad_weights():
    with pytest.raises(ValueError, match="sum to zero"):
        combine_rewards({"a": (lambda s, c: 1.0, 1.0), "b": (lambda s, c: 1.0, -1.0)})
    with pytest.raises(ValueError, match="non-finite"):
        combine_rewards({"a": (lambda s, c: 1.0, math.inf)})


@given(
    st.lists(
        st.tuples(st.one_of(st.none(), st.floats(-5, 5)), st.floats(0.1, 3)), min_size=1, max_size=5
    )
)
def test_combination_equals_renormalised_sum(parts):
    def const(v):
        return lambda s, c: v

    comps = {f"c{i}": (const(v), w) for i, (v, w) in enumerate(parts)}
    res = combine_rewards(comps)(S, C)
    applicable = [(v, w) for v, w in parts if v is not None]
    if not applicable:
        assert res.score is None
        return
    total_w = sum(w for _, w in parts)
    expected = sum(v * w for v, w in applicable) * total_w / sum(w for _, w in applicable)
    assert res.score == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_registry_names_the_builtins():
    assert set(REWARDS) == {"math", "countdown", "code_tests", "code_tests_all"}
    assert all(callable(f) for f in REWARDS.values())


def test_timed_calls_work_in_a_forked_child():
    # the parent leaves an idle worker behind; the child has none of its threads
    assert call_reward(lambda s, c: 1.0, S, C, timeout_s=5.0).score == 1.0
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report the score (or its absence) through the pipe, then leave
        try:
            result = call_reward(lambda s, c: 0.5, S, C, timeout_s=2.0)
            os.write(write, str(result.score).encode())
        finally:
            os._exit(0)
    os.close(write)
    started = time.monotonic()
    os.waitpid(pid, 0)
    assert os.read(read, 100) == b"0.5"
    assert time.monotonic() - started < 1.5  # not the 2 s timeout of an orphaned worker
