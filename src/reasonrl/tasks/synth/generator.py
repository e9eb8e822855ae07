"""Entry point of the synthetic task: `generate_problem` checks arguments and dispatches on mode.

forward.py draws the forward problem (the exact-op construction), reverse.py turns a forward draw
into a linear equation in one unknown; a draw that hits a dead end raises RetryProblem and is
redrawn here, up to `max_tries` times.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from reasonrl.tasks.synth.forward import MAGNITUDES, forward_problem
from reasonrl.tasks.synth.problem import RetryProblem, SynthProblem
from reasonrl.tasks.synth.reverse import reverse_problem
from reasonrl.tasks.synth.vocab import get_context

# (op, rng, ctx, number_range, max_value, distractors, depth, *, magnitude) -> problem; raises
# RetryProblem.
Drawer = Callable[..., SynthProblem]
_DRAWERS: dict[str, Drawer] = {"forward": forward_problem, "reverse": reverse_problem}
MODES = tuple(_DRAWERS)  # ("forward", "reverse")


def _check_args(op: int, mode: str, number_range: int, max_value: int, max_tries: int) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown synth mode {mode!r}; expected one of {MODES}")
    if op < 1:
        raise ValueError(f"op must be >= 1 (number of operations), got {op}")
    if number_range < 2:
        raise ValueError(
            f"number_range must be >= 2 (constants are 1..number_range-1), got {number_range}"
        )
    if max_value < number_range - 1:
        raise ValueError(f"max_value={max_value} is below the largest constant {number_range - 1}")
    if max_tries < 1:
        raise ValueError(f"max_tries must be >= 1, got {max_tries}")


def generate_problem(
    op: int,
    *,
    rng: random.Random,
    context: str = "zoo",
    mode: str = "forward",
    number_range: int | None = None,
    max_value: int | None = None,
    max_tries: int = 200,
    distractors: tuple[int, int] = (1, 3),
    depth: int = 2,
    magnitude: str = "small",
) -> SynthProblem:
    """Draw one problem with exactly `op` operations.

    op(G) = sum over needed nodes of |parents| (constant edges included), arXiv 2512.07783 §2.
    Every value (needed and distractor) lies in [0, max_value]; constants are 1..number_range-1.

    Reference: arXiv 2512.07783 (GSM-Infinite generator, arXiv 2502.05252; iGSM, 2407.20311).

    Args:
        op: exact number of operations of the needed graph (>= 1).
        rng: the only source of randomness; same state => same problem on any machine.
        context: "zoo" | "school" | "movie". mode: "forward" | "reverse".
        number_range: constants are drawn from const_min..number_range-1 (None: the
            magnitude's, 5 for "small", the paper default).
        max_value: largest allowed value of any quantity (None: the magnitude's; 99 for "small"
            keeps numbers single tokens).
        max_tries: draws before giving up (rejection-sampling cap).
        distractors: inclusive range of the number of irrelevant statements.
        depth: 2 (places x kinds, the paper's "medium" setting) or 3 (adds "average number of
            <unit> per <kind> in <place>" and "total number of <unit> in <place>" = sum over kinds
            of count * average).
        magnitude: "small" (the paper's numbers) or "large" (3-digit constants, values up to
            999,999, mostly products: the tool task of issue 18; forward.MAGNITUDES).

    Returns: a SynthProblem. Raises ValueError on bad arguments or when no draw succeeds.
    """
    if magnitude not in MAGNITUDES:
        raise ValueError(f"unknown magnitude {magnitude!r}; expected one of {sorted(MAGNITUDES)}")
    mag = MAGNITUDES[magnitude]
    number_range = mag.number_range if number_range is None else number_range
    max_value = mag.max_value if max_value is None else max_value
    if number_range <= mag.const_min:
        raise ValueError(f"number_range={number_range} leaves no constant >= {mag.const_min}")
    _check_args(op, mode, number_range, max_value, max_tries)
    if depth not in (2, 3):
        raise ValueError(f"depth must be 2 or 3 (structure-graph layers), got {depth}")
    ctx = get_context(context)
    draw = _DRAWERS[mode]
    for _ in range(max_tries):
        try:
            return draw(
                op, rng, ctx, number_range, max_value, distractors, depth, magnitude=magnitude
            )
        except RetryProblem:
            continue
    raise ValueError(
        f"could not generate a {mode} synth problem with op={op} (context={context!r}, "
        f"number_range={number_range}, max_value={max_value}, depth={depth}) within "
        f"max_tries={max_tries}"
    )
