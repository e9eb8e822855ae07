"""The AST calculator: Python's arithmetic, bounded, and nothing else."""

from __future__ import annotations

import pytest

from reasonrl.envs.tools import CalculatorTool, Tool, calculate
from reasonrl.envs.tools.calculator import Limits


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ("312 * 417", "130104"),
        ("(1 + 2) * 3 - 4 / 2", "7.0"),
        ("-(3 - 5) // 2", "1"),
        ("7 % 3 + 2 ** 10", "1025"),
        ("10 ** -2", "0.01"),
        ("  1.5 * 2 ", "3.0"),
        ("-7 // 2", "-4"),  # Python's floor division
    ],
)
def test_arithmetic(expr: str, want: str) -> None:
    got = calculate(expr)
    assert got.ok and got.output == want and got.output == repr(eval(expr))


@pytest.mark.parametrize(
    ("expr", "kind", "text"),
    [
        ("1 / 0", "exception", "ZeroDivisionError"),
        ("5 % 0", "exception", "ZeroDivisionError"),
        ("7 // 0", "exception", "ZeroDivisionError"),
        ("0 ** -1", "exception", "ZeroDivisionError"),
        ("2 ** 10000", "exception", "exponent 10000 exceeds 1000"),  # refused, not computed
        ("9 ** 9 ** 9", "exception", "exceeds"),  # 9 ** 387420489 is never attempted
        ("(10 ** 999) * (10 ** 999) * (10 ** 999)", "exception", "exceeds 4096 bits"),
        ("2.0 ** 5000", "exception", "exponent"),
        ("1e308 * 10", "exception", "not finite"),
        ("(-8) ** 0.5", "exception", "complex"),
        ("__import__('os').system('true')", "syntax", "Call"),
        ("x + 1", "syntax", "Name"),
        ("True + 1", "syntax", "literal"),
        ("'a' * 3", "syntax", "literal"),
        ("1 < 2", "syntax", "Compare"),
        ("(1 +", "syntax", "SyntaxError"),
        ("", "syntax", "SyntaxError"),
        ("1\x00", "syntax", "SyntaxError"),
        ("(" * 300 + "1" + ")" * 300, "syntax", "SyntaxError"),
        ("1 + " * 400 + "1", "bad_call", "longer than"),
    ],
)
def test_refusals(expr: str, kind: str, text: str) -> None:
    got = calculate(expr)
    assert not got.ok and got.error == kind and text in got.output, got


def test_limits_are_configurable_and_the_tool_is_a_tool() -> None:
    assert calculate("2 ** 20", Limits(max_exponent=10)).error == "exception"
    tool = CalculatorTool()
    assert isinstance(tool, Tool) and tool.name == "calculator"
    session = tool.open()
    assert session.call("6 * 7").output == "42"
    session.close()
