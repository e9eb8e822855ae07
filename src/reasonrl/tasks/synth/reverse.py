"""Reverse mode: one quantity is unknown (x), the last quantity's value is given, solve for x.

Follows `forwardreverse` / drawAllEquan of the GSM-Infinite generator used by arXiv 2512.07783:
a forward graph is drawn, one constant quantity u becomes the unknown ("The number of U exists,
and its number is greater than 0."), the question gives the value of the last quantity q and asks
for u. Every quantity is linear in x (sums, differences, constant plus/times), so the trace carries
linear expressions and ends by solving q(x) = v:
    "Define U as x; we don't know its value yet but will find it out later. ... Define Q as N;
     so N = ... = 2 * x + 3. We know N = 7, so we have 2 * x + 3 = 7 and we solve it through the
     following steps: Simplifying the equation: 2 * x + 3 = 7. Move all terms to one side:
     2 * x - 4 = 0. Solution: x = 2. Answer: 2."
A choice of u whose coefficient in q is 0 (x cancels) is not solvable and is redrawn.
"""

from __future__ import annotations

import random
from dataclasses import replace

from reasonrl.tasks.synth.forward import draw_forward
from reasonrl.tasks.synth.graph import (
    ALIAS,
    CONST,
    CONST_PLUS,
    CONST_TIMES,
    DIFF,
    SUM,
    TOTAL,
    UNIT_TOTAL,
    UNKNOWN,
    GoldNode,
)
from reasonrl.tasks.synth.problem import RetryProblem, SynthProblem
from reasonrl.tasks.synth.render import assemble, node_steps, unit_total_results
from reasonrl.tasks.synth.vocab import Context

Linear = tuple[int, int]  # (a, b) for a * x + b


def format_linear(form: Linear) -> str:
    """Canonical text of a * x + b: "x + 3", "2 * x", "10 - x", "4 - 3 * x", "7"."""
    a, b = form
    if a == 0:
        return str(b)
    xs = "x" if abs(a) == 1 else f"{abs(a)} * x"
    if a > 0:
        return xs if b == 0 else (f"{xs} + {b}" if b > 0 else f"{xs} - {-b}")
    return f"{b} - {xs}" if b >= 0 else f"0 - {xs} - {-b}"


class NonLinearError(ValueError):
    """A product of two quantities that both depend on x."""


def _product(a: Linear, b: Linear, name: str) -> Linear:
    if a[0] and b[0]:
        raise NonLinearError(f"{name}: product of two terms in x")
    return (a[0] * b[1] + b[0] * a[1], a[1] * b[1])


def _sum_of_products(ps: list[Linear], name: str) -> Linear:
    prods = [_product(c, u, name) for c, u in zip(ps[0::2], ps[1::2])]
    return (sum(p[0] for p in prods), sum(p[1] for p in prods))


def linear_forms(nodes: list[GoldNode]) -> dict[str, Linear]:
    """Each node's value as a * x + b, x being the UNKNOWN node's value."""
    forms: dict[str, Linear] = {}
    for n in nodes:
        ps = [forms[p] for p in n.parents]
        if n.kind == UNKNOWN:
            forms[n.name] = (1, 0)
        elif n.kind == CONST:
            forms[n.name] = (0, int(n.const))  # type: ignore[arg-type]
        elif n.kind == ALIAS:
            forms[n.name] = ps[0]
        elif n.kind == CONST_PLUS:
            forms[n.name] = (ps[0][0], ps[0][1] + int(n.const))  # type: ignore[arg-type]
        elif n.kind == CONST_TIMES:
            c = int(n.const)  # type: ignore[arg-type]
            forms[n.name] = (c * ps[0][0], c * ps[0][1])
        elif n.kind in (SUM, TOTAL):
            forms[n.name] = (sum(p[0] for p in ps), sum(p[1] for p in ps))
        elif n.kind == DIFF:
            forms[n.name] = (ps[0][0] - ps[1][0], ps[0][1] - ps[1][1])
        elif n.kind == UNIT_TOTAL:
            forms[n.name] = _sum_of_products(ps, n.name)
        else:
            raise ValueError(f"no linear form for node kind {n.kind!r} of {n.name!r}")
    return forms


def _results(node: GoldNode, forms: dict[str, Linear]) -> list[str]:
    """Texts of the step results of `node` (partial sums for a sum chain)."""
    if node.kind == UNIT_TOTAL:
        ps = [forms[p] for p in node.parents]
        prods = [_product(c, u, node.name) for c, u in zip(ps[0::2], ps[1::2])]
        running, acc = [], prods[0]
        for p in prods[1:]:
            acc = (acc[0] + p[0], acc[1] + p[1])
            running.append(format_linear(acc))
        return unit_total_results([format_linear(p) for p in prods], running)
    if node.kind not in (SUM, TOTAL) or len(node.parents) < 2:
        return [format_linear(forms[node.name])]
    out, a, b = [], *forms[node.parents[0]]
    for p in node.parents[1:]:
        a, b = a + forms[p][0], b + forms[p][1]
        out.append(format_linear((a, b)))
    return out


def reverse_trace(nodes: list[GoldNode], forms: dict[str, Linear], known: int, answer: int) -> str:
    """Trace with symbolic values and the closing linear-equation solve."""
    var_of = {n.name: n.var for n in nodes}
    parts = []
    for node in nodes:
        steps = node_steps(
            node, var_of, lambda name: format_linear(forms[name]), _results(node, forms)
        )
        parts.append(f"Define {node.name} as {node.var}; {steps}.")
    q = nodes[-1]
    lhs = format_linear(forms[q.name])
    moved = format_linear((forms[q.name][0], forms[q.name][1] - known))
    parts.append(
        f"We know {q.var} = {known}, so we have {lhs} = {known} and we solve it through the "
        f"following steps: Simplifying the equation: {lhs} = {known}. Move all terms to one "
        f"side: {moved} = 0. Solution: x = {answer}. Answer: {answer}."
    )
    return " ".join(parts)


def reverse_question(query: GoldNode, unknown: GoldNode, known: int) -> str:
    """Question of a reverse problem: "If the number of Q is v, how many K does P have?".

    A total or third-layer average is named without "the number of"; an unknown average is asked
    as "what is the average number of ...?".
    """
    named = query.kind in (TOTAL, UNIT_TOTAL) or query.layer == 2
    subject = f"the {query.name}" if named else f"the number of {query.name}"
    if unknown.layer == 2:
        return f"If {subject} is {known}, what is the {unknown.name}?"
    return f"If {subject} is {known}, how many {unknown.item} does {unknown.place} have?"


def reverse_problem(
    op: int, rng: random.Random, ctx: Context, number_range: int, max_value: int,
    distractors: tuple[int, int], depth: int = 2, *, magnitude: str = "small",
) -> SynthProblem:  # fmt: skip
    """One reverse-mode problem (raises RetryProblem on a dead end); see module docstring."""
    nodes, extra = draw_forward(
        op, rng, ctx, number_range, max_value, distractors, depth, magnitude=magnitude
    )
    consts = [i for i, n in enumerate(nodes) if n.kind == CONST]
    rng.shuffle(consts)
    for i in consts:
        trial = list(nodes)
        trial[i] = replace(nodes[i], kind=UNKNOWN, var="x")
        try:
            forms = linear_forms(trial)
        except NonLinearError:  # x would multiply itself in a third-layer product
            continue
        if forms[trial[-1].name][0] != 0:
            break
    else:
        raise RetryProblem
    unknown, query = trial[i], trial[-1]
    known = query.value
    trace = reverse_trace(trial, forms, known, unknown.value)
    return assemble(
        trial, extra, rng, context=ctx.key, mode="reverse", trace=trace, answer=unknown.value,
        question_text=reverse_question(query, unknown, known),
    )  # fmt: skip
