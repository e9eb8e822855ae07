"""Prompt sources: where each RL step's prompts come from, with resumable state.

A source yields `Sample`s and can save/restore its position, so a resumed run sees exactly the
prompts the uninterrupted run would have seen. `skipped` counts the prompts a source dropped as too
long (`data.max_prompt_tokens`): a file's rows are measured once (`split_long`) before its
`ListSource` is built; `SynthSource` measures each problem it generates.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from reasonrl.types import Sample

# A synthetic source that generates this many too-long problems in a row gives up.
MAX_CONSECUTIVE_SKIPS = 1000


def split_long(
    samples: Sequence[Sample], measure: Callable[[Sample], int], max_tokens: int
) -> tuple[list[Sample], list[tuple[int, Sample, int]]]:
    """(samples that fit, [(row index, sample, length) of those longer than max_tokens])."""
    kept: list[Sample] = []
    long: list[tuple[int, Sample, int]] = []
    for index, sample in enumerate(samples):
        n = measure(sample)
        if n > max_tokens:
            long.append((index, sample, n))
        else:
            kept.append(sample)
    return kept, long


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

    Each prompt's op, context and mode are drawn uniformly from the given lists. With `fits`, a
    problem for which `fits(sample)` is False (a prompt too long for the model) is skipped and
    counted in `skipped`; the draw stays deterministic, so resume is still exact.
    """

    def __init__(
        self,
        ops: Sequence[int],
        *,
        contexts: Sequence[str] = ("zoo",),
        modes: Sequence[str] = ("forward",),
        seed: int = 0,
        fits: Callable[[Sample], bool] | None = None,
        magnitude: str = "small",
    ) -> None:
        self.ops, self.contexts, self.modes = list(ops), list(contexts), list(modes)
        self.magnitude = magnitude  # generate_problem's: "small" or "large" (the tool task)
        self._rng = random.Random(seed)
        self.drawn = 0
        self.fits = fits
        self.skipped = 0

    def next(self, k: int) -> list[Sample]:
        from reasonrl.tasks.synth.dataset import is_heldout, problem_to_row, row_to_sample
        from reasonrl.tasks.synth.generator import generate_problem

        out: list[Sample] = []
        in_a_row = 0
        while len(out) < k:
            op = self._rng.choice(self.ops)
            context = self._rng.choice(self.contexts)
            mode = self._rng.choice(self.modes)
            problem = generate_problem(
                op, rng=self._rng, context=context, mode=mode, magnitude=self.magnitude
            )
            if is_heldout(problem):  # evaluation problems are never trained on
                continue
            sample = row_to_sample(problem_to_row(problem))
            if self.fits is not None and not self.fits(sample):
                self.skipped += 1
                in_a_row += 1
                if in_a_row >= MAX_CONSECUTIVE_SKIPS:
                    raise ValueError(
                        f"{in_a_row} synthetic problems in a row (ops {self.ops}) were longer "
                        "than data.max_prompt_tokens: lower data.ops or raise the limit"
                    )
                continue
            in_a_row = 0
            out.append(sample)
        self.drawn += k
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"rng": _rng_state(self._rng), "drawn": self.drawn, "skipped": self.skipped}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _set_rng_state(self._rng, state["rng"])
        self.drawn = int(state["drawn"])
        self.skipped = int(state.get("skipped", 0))  # checkpoints from before the count: 0


class ListSource:
    """Cycles through a fixed list of samples, reshuffled (seeded) at every epoch. `skipped` is
    the number of rows dropped before the list was built (reported, never drawn); `origin` names
    where the samples come from in errors."""

    def __init__(
        self, samples: Sequence[Sample], *, seed: int = 0, skipped: int = 0, origin: str = ""
    ) -> None:
        if not samples:
            where = f" ({origin})" if origin else ""
            raise ValueError(f"ListSource needs at least one sample{where}")
        self.samples = list(samples)
        self.skipped = skipped
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
