"""Countdown checker: reach the target with + - * / using the given numbers, each exactly once.

Convention (the d1 / TinyZero one, dllm-reasoning/d1 `diffu-grpo/reward_func.py`): the equation is
the content of the last `<answer>...</answer>`, and the multiset of integer literals in it must
equal the multiset of given numbers: *all* numbers are used, each exactly once. d1 gives 1.0 for
a correct equation and a format score of 0.1 for a found but wrong one; here the format score is
a keyword (default 0.0: a purely verifiable reward). d1 compares floats with 1e-5; here the
arithmetic is exact (fractions), so 7/3*3 equals 7 and division by zero is simply wrong.

Safety: the expression is parsed with `ast` and walked; only integer literals, + - * /, unary
minus/plus and parentheses are accepted (no names, calls or attributes; no `eval`). Exponents are
not an operator here, so no expression can blow up in size; the text length is capped too.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from fractions import Fraction

from reasonrl.text import parse_python
from reasonrl.types import Completion, RewardResult, Sample

_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
MAX_EQUATION_CHARS = 200


class CountdownError(ValueError):
    """The equation is not a valid countdown expression (reason in the message)."""


def _walk(node: ast.AST, used: list[int]) -> Fraction:
    if isinstance(node, ast.Expression):
        return _walk(node.body, used)
    if isinstance(node, ast.Constant):
        if type(node.value) is not int:  # bool is an int subclass: excluded by `type is`
            raise CountdownError(f"only integer literals are allowed, got {node.value!r}")
        used.append(node.value)
        return Fraction(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _walk(node.operand, used)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub | ast.Mult | ast.Div):
        left, right = _walk(node.left, used), _walk(node.right, used)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        if right == 0:
            raise CountdownError("division by zero")
        return left / right
    raise CountdownError(f"disallowed syntax: {type(node).__name__}")


def evaluate_equation(expression: str) -> tuple[Fraction, list[int]]:
    """Exact value of an arithmetic expression and the integer literals it uses, in order.

    `x` and `×` are read as `*`, `÷` as `/`. Raises `CountdownError` on anything else.
    """
    if len(expression) > MAX_EQUATION_CHARS:
        raise CountdownError(f"equation longer than {MAX_EQUATION_CHARS} characters")
    text = expression.replace("×", "*").replace("x", "*").replace("÷", "/").strip()
    try:
        tree = parse_python(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise CountdownError(f"unparsable equation: {type(exc).__name__}") from None
    used: list[int] = []
    return _walk(tree, used), used


def extract_equation(text: str) -> str | None:
    """The last `<answer>...</answer>` content; a trailing `= value` is dropped."""
    found = _ANSWER_RE.findall(text)
    if not found:
        return None
    equation = found[-1].strip()
    return equation.split("=")[0].strip() or None


def check_countdown(equation: str, numbers: list[int], target: int | Fraction) -> tuple[bool, str]:
    """Whether `equation` uses all `numbers` exactly once and evaluates exactly to `target`.

    Returns:
        (correct, reason) where reason is "ok" or why it is wrong.
    """
    try:
        value, used = evaluate_equation(equation)
    except CountdownError as exc:
        return False, str(exc)
    if Counter(used) != Counter(numbers):
        return False, f"numbers used {sorted(used)} != given {sorted(numbers)}"
    if value != Fraction(target):
        return False, f"evaluates to {value}, target {target}"
    return True, "ok"


def countdown_reward(
    sample: Sample, completion: Completion, *, format_score: float = 0.0
) -> RewardResult | None:
    """1.0 for a correct countdown equation, `format_score` for a found but wrong one, else 0.

    Needs `sample.meta["numbers"]` (list[int]) and `sample.meta["target"]` (int); not
    applicable (None) otherwise.
    """
    numbers, target = sample.meta.get("numbers"), sample.meta.get("target")
    if numbers is None or target is None:
        return None
    equation = extract_equation(completion.text)
    if equation is None:
        return RewardResult(score=0.0, info={"reason": "no <answer> equation"}, outcome=False)
    ok, reason = check_countdown(equation, list(numbers), target)
    # no `answer`: many different equations are right, so a vote over them means nothing
    info = {"equation": equation, "reason": reason}
    return RewardResult(score=1.0 if ok else format_score, info=info, outcome=ok)
