"""Every existing reward as the degenerate one-step environment.

`reset()` returns the encoded prompt, the policy answers once, `step` ends the episode with
`reward=None`, so the driver scores all completions of a round with the run's reward function in
one batched call: the same prompts, the same engine call (n = G per prompt, the same seed) and
the same reward call as the loop made before environments existed, so a single-turn run is bit
for bit what it was (tests/envs/test_single_turn.py pins it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from reasonrl.envs.base import StepResult
from reasonrl.types import Completion, Sample


class SingleTurnEnv:
    """One prompt, one completion, scored by the run's reward."""

    def __init__(self, sample: Sample, encode: Callable[[Sample], Sequence[int]]) -> None:
        self.sample = sample
        self._encode = encode

    def reset(self) -> Sequence[int]:
        return self._encode(self.sample)

    def step(self, action: Completion) -> StepResult:
        return StepResult(done=True)


class SingleTurnEnvs:
    """EnvFactory of `SingleTurnEnv`s; `encode(sample)` gives the prompt's token ids (the RL
    loop passes `data.templates.prompt_token_ids` with the run's prompt format)."""

    stop: tuple[str, ...] = ()
    max_turns = 1
    max_total_tokens: int | None = None

    def __init__(self, encode: Callable[[Sample], Sequence[int]]) -> None:
        self.encode = encode

    def __call__(self, sample: Sample) -> SingleTurnEnv:
        return SingleTurnEnv(sample, self.encode)
