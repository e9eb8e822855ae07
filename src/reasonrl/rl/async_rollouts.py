"""Asynchronous rollouts with a staleness bound, on the local backend (`rollout.max_staleness`).

    trainer thread:   next(t): publish weights v=t, take groups(t); update; next(t+1) ...
    producer thread:  groups(t+1) with v=t; pause until v >= t+2-K; groups(t+2) ...

The producer is a thread with its own engine (a private COPY of the policy: `share_weights=False`)
and its own torch intra-op threads (`rollout.producer_threads`; torch releases the GIL inside
its ops, so generation and the update overlap on two cores). It produces the groups of steps
t+1..t+K while step t trains, calling the synchronous `rl.rollouts.sample_groups` (or the
partial-rollout producer) on a view of the run state that holds its engine.

Admission control (AReaL/prime-rl style, not discarding): the groups of step s are generated only
once the weights of version >= s - K are loaded, so a sample never trains more than K versions
after the weights that sampled it; the producer pauses otherwise. Weight sync: at the start of
every step the trainer publishes a clone of its current weights with the version `state.step`
(the count of updates so far); the producer loads the newest clone before its next step's
generation. Every token carries its version (`rl.versions.VersionedGroups`) and the metrics
`rollout/staleness_*`, `rollout/version_lag_max`, `perf/time_wait` (trainer waiting) and
`perf/time_producer_pause` (producer held back by admission control) show it. Sampler
log-probs are kept and `algo.is_level` defaults to token (config/rl.py), so the update
multiplies by pi_old / mu_old (arXiv 2512.01374, decoupled as in AReaL arXiv 2505.24298).

Checkpoints: the trainer's `state.source` is a `ConsumedSource`, whose `state_dict` is the
prompt source as it was before the first group not yet trained was drawn. In-flight groups are
dropped at a save; a resumed run regenerates them from that state with the resumed weights, so
it samples the same prompts and seeds, but (for K >= 1) not bit-for-bit the same tokens: exact
resume holds for K = 0 only. `close()` stops the thread (the run calls it on every exit path:
the end, an exception, SIGINT/SIGTERM); the thread is a daemon, so nothing can hang the exit.
"""

from __future__ import annotations

import copy
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import torch

from reasonrl.rl.partial import PartialRollouts
from reasonrl.rl.rollouts import Groups, sample_groups
from reasonrl.rl.versions import VersionedGroups, versioned
from reasonrl.runtime.timing import Timer

if TYPE_CHECKING:
    from reasonrl.rl.state import TrainState
    from reasonrl.rollout.base import RolloutEngine, SamplingParams

Produce = Callable[["TrainState", "SamplingParams", Timer, int], VersionedGroups]
_JOIN_S = 120.0  # longest wait for the producer to finish its batch at close


def plain_producer(
    state: TrainState, params: SamplingParams, timer: Timer, version: int
) -> VersionedGroups:
    """`sample_groups`, with every token marked as sampled by `version`."""
    return versioned(sample_groups(state, params, timer), version)


def make_producer(state: TrainState) -> Produce:
    """Partial rollouts (rollout.partial_token_budget > 0) or plain `sample_groups`."""
    ro = state.cfg.rollout
    if ro.partial_token_budget:
        return PartialRollouts(ro.partial_token_budget,
                               mask_old_segments=ro.partial_old_segments == "mask")  # fmt: skip
    return plain_producer


class SyncRollouts:
    """Partial rollouts without a producer thread (max_staleness=0): the trainer's own engine
    and weights, version `state.step`."""

    def __init__(self, produce: Produce) -> None:
        self.produce = produce

    def next(self, state: TrainState, params: SamplingParams, timer: Timer) -> Groups:
        groups = self.produce(state, params, timer, state.step)
        groups.trained_at = state.step
        return groups

    def close(self) -> None:
        pass


class AsyncRollouts:
    """The rollout producer thread and its admission control (module docstring)."""

    def __init__(
        self, state: TrainState, engine: RolloutEngine, produce: Produce, *, threads: int
    ) -> None:
        self.max_staleness = state.cfg.rollout.max_staleness
        self.engine, self.produce, self.threads = engine, produce, threads
        self.source = state.source  # drawn from by the producer only, once started
        self._cond = threading.Condition()
        self._ready: dict[int, tuple[VersionedGroups, dict[str, float]]] = {}
        self._after: dict[int, dict[str, Any]] = {}  # source snapshots once step s was drawn
        self._weights: tuple[int, dict[str, torch.Tensor]] | None = None  # newest published
        self._error: BaseException | None = None
        self._stop = False
        self._thread: threading.Thread | None = None
        self._start_snapshot: dict[str, Any] | None = None
        self.pause_s = 0.0  # producer time held back by admission control since last next()
        self._paused_since: float | None = None
        self.published: list[int] = []  # versions published (tests, logs)

    # ------------------------------------------------------------------ trainer side
    def next(self, state: TrainState, params: SamplingParams, timer: Timer) -> Groups:
        """Publish the current weights as version `state.step`, then the groups of that step."""
        with timer("publish"):  # perf/time_publish: the weight clone for the producer
            self.publish(state)
        if self._thread is None:
            self._start(state)
        with timer("wait"), self._cond:  # the trainer waits only when the producer is behind
            while state.step not in self._ready and self._error is None:
                if not self._thread_alive():
                    raise RuntimeError("the rollout producer stopped without a result")
                self._cond.wait(timeout=1.0)
            if self._error is not None:
                raise RuntimeError("the rollout producer failed") from self._error
            groups, times = self._ready.pop(state.step)
            if self._paused_since is not None:  # still paused: count the pause up to now
                now = time.perf_counter()
                self.pause_s += now - self._paused_since
                self._paused_since = now
            pause, self.pause_s = self.pause_s, 0.0
            for old in [k for k in self._after if k < state.step]:
                del self._after[old]  # a save now reads the snapshot of state.step or later
        groups.trained_at = state.step
        for name, seconds in times.items():  # perf/time_generate etc.: the producer's, overlapped
            timer.add(name, seconds)
        timer.add("producer_pause", pause)  # held back by admission control since last step
        return groups

    def publish(self, state: TrainState) -> None:
        """A clone of the trainer's weights (LoRA: merged) as version `state.step`."""
        from reasonrl.models.lora import engine_weights

        tensors = {n: t.detach().clone() for n, t in engine_weights(state.model)}
        with self._cond:
            self._weights = (state.step, tensors)
            self.published.append(state.step)
            self._cond.notify_all()

    def sampler_state(self, step: int) -> dict[str, Any]:
        """The prompt source before the groups of `step` were drawn."""
        with self._cond:
            if self._thread is None:
                return self.source.state_dict()
            if step in self._after:
                return self._after[step]["state"]
            raise RuntimeError(f"no sampler snapshot for step {step} (not yet produced)")

    def source_view(self, step: int, key: str) -> Any:
        with self._cond:
            return self._after.get(step, {}).get(key)

    def close(self) -> None:
        """Stop the producer (it finishes the batch it is generating, then exits)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=_JOIN_S)

    # ------------------------------------------------------------------ producer side
    def _thread_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _start(self, state: TrainState) -> None:
        self._after[state.step] = {"state": self.source.state_dict()}
        # its own tokenizer copy: the evaluator encodes with the trainer's at the same time
        view = replace(state, engine=self.engine, source=self.source, rollouts=None,
                       tokenizer=copy.deepcopy(state.tokenizer))  # fmt: skip
        self._thread = threading.Thread(target=self._run, args=(view, state.step),
                                        name="reasonrl-rollouts", daemon=True)  # fmt: skip
        self._thread.start()

    def _run(self, view: TrainState, step: int) -> None:
        from reasonrl.rl.state import sampling_params

        torch.set_num_threads(self.threads)  # per thread: the trainer's stays as it is
        version = -1
        try:
            while True:
                with self._cond:  # admission: weights of version >= step - K, newest first
                    self._paused_since = time.perf_counter()
                    while not self._stop and (
                        self._weights is None or self._weights[0] < step - self.max_staleness
                    ):
                        self._cond.wait()
                    self.pause_s += time.perf_counter() - self._paused_since
                    self._paused_since = None
                    if self._stop:
                        return
                    assert self._weights is not None
                    if self._weights[0] > version:
                        version, tensors = self._weights
                    else:
                        tensors = {}
                if tensors:
                    self.engine.load_weights(tensors.items())
                timer = Timer()
                groups = self.produce(replace(view, step=step),
                                      sampling_params(view.cfg, step), timer, version)  # fmt: skip
                snap = {"state": self.source.state_dict()}
                for key in ("metrics", "summary"):  # read here: the producer owns the source
                    fn = getattr(self.source, key, None)
                    snap[key] = fn() if callable(fn) else None
                with self._cond:
                    times = {k.removeprefix("perf/time_"): v for k, v in timer.metrics().items()}
                    self._ready[step] = (groups, times)
                    self._after[step + 1] = snap
                    self._cond.notify_all()
                step += 1
        except BaseException as exc:  # re-raised in the trainer by next()
            with self._cond:
                self._error = exc
                self._cond.notify_all()


class ConsumedSource:
    """The trainer's view of the prompt source while the producer draws ahead: its state,
    metrics and summary are those of the steps trained so far (module docstring)."""

    def __init__(self, rollouts: AsyncRollouts, state: TrainState) -> None:
        self.rollouts, self.state = rollouts, state

    def next(self, k: int) -> list[Any]:
        raise RuntimeError("with rollout.max_staleness > 0 only the rollout producer draws")

    def state_dict(self) -> dict[str, Any]:
        return self.rollouts.sampler_state(self.state.step)

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        if self.rollouts._thread_alive():
            raise RuntimeError("the prompt source cannot be restored once the producer runs")
        self.rollouts.source.load_state_dict(sd)

    def metrics(self) -> dict[str, float]:
        return self.rollouts.source_view(self.state.step, "metrics") or {}

    def __getattr__(self, name: str) -> Any:
        if name == "summary" and callable(getattr(self.rollouts.source, "summary", None)):
            return lambda: self.rollouts.source_view(self.state.step, "summary") or {}
        return getattr(self.rollouts.source, name)


def producer_threads(cfg_threads: int | None) -> int:
    """`rollout.producer_threads`, else half of the cores (at least 1)."""
    return cfg_threads or max(1, (os.cpu_count() or 2) // 2)


def with_rollouts(state: TrainState, engine: RolloutEngine | None) -> TrainState:
    """`state` with its rollout producer: none for the synchronous loop (max_staleness=0 and no
    partial rollouts: `sample_groups` exactly as before), `SyncRollouts` for partial rollouts
    alone, `AsyncRollouts` on `engine` (a private copy of the policy) for max_staleness >= 1."""
    ro = state.cfg.rollout
    if not ro.max_staleness and not ro.partial_token_budget:
        return state
    produce = make_producer(state)
    if not ro.max_staleness:
        state.rollouts = SyncRollouts(produce)
        return state
    if engine is None:
        raise ValueError("max_staleness >= 1 needs the producer's own engine")
    threads = producer_threads(ro.producer_threads)
    if state.cfg.model.threads is None:  # the trainer gets the remaining cores
        torch.set_num_threads(max(1, (os.cpu_count() or 2) - threads))
    rollouts = AsyncRollouts(state, engine, produce, threads=threads)
    state.rollouts = rollouts
    state.source = ConsumedSource(rollouts, state)  # type: ignore[assignment]
    return state
