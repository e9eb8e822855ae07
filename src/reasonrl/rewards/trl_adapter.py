"""TRL-style reward functions as reasonrl rewards.

TRL's GRPOTrainer takes reward functions `fn(prompts, completions, **kwargs) -> list[float |
None]`: lists aligned over a batch, every dataset column passed as a keyword list (`answer=[...]`)
and `completion_ids`. `from_trl(fn)` makes it a reasonrl `RewardFn` whose `batch` hook
(`rewards.batch`) calls `fn` ONCE per rollout batch with:

    prompts         [sample.prompt, ...]          (text; the prompt before templating)
    completions     [completion.text, ...]        (for a tool episode: the whole transcript)
    completion_ids  [list(completion.token_ids), ...]
    answer          [sample.answer, ...]
    <meta key>      [sample.meta.get(key), ...]   for every key of any sample's meta
    trainer_state   None                          (TRL passes its TrainerState; none here)

A returned None is "not applicable" (as TRL's None); a wrong count or an exception falls back to
one call per sample, where a failure costs that sample only (`rewards.api.call_reward`).
Conversational (message-list) prompts and completions are not produced: text only.

Use: `reward.kind: my_module:my_trl_reward` (the RL loop adapts any callable whose first two
parameters are named `prompts` and `completions`: `is_trl_reward`), or from Python,
`train(cfg, reward_fn=my_trl_reward)` / `from_trl(my_trl_reward)`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from reasonrl.types import Completion, Sample

TrlReward = Callable[..., Sequence[float | None]]


def is_trl_reward(fn: object) -> bool:
    """Whether `fn`'s first two parameters are `prompts` and `completions` (TRL's signature)."""
    if getattr(fn, "batch", None) is not None:  # already a reasonrl reward with a batch hook
        return False
    try:
        params = list(inspect.signature(fn).parameters)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return params[:2] == ["prompts", "completions"]


def trl_kwargs(samples: Sequence[Sample], completions: Sequence[Completion]) -> dict[str, Any]:
    """The keyword lists TRL passes besides prompts and completions (module docstring)."""
    keys = sorted({k for s in samples for k in (s.meta or {})})
    out: dict[str, Any] = {
        "completion_ids": [list(c.token_ids) for c in completions],
        "answer": [s.answer for s in samples],
        "trainer_state": None,
    }
    for key in keys:
        if key not in out and key not in ("prompts", "completions"):
            out[key] = [(s.meta or {}).get(key) for s in samples]
    return out


def from_trl(fn: TrlReward) -> Callable[[Sample, Completion], float | None]:
    """`fn(prompts, completions, **kwargs) -> list` as a reasonrl reward (module docstring)."""

    def batch(samples: list[Sample], completions: list[Completion]) -> list[float | None]:
        values = fn([s.prompt for s in samples], [c.text for c in completions],
                    **trl_kwargs(samples, completions))  # fmt: skip
        return list(values)

    def reward(sample: Sample, completion: Completion) -> float | None:
        values = batch([sample], [completion])
        if len(values) != 1:
            raise ValueError(f"TRL reward {getattr(fn, '__name__', fn)!r} returned "
                             f"{len(values)} values for 1 completion")  # fmt: skip
        return values[0]

    reward.batch = batch  # type: ignore[attr-defined]
    reward.__name__ = getattr(fn, "__name__", "trl_reward")
    reward.trl_fn = fn  # type: ignore[attr-defined]
    return reward


def adapt_reward(fn: Any) -> Any:
    """`from_trl(fn)` when `fn` has TRL's signature, else `fn` unchanged."""
    return from_trl(fn) if is_trl_reward(fn) else fn
