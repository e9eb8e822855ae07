"""train(callbacks=[...]): the hooks, the order and what they receive (rl/callbacks.py)."""

from __future__ import annotations

from typing import Any

import pytest

from reasonrl.rl.callbacks import Callback, CallbackList


def test_callbacks_get_a_copy_in_order() -> None:
    seen: list[tuple[str, Any]] = []

    class OnlyStep:
        def on_step(self, state: Any, metrics: dict) -> None:
            metrics["reward/mean"] = 99.0  # changes nothing logged
            seen.append(("a", state))

    class Both(Callback):
        def on_step(self, state: Any, metrics: dict) -> None:
            seen.append(("b", metrics["reward/mean"]))

        def on_eval(self, state: Any, metrics: dict) -> None:
            seen.append(("eval", metrics["eval/pass@1"]))

    hooks = CallbackList([OnlyStep(), Both()])
    metrics = {"reward/mean": 0.5}
    hooks.on_step("state", metrics)
    hooks.on_eval("state", {"eval/pass@1": 0.25})  # OnlyStep has no on_eval: skipped
    assert seen == [("a", "state"), ("b", 0.5), ("eval", 0.25)]
    assert metrics == {"reward/mean": 0.5}
    Callback().on_step("state", {})  # the base's hooks do nothing
    Callback().on_eval("state", {})


def test_an_object_without_hooks_is_refused_at_the_start() -> None:
    with pytest.raises(TypeError, match="neither on_step"):
        CallbackList([object()])
    assert CallbackList().callbacks == []
