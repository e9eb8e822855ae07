"""docs/metrics.md defines every metric a step logs: one GRPO step and one PPO step (GAE critic,
two epochs, adaptive KL in the reward) of the stub loop, and every key must match a key or a
pattern (`actor/epoch{k}/*`, `reward/<key>`) written in backticks on that page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reasonrl.rl.step import train_step
from tests.rl.stubs import stub_config, stub_state

DOC = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"
PPO = {"preset": None, "advantage": "gae", "lam": 0.95, "kl_coef": 0.05, "kl_target": 0.01,
       "kl_in": "reward", "ppo_epochs": 2}  # fmt: skip


def documented() -> list[re.Pattern[str]]:
    """Each backticked `group/name` on the page as a regex: `{k}`, `<x>` match one path part,
    `*` matches the rest."""
    patterns = []
    for token in re.findall(r"`([a-z]+/[^`\s]+)`", DOC.read_text()):
        regex = re.escape(token)
        regex = re.sub(r"\\\{[^}]*\\\}|<[^>]*>", "[^/]+", regex).replace(r"\*", ".+")
        patterns.append(re.compile(rf"^{regex}$"))
    return patterns


def test_pattern_syntax() -> None:
    patterns = documented()
    assert any(p.match("actor/epoch3/clipfrac") for p in patterns)
    assert any(p.match("reward/failed/timeout") for p in patterns)
    assert not any(p.match("actor/made_up_metric") for p in patterns)


@pytest.mark.parametrize("algo", [{"preset": "grpo"}, PPO], ids=["grpo", "ppo_gae"])
def test_every_logged_metric_is_documented(algo: dict) -> None:
    metrics, _ = train_step(stub_state(stub_config(algo={"micro_batch_size": 4, **algo})))
    patterns = documented()
    missing = [k for k in metrics if not any(p.match(k) for p in patterns)]
    assert not missing, f"add these to docs/metrics.md: {missing}"
    assert len(metrics) > 30  # the step really logged its metrics


def test_step_line_labels_are_defined() -> None:
    from reasonrl.rl.console import STEP_STATS

    text = DOC.read_text()
    for label, key, _ in STEP_STATS:
        assert f"| `{label}` | `{key}`" in text, label
