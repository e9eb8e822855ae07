"""The environment seam: what a policy acts in, one episode per (sample, group member).

Gym/Tinker-style, token-in token-out:

- an `EnvFactory` makes a fresh `Env` for each episode: `factory(sample) -> Env`, called G times
  per sample for a group of G;
- `env.reset()` returns the first observation as token ids: the prompt;
- `env.step(action)` takes the policy's turn (a `Completion`: the tokens the engine sampled,
  their log-probs and decoded text) and returns a `StepResult`: the observation tokens to insert
  before the next turn (tool output; never trained on), a reward, `done`, metrics and, when
  done, a finish reason;
- `env.close()` (optional) releases what the episode holds (a tool's interpreter); the rollout
  driver calls it on every exit path, exceptions included.

Rewards. A reward given in a `StepResult` (a float or a `RewardResult`) is the episode's final
reward when it comes with `done`; `reward=None` at `done` means "score the transcript with the
run's reward function", which the driver then does for all such episodes in ONE batched call
(`rewards.batch.call_reward_batch`), exactly as single-turn training always did. A factory may
also carry a group-level hook `score_group(sample, completions, results) -> [score, ...]` for
rewards that compare a whole group (pairwise judges): it sees the G transcripts of one sample
and the per-episode results, and its outputs replace them.

Concurrency (the design choice): `reset`/`step` are plain synchronous methods. The driver
(`envs.rollout.run_episodes`) generates one turn for every live episode in one batched engine
call, then steps all the episodes that ended a turn at once, `workers` of them concurrently in
threads (tool calls run in sandbox subprocesses, so threads overlap them); finished episodes
leave the batch, so an episode waiting on a tool never holds a generation slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from reasonrl.types import Completion, RewardResult, Sample

# Why an episode ended. "stop"/"length" are the engine's (EOS or stop string / the per-turn
# max_new_tokens); "max_turns", "max_tool_calls", "max_tokens" are the limits; "error" an env
# that raised.
EPISODE_FINISH_REASONS = ("stop", "length", "max_turns", "max_tool_calls", "max_tokens", "error")


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one `Env.step` returns.

    observation: token ids inserted after the policy's turn (masked out of the loss), or None.
        Ignored when `done`.
    reward: the final reward when `done` (float or RewardResult); None = score the transcript
        with the run's reward function. Rewards given before `done` are ignored.
    done: the episode is over.
    metrics: numbers about this step, summed over the episode's steps and logged as the mean
        per episode (`env/<key>`), e.g. {"tool_calls": 1.0, "tool_errors": 0.0}.
    finish_reason: why the episode ended (one of EPISODE_FINISH_REASONS); None = the engine's
        finish reason of the last turn.
    observation_text: the text the observation tokens encode, for the transcript the reward
        reads; None = decode the tokens.
    """

    observation: Sequence[int] | None = None
    reward: float | RewardResult | None = None
    done: bool = False
    metrics: dict[str, float] = field(default_factory=dict)
    finish_reason: str | None = None
    observation_text: str | None = None


@runtime_checkable
class Env(Protocol):
    """One episode. `close()` is optional (the driver calls it where it exists)."""

    def reset(self) -> Sequence[int]:
        """The first observation: the prompt's token ids."""
        ...

    def step(self, action: Completion) -> StepResult:
        """React to the policy's turn `action`."""
        ...


@runtime_checkable
class EnvFactory(Protocol):
    """Makes one `Env` per episode and states what the driver needs to batch them.

    stop: stop strings that end a policy turn (added to `SamplingParams.stop`), e.g.
        ("</code>",) so a turn ends where a tool call closes.
    max_turns: most policy turns per episode (1 = single-turn); reaching it with the env
        still wanting more ends the episode with finish reason "max_turns".
    max_total_tokens: most response-side tokens per episode (sampled + observation); None = no
        limit. Reaching it ends the episode with "max_tokens".

    Optional: `score_group(sample, completions, results) -> Sequence[float | RewardResult |
    None]` (see the module docstring).
    """

    stop: tuple[str, ...]
    max_turns: int
    max_total_tokens: int | None

    def __call__(self, sample: Sample) -> Env: ...
