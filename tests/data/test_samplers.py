"""Sampler weights against their formulas on a fixed, hand-built statistics table."""

from __future__ import annotations

import random

import pytest

from reasonrl.data.samplers import choose, weights
from reasonrl.data.stats import PromptStats
from reasonrl.types import Sample


def _table() -> tuple[list[Sample], PromptStats]:
    """Four prompts at ops 1-4 with success 0, 0.5, 1 (decay 1: plain means) and one unseen."""
    stats = PromptStats(decay=1.0)
    samples = [Sample(id=str(i), prompt="p", meta={"op": i + 1}) for i in range(4)]
    stats.observe(samples[0], [0.0, 0.0], [True, False], step=0)  # one hack of two
    stats.observe(samples[1], [1.0, 0.0], step=0)
    stats.observe(samples[2], [1.0, 1.0], step=0)
    return samples, stats


def test_stats_rows() -> None:
    samples, stats = _table()
    assert stats.success(samples[1]) == 0.5 and stats.variance(samples[1]) == 0.25
    assert stats.hack_rate(samples[0]) == 0.5 and stats.success(samples[3]) is None


def test_kimi_is_one_minus_success_with_a_floor() -> None:
    samples, stats = _table()
    # s = 0, 0.5, 1, unseen -> 1, 0.5, floor 0.05, 1
    assert weights("kimi", samples, stats, floor=0.05) == [1.0, 0.5, 0.05, 1.0]


def test_edge_keeps_only_unsolved_and_not_hopeless() -> None:
    samples, stats = _table()
    assert weights("edge", samples, stats) == [0.0, 1.0, 0.0, 1.0]


def test_curriculum_admits_difficulty_linearly() -> None:
    samples, stats = _table()
    # ops 1..4, progress 1/3: gate 1 + 3/3 = 2
    assert weights("curriculum", samples, stats, progress=1 / 3) == [1.0, 1.0, 0.0, 0.0]


def test_pools_give_each_pool_its_share() -> None:
    samples, stats = _table()
    # easy = {2}, hard = {0}, normal = {1, 3}: 0.1 / 1, 0.8 / 2
    assert weights("pools", samples, stats) == pytest.approx([0.1, 0.4, 0.1, 0.4])


def test_hack_filter_drops_prompts_with_right_answers_and_bad_traces() -> None:
    samples, stats = _table()
    assert weights("uniform", samples, stats, hack_threshold=0.4) == [0.0, 1.0, 1.0, 1.0]


def test_first_draw_frequencies_follow_the_weights() -> None:
    rng, counts = random.Random(0), [0, 0, 0]
    for _ in range(30_000):
        counts[choose(rng, [2.0, 1.0, 0.0], 1)[0]] += 1
    assert counts[2] == 0 and abs(counts[0] / 30_000 - 2 / 3) < 0.01
