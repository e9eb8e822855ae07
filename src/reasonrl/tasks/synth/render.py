"""Render a generated graph as problem statements, a question, a solution trace and model text.

`assemble` turns the drawn nodes, trace and question of either mode into a SynthProblem.

Trace grammar (kept from the generator of arXiv 2512.07783 so its parser and rewards apply):
one "Define <name> as <V>; <steps>." per needed quantity in topological order, where steps are
"<var> = <symbols> = <numbers> = <result>" joined by "; " and the last step starts with "so";
a sum of more than two quantities goes through intermediate letters. The trace ends "Answer: N.".

Model text (arXiv 2512.07783 §6.1 training format):
    training text = "<question> {problem} {question} </question> <solution> {trace} </solution>
                     <answer> {answer} </answer>"
    RL prompt     = "<question> {problem} {question} </question> <solution>"
    completion    = " {trace} </solution> <answer> {answer} </answer>"  (then EOS)
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

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
    count_ops,
)
from reasonrl.tasks.synth.problem import SynthProblem

UNKNOWN_CLAUSE = "we don't know its value yet but will find it out later"


def _join_names(names: Sequence[str]) -> str:
    """ "A and B" or "A, B, and C" (Oxford comma, as in the upstream statements)."""
    if len(names) == 2:
        return f"{names[0]} and {names[1]}"
    return ", ".join(names[:-1]) + f", and {names[-1]}"


def statement(node: GoldNode) -> str | None:
    """The problem sentence that defines `node` (None for a TOTAL: it is implicit)."""
    head = f"The {node.name}" if node.layer == 2 else f"The number of {node.name}"
    p = node.parents
    if node.kind == CONST:
        return f"{head} equals {node.const}."
    if node.kind == UNKNOWN:
        return f"{head} exists, and its number is greater than 0."
    if node.kind == ALIAS:
        return f"{head} equals {p[0]}."
    if node.kind == CONST_PLUS:
        return f"{head} equals {node.const} plus {p[0]}."
    if node.kind == CONST_TIMES:
        return f"{head} equals {node.const} times {p[0]}."
    if node.kind == SUM:
        return f"{head} equals the sum of {_join_names(p)}."
    if node.kind == DIFF:
        return f"{head} equals the difference between {p[0]} and {p[1]}."
    if node.kind in (TOTAL, UNIT_TOTAL):
        return None
    raise ValueError(f"cannot render node kind {node.kind!r} of {node.name!r}")


def question(node: GoldNode) -> str:
    """The question about the query node (the last node of the topological order)."""
    if node.kind in (TOTAL, UNIT_TOTAL) or node.layer == 2:
        return f"What is the {node.name}?"
    return f"How many {node.item} does {node.place} have?"


def _sum_steps(
    out: str, syms: Sequence[str], texts: Sequence[str], results: Sequence[str], aux: Sequence[str]
) -> list[str]:
    """Binary chain for a sum: a1 = s0 + s1; a2 = a1 + s2; ...; last step assigns `out`."""
    if len(syms) == 1:
        return [f"{out} = {syms[0]} = {texts[0]}"]
    steps: list[str] = []
    acc_sym, acc_text = syms[0], texts[0]
    for i in range(1, len(syms)):
        lhs = out if i == len(syms) - 1 else aux[i - 1]
        steps.append(f"{lhs} = {acc_sym} + {syms[i]} = {acc_text} + {texts[i]} = {results[i - 1]}")
        acc_sym, acc_text = lhs, results[i - 1]
    return steps


def _unit_total_steps(
    node: GoldNode, syms: Sequence[str], wrapped: Sequence[str], result: Sequence[str]
) -> list[str]:
    """Products count * average per kind (letters aux[:k]), then their sum chain into node.var.

    `result` holds the k product texts followed by the k - 1 partial sums.
    """
    k = len(syms) // 2
    prods = [node.var] if k == 1 else list(node.aux_vars[:k])
    steps = [
        f"{prods[i]} = {syms[2 * i]} * {syms[2 * i + 1]} = "
        f"{wrapped[2 * i]} * {wrapped[2 * i + 1]} = {result[i]}"
        for i in range(k)
    ]
    if k > 1:
        steps += _sum_steps(node.var, prods, result[:k], result[k:], node.aux_vars[k:])
    return steps


def unit_total_results(products: Sequence[str], partials: Sequence[str]) -> list[str]:
    """Result texts of a UNIT_TOTAL: the products, then the running sums (if > 1 product)."""
    return [*products, *(partials if len(products) > 1 else [])]


def node_steps(
    node: GoldNode, var_of: dict[str, str], text_of: Callable[[str], str], result: list[str]
) -> str:
    """The "...; so V = ... = r" part of one Define sentence.

    Args:
        node: the node to render. var_of: quantity name -> variable letter.
        text_of: quantity name -> its value as written in the trace ("7", or "x + 3" in reverse).
        result: value texts of the partial results, one per step (sum chains have several).
    """
    v = node.var
    syms = [var_of[p] for p in node.parents]
    texts = [text_of(p) for p in node.parents]
    # Symbolic values (reverse mode, "x + 3") need brackets as a factor or a subtrahend.
    wrapped = [f"({t})" if " " in t else t for t in texts]
    if node.kind == CONST:
        steps = [f"{v} = {result[-1]}"]
    elif node.kind == UNKNOWN:
        return UNKNOWN_CLAUSE
    elif node.kind == ALIAS:
        steps = [f"{v} = {syms[0]} = {texts[0]}"]
    elif node.kind in (CONST_PLUS, CONST_TIMES):
        op = "+" if node.kind == CONST_PLUS else "*"
        c = node.const
        arg = wrapped[0] if op == "*" else texts[0]
        steps = [f"{v} = {c} {op} {syms[0]} = {c} {op} {arg} = {result[-1]}"]
    elif node.kind == DIFF:
        steps = [f"{v} = {syms[0]} - {syms[1]} = {texts[0]} - {wrapped[1]} = {result[-1]}"]
    elif node.kind in (SUM, TOTAL):
        steps = _sum_steps(v, syms, texts, result, node.aux_vars)
    elif node.kind == UNIT_TOTAL:
        steps = _unit_total_steps(node, syms, wrapped, result)
    else:
        raise ValueError(f"cannot render node kind {node.kind!r} of {node.name!r}")
    steps[-1] = "so " + steps[-1]
    return "; ".join(steps)


def partial_sums(values: Sequence[int]) -> list[int]:
    """Running sums after each addition: [v0+v1, v0+v1+v2, ...] (one per sum-chain step)."""
    out: list[int] = []
    acc = values[0]
    for val in values[1:]:
        acc += val
        out.append(acc)
    return out or [acc]


def forward_trace(nodes: Sequence[GoldNode], answer: int) -> str:
    """Trace of a forward problem: one Define sentence per node, then "Answer: N."."""
    var_of = {n.name: n.var for n in nodes}
    value_of = {n.name: n.value for n in nodes}
    parts = []
    for node in nodes:
        if node.kind in (SUM, TOTAL):
            result = [str(s) for s in partial_sums([value_of[p] for p in node.parents])]
        elif node.kind == UNIT_TOTAL:
            vals = [value_of[p] for p in node.parents]
            prods = [c * u for c, u in zip(vals[0::2], vals[1::2])]
            result = unit_total_results(
                [str(x) for x in prods], [str(s) for s in partial_sums(prods)]
            )
        else:
            result = [str(node.value)]
        steps = node_steps(node, var_of, lambda name: str(value_of[name]), result)
        parts.append(f"Define {node.name} as {node.var}; {steps}.")
    parts.append(f"Answer: {answer}.")
    return " ".join(parts)


def assemble(
    nodes: list[GoldNode], extra: list[GoldNode], rng: random.Random, *, context: str, mode: str,
    trace: str, answer: int, question_text: str,
) -> SynthProblem:  # fmt: skip
    """Shuffle the statements of needed and distractor nodes into a SynthProblem."""
    sentences = [s for n in (*nodes, *extra) if (s := statement(n)) is not None]
    rng.shuffle(sentences)
    return SynthProblem(
        problem=" ".join(sentences),
        question=question_text,
        trace=trace,
        answer=answer,
        op=count_ops(nodes),
        context=context,
        mode=mode,
        nodes=tuple(nodes),
        distractors=tuple(extra),
    )


def prompt_text(problem: SynthProblem) -> str:
    """RL prompt: "<question> {problem} {question} </question> <solution>"."""
    return f"<question> {problem.problem} {problem.question} </question> <solution>"


def completion_text(problem: SynthProblem) -> str:
    """Gold completion: " {trace} </solution> <answer> {answer} </answer>" (EOS not included)."""
    return f" {problem.trace} </solution> <answer> {problem.answer} </answer>"


def training_text(problem: SynthProblem) -> str:
    """Pre-training text = prompt_text + completion_text (EOS not included)."""
    return prompt_text(problem) + completion_text(problem)
