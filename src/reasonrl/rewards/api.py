"""The reward contract: any plain callable is a reward, and a failing reward fails one sample only.

A reward is any callable `(sample: Sample, completion: Completion) -> float | RewardResult | None`.
`None` (or `RewardResult(score=None)`) means "not applicable to this sample", which is not 0: a
combination skips it and a trainer may drop it from the mean. Nothing here subclasses anything.

What a reward reports (`reasonrl.types.RewardResult`):
- `score`: the reward;
- `answer`: the completion's answer, normalised by the task so that equal answers are equal
  strings (None = none parsed); maj@k votes on it;
- `outcome`: final answer right (None = unknown: a full score counts as right in evaluation);
- `verified`: every step and the answer right (None = not a process-verified task);
- `info`: extra diagnostics only. A plain float leaves the three typed fields None.

A reward that reports `answer` may carry a `gold_answer(sample) -> str | None` attribute giving
the sample's gold answer in the same normalised form (`with_gold_answer` attaches it, `gold_answer`
reads it); evaluation compares the two for maj@k and reports no maj@k for a reward without one
(or whose `gold_answer` returns None, e.g. code tests). The task normalises its own gold answer:
no other task's normaliser is ever applied.

`call_reward` is the only way the trainer calls a reward: it turns every outcome (a number, a
`RewardResult`, `None`, an exception, a NaN, a wrong type, a timeout) into a `RewardResult` and
never raises. A failure scores 0.0 with `outcome=False`, `answer=None`, `info["failed"] = True`,
`info["error"]` naming the reason and `info["error_kind"]` a short bucket ("timeout",
"non_finite", "bad_type", an exception class such as "SystemExit" ...), and is counted in
`RewardStats`, so that one crashing verifier costs one sample, not the run (TRL's and verl's
reward managers make the same choice for None / failure; P13 in the design). Strings are never
read as numbers (`"1.0"` is a `bad_type` failure). Every exception a reward raises is caught,
`SystemExit` included; only `KeyboardInterrupt` (the user's Ctrl-C) propagates.
"""

from __future__ import annotations

import math
import os
import queue
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from reasonrl.types import Completion, RewardResult, Sample


@runtime_checkable
class RewardFn(Protocol):
    """Structural type of a reward. Plain functions satisfy it; nothing needs to subclass it."""

    def __call__(
        self, sample: Sample, completion: Completion
    ) -> float | RewardResult | None: ...  # pragma: no cover - protocol


F = TypeVar("F", bound=Callable[..., object])


def with_gold_answer(reward: F, gold: Callable[[Sample], str | None]) -> F:
    """Attach `gold` as `reward.gold_answer`: the sample's gold answer normalised exactly like
    the `RewardResult.answer` the reward reports (so maj@k compares like with like).
    Returns `reward`."""
    reward.gold_answer = gold  # type: ignore[attr-defined]
    return reward


def gold_answer(reward: object, sample: Sample) -> str | None:
    """The gold answer of `sample` as `reward` normalises it; None when the reward has no
    `gold_answer` attribute or no gold answer for this sample (then maj@k is undefined)."""
    gold = getattr(reward, "gold_answer", None)
    if gold is None:
        return None
    value = gold(sample)
    return None if value is None else str(value)


def is_correct(result: RewardResult) -> bool:
    """Final answer right: `outcome` where the reward knows it, else a full score (>= 1); a failed
    reward is never right. The one definition of "correct" for pass@k and reward metrics."""
    if result.info.get("failed", False):
        return False
    if result.outcome is not None:
        return result.outcome
    return result.score is not None and result.score >= 1.0


def _failed(reason: str, kind: str, *, verified: bool | None = None, **extra: Any) -> RewardResult:
    info = {**extra, "failed": True, "error": reason, "error_kind": kind}
    return RewardResult(score=0.0, info=info, answer=None, outcome=False, verified=verified)


def _opt_bool(value: object) -> bool | None:
    return None if value is None else bool(value)


def _as_number(value: object) -> float | None:
    """`float(value)` for a number (bool, numpy and 0-d tensor scalars included: anything with
    `__float__`), None for anything else; text is never parsed (`"1.0"` is not a number)."""
    if isinstance(value, str | bytes | bytearray) or not hasattr(type(value), "__float__"):
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def normalize_reward_output(value: object) -> RewardResult:
    """Turn whatever a reward returned into a `RewardResult`; invalid values become failures.

    Accepted: `None` (not applicable), a real number (bool and numpy scalars included), or a
    `RewardResult` whose score is `None` or a real number. A string (even `"1.0"`) or any other
    type is a `bad_type` failure, never coerced. NaN and infinities are failures
    (an infinite reward would poison the group mean and the advantages). The typed fields of a
    `RewardResult` are carried through (`answer` as `str`, `outcome`/`verified` as `bool`); a
    failure has `outcome=False`, `answer=None` (and `verified=False` if the reward reported one).
    """
    if value is None:
        return RewardResult(score=None, info={})
    if isinstance(value, RewardResult):
        if value.score is None:
            return value
        score = _as_number(value.score)
        if score is None:
            return _failed(f"non-numeric score {type(value.score).__name__}", "bad_type")
        if not math.isfinite(score):
            verified = None if value.verified is None else False
            return _failed(
                f"non-finite score {score}", "non_finite", verified=verified, **dict(value.info)
            )
        return RewardResult(
            score=score,
            info=dict(value.info),
            answer=None if value.answer is None else str(value.answer),
            outcome=_opt_bool(value.outcome),
            verified=_opt_bool(value.verified),
        )
    score = _as_number(value)
    if score is None:
        kind = type(value).__name__
        return _failed(f"reward returned {kind}, expected float/RewardResult/None", "bad_type")
    if not math.isfinite(score):
        return _failed(f"non-finite score {score}", "non_finite")
    return RewardResult(score=score, info={})


class _TimedOut(Exception):
    pass


class _Worker:
    """A daemon thread that runs one reward call at a time."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="reward-call", daemon=True).start()

    def _run(self) -> None:
        while True:
            fn, args, box, done = self.jobs.get()
            try:
                box["value"] = fn(*args)
            except BaseException as exc:  # handed to the caller, which decides
                box["error"] = exc
            done.set()


_IDLE: list[_Worker] = []
_IDLE_LOCK = threading.Lock()


def _forget_workers_in_child() -> None:
    """A forked child inherits the idle list but none of its threads: handing it a worker there
    would wait out the whole timeout on a job no thread runs. Start the child with no workers."""
    global _IDLE_LOCK
    _IDLE.clear()
    _IDLE_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_workers_in_child)


def _call_in_thread(
    fn: Callable[..., object], args: tuple[object, ...], timeout_s: float
) -> object:
    """`fn(*args)` on an idle daemon worker, waiting at most `timeout_s`; raises what `fn`
    raised, or `_TimedOut`. Python cannot kill a thread: a worker whose call never returns is
    abandoned (never reused) and later calls get a fresh one, so a stuck reward blocks neither
    them nor the interpreter's exit (a ThreadPoolExecutor's threads are joined at exit, and its
    fixed workers would all end up stuck). Nested and concurrent calls each take their own
    worker. Rewards that may hang for real (math, code) bound their own processes."""
    with _IDLE_LOCK:
        worker = _IDLE.pop() if _IDLE else None
    worker = worker or _Worker()
    box: dict[str, Any] = {}
    done = threading.Event()
    worker.jobs.put((fn, args, box, done))
    if not done.wait(timeout_s):
        raise _TimedOut
    with _IDLE_LOCK:
        _IDLE.append(worker)
    if "error" in box:
        raise box["error"]
    return box.get("value")


def call_reward(
    fn: Callable[[Sample, Completion], object],
    sample: Sample,
    completion: Completion,
    *,
    timeout_s: float | None = None,
    stats: RewardStats | None = None,
) -> RewardResult:
    """Call one reward and normalise its output; never raises.

    Args:
        fn: any reward callable.
        sample, completion: its inputs.
        timeout_s: if set, the call runs in a daemon thread and is abandoned (scored as failed,
            error_kind "timeout") after this many seconds. The thread itself cannot be killed;
            rewards that can hang for real (math-verify, code) also enforce their own
            process-level limits.
        stats: optional counter updated with the outcome.
    Returns:
        `RewardResult`; on failure `score=0.0`, `outcome=False`, `answer=None`,
        `info["failed"]=True`, `info["error"]=reason`, `info["error_kind"]=bucket`.
    Raises:
        KeyboardInterrupt: only when the reward itself raises it (or Ctrl-C arrives meanwhile).
    """
    try:
        if timeout_s is None:
            raw = fn(sample, completion)
        else:
            raw = _call_in_thread(fn, (sample, completion), timeout_s)
        result = normalize_reward_output(raw)
    except _TimedOut:
        result = _failed(f"timeout after {timeout_s:g}s", "timeout")
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit too: a crashing verifier fails a sample, not the run
        result = _failed(f"{type(exc).__name__}: {exc}"[:500], type(exc).__name__)
    if stats is not None:
        stats.record(result)
    return result


@dataclass
class RewardStats:
    """Counts reward outcomes so the trainer can log them (e.g. as `reward/<name>/failed`).

    Not thread-safe by itself: guard with a lock or keep one instance per thread and `merge`.
    """

    calls: int = 0
    not_applicable: int = 0
    failures: Counter[str] = field(default_factory=Counter)

    def record(self, result: RewardResult) -> None:
        """Add one outcome; failures are bucketed by `info["error_kind"]` (e.g. "timeout",
        "non_finite", "bad_type", an exception class name), else by the reason's first word."""
        self.calls += 1
        if result.score is None:
            self.not_applicable += 1
        if result.info.get("failed"):
            kind = result.info.get("error_kind")
            if not kind:
                kind = (str(result.info.get("error", "unknown")).split() or ["unknown"])[0]
            self.failures[str(kind).rstrip(":")] += 1

    def merge(self, other: RewardStats) -> None:
        self.calls += other.calls
        self.not_applicable += other.not_applicable
        self.failures.update(other.failures)

    def metrics(self, prefix: str = "reward/") -> dict[str, float]:
        """Flat metrics: call count, failure rate, not-applicable rate, one count per reason."""
        n = max(self.calls, 1)
        failed = sum(self.failures.values())
        out = {
            f"{prefix}calls": float(self.calls),
            f"{prefix}failed_frac": failed / n,
            f"{prefix}not_applicable_frac": self.not_applicable / n,
        }
        for reason, count in sorted(self.failures.items()):
            out[f"{prefix}failed/{reason}"] = float(count)
        return out


def combine_rewards(
    components: Mapping[str, tuple[Callable[[Sample, Completion], object], float]],
    *,
    timeout_s: float | None = None,
) -> Callable[[Sample, Completion], RewardResult]:
    """Weighted sum of several rewards; components that return `None` are skipped.

    score = sum_{k applicable} w_k * s_k * (W / W_applicable), with W = sum_k w_k over all
    components and W_applicable over those that returned a score. Renormalising keeps the
    scale of the combined reward the same whether or not a component applies (e.g. a code-test
    reward on a maths prompt); with no applicable component the result is `None`.
    A failed component contributes its failure score 0.0 (it is applicable) and marks the
    combined result `info["failed_components"]`. If the applicable weights sum to zero (mixed
    signs) the plain weighted sum is returned. Per-component scores are in
    `info["components"]` (None for not applicable) and their infos in `info["component_info"]`.

    Typed fields, over the applicable components (a failed one is applicable, outcome False):
    `outcome` = all of the known outcomes (None if no component knows), `verified` likewise;
    `answer` = that of the answer component, the first component with a `gold_answer` (whose
    `gold_answer` the combination carries too), else the first answer reported.

    Args:
        components: name -> (reward callable, weight). Weights must be finite; their sum non-zero.
        timeout_s: per-component timeout passed to `call_reward`.
    Returns:
        a reward callable returning `RewardResult`.
    """
    items = [(name, fn, float(w)) for name, (fn, w) in components.items()]
    if not items:
        raise ValueError("combine_rewards needs at least one component")
    for name, _fn, w in items:
        if not math.isfinite(w):
            raise ValueError(f"reward component {name!r} has non-finite weight {w}")
    total_w = sum(w for _, _, w in items)
    if total_w == 0:
        raise ValueError("reward component weights sum to zero; cannot renormalise")

    golds = {name: getattr(fn, "gold_answer", None) for name, fn, _ in items}
    answer_from = next((name for name, gold in golds.items() if gold is not None), None)

    def combined(sample: Sample, completion: Completion) -> RewardResult:
        scores: dict[str, float | None] = {}
        infos: dict[str, dict[str, Any]] = {}
        weighted, applicable_w, n_applicable, failed = 0.0, 0.0, 0, []
        answers: dict[str, str | None] = {}
        outcomes: list[bool] = []
        verified: list[bool] = []
        for name, fn, w in items:
            res = call_reward(fn, sample, completion, timeout_s=timeout_s)
            scores[name], infos[name] = res.score, res.info
            if res.info.get("failed"):
                failed.append(name)
            if res.score is None:
                continue
            weighted += w * res.score
            applicable_w += w
            n_applicable += 1
            answers[name] = res.answer
            if res.outcome is not None:
                outcomes.append(res.outcome)
            if res.verified is not None:
                verified.append(res.verified)
        info: dict[str, Any] = {"components": scores, "component_info": infos}
        if failed:
            info["failed_components"] = failed
        if answer_from is not None:
            answer = answers.get(answer_from)
        else:
            answer = next((a for a in answers.values() if a is not None), None)
        if n_applicable == 0:
            return RewardResult(score=None, info=info)
        # mixed-sign weights that cancel: no sensible rescaling, the plain weighted sum
        score = weighted if applicable_w == 0 else weighted * total_w / applicable_w
        return RewardResult(
            score=score,
            info=info,
            answer=answer,
            outcome=all(outcomes) if outcomes else None,
            verified=all(verified) if verified else None,
        )

    gold = golds[answer_from] if answer_from is not None else None
    return combined if gold is None else with_gold_answer(combined, gold)
