"""Hooks into a run: `train(cfg, callbacks=[...])`.

A callback is any object with `on_step(state, metrics)` and/or `on_eval(state, metrics)`
(subclass `Callback` to get no-op defaults for the one you leave out):

- `on_step` runs after every step, once its metrics row is written to metrics.jsonl (the row's
  eval/ keys included when the step was evaluated) and before the step's checkpoint is saved;
- `on_eval` runs after each held-out evaluation (`trainer.eval_every`: step 0, every N steps,
  the last step), with the eval/ keys and `perf/eval_s`.

`state` is the live `TrainState` (`state.step`, `state.model`, `state.cfg`, ...): read it, do not
change it. `metrics` is a copy: changing it changes nothing logged. An exception raised by a
callback stops the run like any error (the last checkpoint stays valid; `--resume` continues).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reasonrl.rl.state import TrainState

HOOKS = ("on_step", "on_eval")


class Callback:
    """No-op base: override `on_step`, `on_eval` or both."""

    def on_step(self, state: TrainState, metrics: Mapping[str, float]) -> None:
        """After each step's metrics row was written."""

    def on_eval(self, state: TrainState, metrics: Mapping[str, float]) -> None:
        """After each held-out evaluation."""


class CallbackList:
    """The run's callbacks, called in the order given. Refuses (TypeError) an object with
    neither hook when the run starts, not at its first step."""

    def __init__(self, callbacks: Iterable[object] = ()) -> None:
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not any(callable(getattr(cb, hook, None)) for hook in HOOKS):
                raise TypeError(
                    f"callback {cb!r} has neither on_step(state, metrics) nor "
                    "on_eval(state, metrics)"
                )

    def _call(self, hook: str, state: TrainState, metrics: Mapping[str, float]) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if callable(fn):
                fn(state, dict(metrics))

    def on_step(self, state: TrainState, metrics: Mapping[str, float]) -> None:
        self._call("on_step", state, metrics)

    def on_eval(self, state: TrainState, metrics: Mapping[str, float]) -> None:
        self._call("on_eval", state, metrics)
