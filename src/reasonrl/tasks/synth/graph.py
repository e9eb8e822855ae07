"""Dependency-graph records of the synthetic task and the op count.

A problem is a DAG over *quantities* (arXiv 2512.07783 §2, after iGSM arXiv 2407.20311). Each node
is computed from its parent quantities and at most one literal constant (an edge from the RNG
node). Difficulty op(G) = |E| counts every parent edge, constant edges included.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# Node kinds. The cost in ops of a node is len(parents) + (1 if it has a constant).
CONST = "const"  # X = c
ALIAS = "alias"  # X = Y
CONST_PLUS = "const_plus"  # X = c + Y
CONST_TIMES = "const_times"  # X = c * Y
SUM = "sum"  # X = Y + Z (+ ...)
DIFF = "diff"  # X = Y - Z
TOTAL = "total"  # abstract: X = sum of the kinds mentioned for a place (no statement)
UNKNOWN = "unknown"  # reverse mode: X is the unknown x (its constant is hidden)
# Third layer: X = sum over kinds of count(kind) * average-per-kind, parents (c1, u1, c2, u2, ...).
UNIT_TOTAL = "unit_total"
KINDS = (CONST, ALIAS, CONST_PLUS, CONST_TIMES, SUM, DIFF, TOTAL, UNKNOWN, UNIT_TOTAL)


@dataclass(frozen=True, slots=True)
class GoldNode:
    """One quantity of a generated problem, as plain data.

    name: quantity name as written in statements and traces ("adult owl in Maple Zoo").
    var: its variable letter in the trace. aux_vars: letters of intermediate partial sums.
    kind: one of `KINDS`. parents: parent quantity names in statement order.
    const: the literal constant (RNG edge) or None. value: its true value (also for the unknown
    of a reverse-mode problem). place/item: the structure-graph names it was built from (item is
    "" for a TOTAL). layer: 1 for a count of a kind, 2 for a third-layer average per kind.
    """

    name: str
    var: str
    kind: str
    parents: tuple[str, ...]
    const: int | None
    value: int
    aux_vars: tuple[str, ...] = ()
    place: str = ""
    item: str = ""
    layer: int = 1

    @property
    def n_ops(self) -> int:
        """Edges into this node: parent quantities plus one for a literal constant."""
        return len(self.parents) + (0 if self.const is None else 1)


def count_ops(nodes: Iterable[GoldNode]) -> int:
    """op(G) = sum over nodes of |parents(v)|, constant (RNG) edges included.

    Reference: arXiv 2512.07783 (num_op in the GSM-Infinite generator).
    """
    return sum(node.n_ops for node in nodes)


def evaluate(nodes: Iterable[GoldNode], *, unknown: int | None = None) -> dict[str, int]:
    """Recompute every node's value from its kind, constant and parents (topological order).

    Args:
        nodes: nodes in topological order (parents before children).
        unknown: value to use for an UNKNOWN node (default: the node's stored value).

    Returns: name -> value. Raises ValueError on a parent that is not defined earlier.
    """
    values: dict[str, int] = {}
    for node in nodes:
        try:
            args = [values[p] for p in node.parents]
        except KeyError as err:
            raise ValueError(
                f"node {node.name!r}: parent {err.args[0]!r} not defined before it"
            ) from None
        values[node.name] = apply_kind(node.kind, node.const, args, node.value, unknown)
    return values


def apply_kind(
    kind: str, const: int | None, args: list[int], stored: int, unknown: int | None = None
) -> int:
    """Value of a node of `kind` from its constant and parent values."""
    if kind == CONST:
        return int(const)  # type: ignore[arg-type]
    if kind == UNKNOWN:
        return stored if unknown is None else unknown
    if kind == ALIAS:
        return args[0]
    if kind == CONST_PLUS:
        return int(const) + args[0]  # type: ignore[arg-type]
    if kind == CONST_TIMES:
        return int(const) * args[0]  # type: ignore[arg-type]
    if kind in (SUM, TOTAL):
        return sum(args)
    if kind == UNIT_TOTAL:
        return sum(c * u for c, u in zip(args[0::2], args[1::2]))
    if kind == DIFF:
        return args[0] - args[1]
    raise ValueError(f"unknown node kind {kind!r}; expected one of {KINDS}")
