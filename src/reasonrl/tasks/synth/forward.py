"""Forward mode: exact-op sampler of the needed graph and its distractors (reverse: reverse.py).

Re-implementation of the GSM-Infinite "realistic" generator used by arXiv 2512.07783 (itself a
replication of iGSM, arXiv 2407.20311), simplified to hit the requested op count constructively:

- Structure graph: 2 layers, places (zoos / towns / festivals) x kinds (animals / school types /
  movie genres); each place offers a few kinds. Instance quantity = "<kind> in <place>"; abstract
  quantity = "total number of ... in <place>" = sum of every kind mentioned for that place.
- Nodes are added in topological order. Each new node spends ops (parent edges, +1 for a
  literal constant) from the budget `op`. A budget invariant keeps the graph finishable: with D
  the nodes that have no child yet, the ops left must be >= |D| when |D| >= 2 (enough to join
  them all), so the last node depends on every other node and op(G) equals the request exactly.
- Values stay in [0, max_value]: the operator of a node (plus/times, sum/difference) is chosen so
  the value fits when it can, otherwise another action is drawn; a dead end restarts the draw
  (rejection sampling, capped by `max_tries`).
- Distractor statements about other kinds (1-3 by default) are added, then all statements are
  shuffled; the question asks for the last node.

Determinism: only the given `random.Random` is used, and every choice iterates lists in creation
order, so the same seed gives the same problems on any machine.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from reasonrl.tasks.synth.graph import (
    ALIAS,
    CONST,
    CONST_PLUS,
    CONST_TIMES,
    DIFF,
    SUM,
    TOTAL,
    UNIT_TOTAL,
    GoldNode,
)
from reasonrl.tasks.synth.problem import RetryProblem, SynthProblem
from reasonrl.tasks.synth.render import assemble, forward_trace, question
from reasonrl.tasks.synth.vocab import VARIABLE_NAMES, Context

# Letters usable as trace variables; "x" is reserved for the unknown of reverse mode.
_LETTERS = tuple(c for c in VARIABLE_NAMES if c != "x")
# Relative weights of the actions tried when adding a node (every kind appears at every op).
_UNIT_TOTAL_WEIGHT = 3.0  # depth 3 only
_ACTION_WEIGHTS = {
    "const": 2.0,
    "alias": 1.0,
    "const_op": 2.0,
    "binary": 3.0,
    "multi": 1.0,
    "total": 3.0,
}


@dataclass
class _Draw:
    """Mutable state of one draw of the forward constructor."""

    rng: random.Random
    ctx: Context
    number_range: int
    max_value: int
    remaining: int
    depth: int = 2
    const_min: int = 1  # smallest literal constant (Magnitude.const_min)
    times_prob: float = 0.5  # chance that a constant operation multiplies (Magnitude.times_prob)
    const_op_weight: float = _ACTION_WEIGHTS["const_op"]  # Magnitude.const_op_weight
    nodes: list[GoldNode] = field(default_factory=list)
    values: dict[str, int] = field(default_factory=dict)
    dangling: list[str] = field(default_factory=list)
    letters: list[str] = field(default_factory=list)
    place_pool: list[str] = field(default_factory=list)
    open_places: list[str] = field(default_factory=list)
    free_kinds: dict[str, list[str]] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)
    member_kinds: dict[str, list[str]] = field(default_factory=dict)
    units: dict[str, dict[str, str]] = field(default_factory=dict)
    closed: set[str] = field(default_factory=set)
    unit_closed: set[str] = field(default_factory=set)
    used_names: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.letters = list(_LETTERS)
        self.rng.shuffle(self.letters)
        self.place_pool = list(self.ctx.places)
        self.rng.shuffle(self.place_pool)
        for _ in range(self.rng.randint(1, 2)):
            self._open_place()

    # ---- structure graph -------------------------------------------------------------------
    def _open_place(self) -> str:
        if not self.place_pool:
            raise RetryProblem
        place = self.place_pool.pop()
        kinds = list(self.ctx.kinds)
        self.rng.shuffle(kinds)
        self.free_kinds[place] = kinds[: self.rng.randint(2, 5)]
        self.members[place], self.member_kinds[place], self.units[place] = [], [], {}
        self.open_places.append(place)
        return place

    def new_instance(self) -> tuple[str, str, str, int]:
        """A fresh (name, place, kind, layer) on an open place, opening a new place when needed.

        With depth 3, sometimes the third-layer "average number of <unit> per <kind> in <place>"
        of a kind already counted there (layer 2).
        """
        if self.depth == 3 and self.rng.random() < 0.35:
            cands = [
                (p, k) for p in self.open_places if p not in self.unit_closed
                for k in self.member_kinds[p] if k not in self.units[p]
            ]  # fmt: skip
            if cands:
                place, kind = self.rng.choice(cands)
                unit = self.ctx.unit_phrase
                return f"average number of {unit} per {kind} in {place}", place, kind, 2
        usable = [p for p in self.open_places if p not in self.closed and self.free_kinds[p]]
        if not usable or self.rng.random() < 0.15:
            usable = [self._open_place()]
        place = self.rng.choice(usable)
        kind = self.free_kinds[place].pop()
        return f"{kind} in {place}", place, kind, 1

    def take_letters(self, n: int) -> list[str]:
        if len(self.letters) < n:
            raise RetryProblem
        return [self.letters.pop() for _ in range(n)]

    # ---- budget ------------------------------------------------------------------------------
    @staticmethod
    def need(n_dangling: int) -> int:
        """Fewest ops that can still join `n_dangling` childless nodes into one sink."""
        return 0 if n_dangling <= 1 else n_dangling

    def fits(self, parents: list[str], has_const: bool) -> bool:
        cost = len(parents) + int(has_const)
        left = sum(1 for d in self.dangling if d not in parents) + 1
        return cost <= self.remaining and self.need(left) <= self.remaining - cost

    def add(self, node: GoldNode, value: int) -> None:
        self.nodes.append(node)
        self.values[node.name] = value
        self.used_names.add(node.name)
        self.dangling = [d for d in self.dangling if d not in node.parents] + [node.name]
        self.remaining -= node.n_ops
        self.register(node)

    def register(self, node: GoldNode) -> None:
        """Record an instance on its place (abstract totals are not members)."""
        if node.kind in (TOTAL, UNIT_TOTAL):
            return
        if node.layer == 2:
            self.units[node.place][node.item] = node.name
        else:
            self.members[node.place].append(node.name)
            self.member_kinds[node.place].append(node.item)


def _make_node(
    draw: _Draw, kind: str, parents: list[str], const: int | None, value: int, **names: str
) -> GoldNode:
    n_aux = max(0, len(parents) - 2) if kind in (SUM, TOTAL) else 0
    if kind == UNIT_TOTAL:  # k product letters, then k - 2 for the sum chain (none if k == 1)
        k = len(parents) // 2
        n_aux = 0 if k == 1 else 2 * k - 2
    letters = draw.take_letters(1 + n_aux)
    return GoldNode(
        name=names["name"],
        var=letters[0],
        kind=kind,
        parents=tuple(parents),
        const=const,
        value=value,
        aux_vars=tuple(letters[1:]),
        place=names["place"],
        item=names.get("item", ""),
        layer=int(names.get("layer", 1)),
    )


def _pick_parents(draw: _Draw, k: int) -> list[str] | None:
    """k distinct earlier nodes, preferring childless ones (keeps the graph connected)."""
    names = [n.name for n in draw.nodes]
    if k > len(names):
        return None
    dangling = list(draw.dangling)
    draw.rng.shuffle(dangling)
    chosen = [d for d in dangling if draw.rng.random() < 0.75][:k]
    others = [n for n in names if n not in chosen]
    while len(chosen) < k:
        chosen.append(others.pop(draw.rng.randrange(len(others))))
    return chosen


def _operate(draw: _Draw, action: str, parents: list[str]) -> tuple[str, int | None, int] | None:
    """Choose kind, constant and value for `action` on `parents`; None if no variant fits."""
    rng, vals, top = draw.rng, [draw.values[p] for p in parents], draw.max_value
    lo = draw.const_min
    if action == "const":
        c = rng.randint(lo, draw.number_range - 1)
        return CONST, c, c
    if action == "alias":
        return ALIAS, None, vals[0]
    if action == "const_op":
        if draw.number_range > max(2, lo) and rng.random() < draw.times_prob:
            c = rng.randint(max(2, lo), draw.number_range - 1)
            if c * vals[0] <= top:
                return CONST_TIMES, c, c * vals[0]
        c = rng.randint(lo, draw.number_range - 1)
        return (CONST_PLUS, c, c + vals[0]) if c + vals[0] <= top else None
    if action == "binary" and (rng.random() < 0.5 or sum(vals) > top):
        return DIFF, None, abs(vals[0] - vals[1])
    return (SUM, None, sum(vals)) if sum(vals) <= top else None


_ACTION_COST = {
    "const": (0, True),
    "alias": (1, False),
    "const_op": (1, True),
    "binary": (2, False),
}


def _try_instance(draw: _Draw, action: str) -> bool:
    """Add one instance node doing `action`; False (state unchanged) when it does not fit."""
    if action == "multi":
        k, has_const = draw.rng.randint(3, 4), False
    else:
        k, has_const = _ACTION_COST[action]
    parents = _pick_parents(draw, k) if k else []
    if parents is None or not draw.fits(parents, has_const):
        return False
    picked = _operate(draw, action, parents)
    if picked is None:
        return False
    kind, const, value = picked
    if kind == DIFF and draw.values[parents[0]] < draw.values[parents[1]]:
        parents.reverse()  # "the difference between A and B" is A - B >= 0
    name, place, item, layer = draw.new_instance()
    node = _make_node(
        draw, kind, parents, const, value, name=name, place=place, item=item, layer=layer
    )
    draw.add(node, value)
    return True


def _try_total(draw: _Draw, exact: list[str] | None = None) -> bool:
    """Add the abstract total of a place whose kinds are all defined (closing that place)."""
    cands = [p for p in draw.open_places if p not in draw.closed and draw.members[p]]
    if exact is not None:
        cands = [p for p in cands if sorted(draw.members[p]) == sorted(exact)]
    if not cands:
        return False
    place = draw.rng.choice(cands)
    parents = list(draw.members[place])
    value = sum(draw.values[p] for p in parents)
    if value > draw.max_value or not draw.fits(parents, False):
        return False
    draw.closed.add(place)
    name = f"{draw.ctx.total_phrase} in {place}"
    draw.add(_make_node(draw, TOTAL, parents, None, value, name=name, place=place), value)
    return True


def _try_unit_total(draw: _Draw) -> bool:
    """Add a third-layer total: sum over a place's kinds of count * average (closes the place)."""
    cands = [
        p for p in draw.open_places
        if p not in draw.unit_closed and draw.member_kinds[p]
        and set(draw.member_kinds[p]) == set(draw.units[p])
    ]  # fmt: skip
    if not cands:
        return False
    place = draw.rng.choice(cands)
    parents: list[str] = []
    for count_name, kind in zip(draw.members[place], draw.member_kinds[place]):
        parents += [count_name, draw.units[place][kind]]
    value = sum(draw.values[c] * draw.values[u] for c, u in zip(parents[0::2], parents[1::2]))
    if value > draw.max_value or not draw.fits(parents, False):
        return False
    draw.closed.add(place)
    draw.unit_closed.add(place)
    name = f"total number of {draw.ctx.unit_phrase} in {place}"
    draw.add(_make_node(draw, UNIT_TOTAL, parents, None, value, name=name, place=place), value)
    return True


def _forced_join(draw: _Draw) -> None:
    """Ops left == childless nodes: one node must take them all as parents."""
    dangling = list(draw.dangling)
    if _try_total(draw, exact=dangling):
        return
    vals = [draw.values[d] for d in dangling]
    if len(dangling) == 2 and (sum(vals) > draw.max_value or draw.rng.random() < 0.5):
        kind, value = DIFF, abs(vals[0] - vals[1])
        if vals[0] < vals[1]:
            dangling.reverse()
    elif sum(vals) <= draw.max_value:
        kind, value = SUM, sum(vals)
    else:
        raise RetryProblem
    name, place, item, layer = draw.new_instance()
    node = _make_node(
        draw, kind, dangling, None, value, name=name, place=place, item=item, layer=layer
    )
    draw.add(node, value)


def _grow(draw: _Draw) -> None:
    """Add one node to the needed graph."""
    if not draw.nodes:
        if not _try_instance(draw, "const"):
            raise RetryProblem
        return
    if len(draw.dangling) >= 2 and draw.remaining == len(draw.dangling):
        _forced_join(draw)
        return
    actions = list(_ACTION_WEIGHTS)
    weights = [draw.const_op_weight if a == "const_op" else w for a, w in _ACTION_WEIGHTS.items()]
    if draw.depth == 3:
        actions.append("unit_total")
        weights.append(_UNIT_TOTAL_WEIGHT)
    for _ in range(8):
        action = draw.rng.choices(actions, weights)[0]
        if action == "total":
            ok = _try_total(draw)
        elif action == "unit_total":
            ok = _try_unit_total(draw)
        else:
            ok = _try_instance(draw, action)
        if ok:
            return
    if not _try_instance(draw, "alias"):
        raise RetryProblem


def _add_distractors(draw: _Draw, count: int) -> list[GoldNode]:
    """Irrelevant statements: new kinds on places whose total is not asked, 0-3 parent edges."""
    out: list[GoldNode] = []
    pool = [n.name for n in draw.nodes]
    for _ in range(count):
        action = draw.rng.choice(["const", "alias", "const_op", "binary", "multi"])
        k = {"const": 0, "alias": 1, "const_op": 1, "binary": 2, "multi": 3}[action]
        if k > len(pool):
            action, k = "const", 0
        parents = draw.rng.sample(pool, k)
        picked = _operate(draw, action, parents)
        if picked is None:
            picked, parents = _operate(draw, "const", []), []
        kind, const, value = picked  # type: ignore[misc]
        if kind == DIFF and draw.values[parents[0]] < draw.values[parents[1]]:
            parents.reverse()
        name, place, item, layer = draw.new_instance()
        node = GoldNode(name, "", kind, tuple(parents), const, value, (), place, item, layer)
        draw.values[name] = value
        draw.register(node)
        pool.append(name)
        out.append(node)
    return out


@dataclass(frozen=True, slots=True)
class Magnitude:
    """How large the numbers of a problem are.

    "small" (the paper's setting): constants 1..4, values <= 99, a constant operation multiplies
    half the time. "large" (the tool task, issue 18): 3-digit constants, values <= 999,999,
    constant operations twice as likely and 80% of them products, so many steps are 3-digit x
    3-digit multiplications (and 6-digit sums) that a tiny model cannot do in its head but a
    `<code>` call can.
    """

    const_min: int
    number_range: int
    max_value: int
    times_prob: float
    const_op_weight: float = _ACTION_WEIGHTS["const_op"]


MAGNITUDES: dict[str, Magnitude] = {
    "small": Magnitude(const_min=1, number_range=5, max_value=99, times_prob=0.5),
    "large": Magnitude(
        const_min=100, number_range=1000, max_value=999_999, times_prob=0.8, const_op_weight=4.0
    ),
}


def draw_forward(
    op: int, rng: random.Random, ctx: Context, number_range: int, max_value: int,
    distractors: tuple[int, int], depth: int = 2, *, magnitude: str = "small",
) -> tuple[list[GoldNode], list[GoldNode]]:  # fmt: skip
    """Needed nodes (topological order, exactly `op` ops) and distractor nodes of one draw.

    magnitude: a MAGNITUDES key; its const_min and times_prob apply (number_range and max_value
    are the arguments). Raises RetryProblem on a dead end; see the module docstring.
    """
    mag = MAGNITUDES[magnitude]
    draw = _Draw(
        rng, ctx, number_range, max_value, remaining=op, depth=depth,
        const_min=mag.const_min, times_prob=mag.times_prob, const_op_weight=mag.const_op_weight,
    )  # fmt: skip
    while draw.remaining > 0:
        _grow(draw)
    if len(draw.dangling) != 1:  # invariant of `fits`; kept as a guard
        raise RetryProblem
    return draw.nodes, _add_distractors(draw, rng.randint(*distractors))


def forward_problem(
    op: int, rng: random.Random, ctx: Context, number_range: int, max_value: int,
    distractors: tuple[int, int], depth: int = 2, *, magnitude: str = "small",
) -> SynthProblem:  # fmt: skip
    """One forward-mode problem: the question asks for the last node (raises RetryProblem)."""
    nodes, extra = draw_forward(
        op, rng, ctx, number_range, max_value, distractors, depth, magnitude=magnitude
    )
    answer = nodes[-1].value
    return assemble(
        nodes, extra, rng, context=ctx.key, mode="forward", trace=forward_trace(nodes, answer),
        answer=answer, question_text=question(nodes[-1]),
    )  # fmt: skip
