"""A safe arithmetic calculator: an AST walk over + - * / // % ** and brackets; no `eval`.

Grammar: int and float literals (no bools, complex, names, calls, attributes, subscripts),
binary + - * / // % **, unary + -, parentheses. Bounds, so a model-written expression cannot hang
or exhaust the host: at most `max_chars` characters; |exponent| <= `max_exponent`; every integer
intermediate at most `max_bits` bits (checked before a power or product is computed, from the
operands' sizes). Python semantics otherwise (true division gives a float).

Errors (`ToolResult.error`): "syntax" (unparseable, or a construct outside the grammar),
"exception" (ZeroDivisionError, OverflowError, a refused size: output "<Error>: <message>"),
"bad_call" (longer than `max_chars`). Output: `repr` of the value, as the Python tool echoes it.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reasonrl.envs.tools.base import ToolResult
from reasonrl.text import parse_python

Number = int | float
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


class CalcError(Exception):
    """A refused or failed evaluation; `kind` is the ToolResult error kind."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _bits(x: Number) -> int:
    return abs(x).bit_length() if isinstance(x, int) else 0


@dataclass(frozen=True)
class Limits:
    """Bounds of one evaluation (see the module docstring)."""

    max_chars: int = 1000
    max_exponent: int = 1000
    max_bits: int = 4096


def _check_size(op: type[ast.operator], a: Number, b: Number, lim: Limits) -> None:
    if op is ast.Pow:
        if isinstance(b, int) and abs(b) > lim.max_exponent:
            raise CalcError("exception", f"OverflowError: exponent {b} exceeds {lim.max_exponent}")
        if isinstance(a, int) and isinstance(b, int) and b > 0 and _bits(a) * b > lim.max_bits:
            raise CalcError("exception", f"OverflowError: result exceeds {lim.max_bits} bits")
    if op is ast.Mult and _bits(a) + _bits(b) > lim.max_bits:
        raise CalcError("exception", f"OverflowError: result exceeds {lim.max_bits} bits")


def _eval(node: ast.AST, lim: Limits) -> Number:
    if isinstance(node, ast.Expression):
        return _eval(node.body, lim)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise CalcError("syntax", f"SyntaxError: unsupported literal {node.value!r}")
        if _bits(node.value) > lim.max_bits:
            raise CalcError("exception", f"OverflowError: literal exceeds {lim.max_bits} bits")
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand, lim))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        a, b = _eval(node.left, lim), _eval(node.right, lim)
        _check_size(type(node.op), a, b, lim)
        try:
            value = _BINARY[type(node.op)](a, b)
        except ZeroDivisionError as err:
            raise CalcError("exception", f"ZeroDivisionError: {err}") from None
        except OverflowError as err:
            raise CalcError("exception", f"OverflowError: {err}") from None
        if isinstance(value, complex):
            raise CalcError("exception", "ValueError: complex result")
        if isinstance(value, float) and not math.isfinite(value):
            raise CalcError("exception", "OverflowError: result is not finite")
        return value
    raise CalcError("syntax", f"SyntaxError: unsupported expression ({type(node).__name__})")


def calculate(expression: str, limits: Limits | None = None) -> ToolResult:
    """Evaluate an arithmetic expression; never raises (errors are a ToolResult with ok=False)."""
    lim = limits or Limits()
    text = str(expression).strip()
    if len(text) > lim.max_chars:
        return ToolResult(f"expression longer than {lim.max_chars} characters", False, "bad_call")
    try:
        tree = parse_python(text, mode="eval")
        return ToolResult(repr(_eval(tree, lim)))
    except CalcError as err:
        return ToolResult(str(err), ok=False, error=err.kind)
    except SyntaxError as err:
        return ToolResult(f"SyntaxError: {err.msg}", ok=False, error="syntax")
    except (ValueError, RecursionError, MemoryError) as err:  # null bytes, absurd nesting
        return ToolResult(f"SyntaxError: {type(err).__name__}", ok=False, error="syntax")


@dataclass
class CalculatorSession:
    """A stateless session (the protocol's shape): each call evaluates one expression."""

    limits: Limits

    def call(self, arguments: str) -> ToolResult:
        return calculate(arguments, self.limits)

    def close(self) -> None:
        return None


@dataclass(frozen=True)
class CalculatorTool:
    """The calculator tool; `open()` gives a (stateless) session."""

    limits: Limits = Limits()
    name: str = "calculator"
    description: str = (
        "Evaluate an arithmetic expression: numbers, + - * / // % ** and parentheses."
    )
    argument: str = "expression"

    def open(self) -> CalculatorSession:
        return CalculatorSession(self.limits)
