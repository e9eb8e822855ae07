"""The one learning-rate schedule (runtime.schedule), pinned by hand-computed values."""

from __future__ import annotations

import math

import pytest

from reasonrl.runtime.schedule import lr_factor


def test_lr_schedule_warmup_then_cosine() -> None:
    # warmup 10: step 0 -> 1/10, step 9 -> 1; then cosine from 1 to min ratio 0.1:
    # progress 0.5 -> 0.1 + 0.9 * 0.5 * (1 + cos(pi/2)) = 0.55; progress 1 -> 0.1
    assert lr_factor(0, 0.0, warmup_steps=10, min_lr_ratio=0.1) == pytest.approx(0.1)
    assert lr_factor(9, 0.0, warmup_steps=10, min_lr_ratio=0.1) == pytest.approx(1.0)
    assert lr_factor(50, 0.5, warmup_steps=10, min_lr_ratio=0.1) == pytest.approx(0.55)
    assert lr_factor(99, 1.0, warmup_steps=10, min_lr_ratio=0.1) == pytest.approx(0.1)
    assert lr_factor(25, 0.25, warmup_steps=0, min_lr_ratio=0.0) == pytest.approx(
        0.5 * (1 + math.cos(math.pi / 4))
    )


def test_constant_after_warmup_and_progress_clamped() -> None:
    assert lr_factor(4, 0.0, warmup_steps=5, cosine=False) == pytest.approx(1.0)
    assert lr_factor(500, 7.0, warmup_steps=5, cosine=False) == 1.0
    assert lr_factor(500, 7.0, warmup_steps=5) == pytest.approx(0.0, abs=1e-12)  # clamped at 1
    assert lr_factor(5, -1.0, warmup_steps=5, min_lr_ratio=0.1) == pytest.approx(1.0)
