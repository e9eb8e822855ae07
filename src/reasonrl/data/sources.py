"""Prompt sources: where each RL step's prompts come from, with resumable state.

A source yields `Sample`s and can save/restore its position, so a resumed run sees exactly the
prompts the uninterrupted run would have seen.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, Protocol

from reasonrl.types import Sample


class PromptSource(Protocol):
    def next(self, k: int) -> list[Sample]:
        """The next k prompts."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def _rng_state(rng: random.Random) -> list[Any]:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def _set_rng_state(rng: random.Random, state: Sequence[Any]) -> None:
    version, internal, gauss = state
    rng.setstate((version, tuple(internal), gauss))


class SynthSource:
    """An endless stream of training-split synthetic problems (held-out problems are skipped).

    Each prompt's op, context and mode are drawn uniformly from the given lists.
    """

    def __init__(
        self,
        ops: Sequence[int],
        *,
        contexts: Sequence[str] = ("zoo",),
        modes: Sequence[str] = ("forward",),
        seed: int = 0,
    ) -> None:
        self.ops, self.contexts, self.modes = list(ops), list(contexts), list(modes)
        self._rng = random.Random(seed)
        self.drawn = 0

    def next(self, k: int) -> list[Sample]:
        from reasonrl.tasks.synth.dataset import is_heldout, problem_to_row, row_to_sample
        from reasonrl.tasks.synth.generator import generate_problem

        out: list[Sample] = []
        while len(out) < k:
            op = self._rng.choice(self.ops)
            context = self._rng.choice(self.contexts)
            mode = self._rng.choice(self.modes)
            problem = generate_problem(op, rng=self._rng, context=context, mode=mode)
            if not is_heldout(problem):  # evaluation problems are never trained on
                out.append(row_to_sample(problem_to_row(problem)))
        self.drawn += k
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"rng": _rng_state(self._rng), "drawn": self.drawn}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _set_rng_state(self._rng, state["rng"])
        self.drawn = int(state["drawn"])


class ListSource:
    """Cycles through a fixed list of samples, reshuffled (seeded) at every epoch."""

    def __init__(self, samples: Sequence[Sample], *, seed: int = 0) -> None:
        if not samples:
            raise ValueError("ListSource needs at least one sample")
        self.samples = list(samples)
        self.seed = seed
        self.epoch = 0
        self.position = 0
        self._order = self._permutation()

    def _permutation(self) -> list[int]:
        order = list(range(len(self.samples)))
        random.Random(self.seed * 1_000_003 + self.epoch).shuffle(order)
        return order

    def next(self, k: int) -> list[Sample]:
        out = []
        for _ in range(k):
            if self.position == len(self._order):
                self.epoch, self.position = self.epoch + 1, 0
                self._order = self._permutation()
            out.append(self.samples[self._order[self.position]])
            self.position += 1
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._order = self._permutation()
