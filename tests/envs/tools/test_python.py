"""The sandboxed Python tool: state within an episode, isolation between episodes, and hostile
code failing one call only (the session and the next session keep working)."""

from __future__ import annotations

import pytest

from reasonrl.envs.tools import PythonTool, Tool, ToolSession
from reasonrl.envs.tools.python import split_cell, to_tool_result, truncate
from reasonrl.rewards.sandbox import SandboxLimits, SandboxResult, detect_mode
from reasonrl.rewards.sandbox.result import Isolation

needs_sandbox = pytest.mark.skipif(
    detect_mode() in ("uid", "none"), reason="no namespaces here: the tool refuses to run"
)
# short limits keep the hostile cases fast; the memory cap is the sandbox default's
FAST = SandboxLimits(wall_s=1.5, cpu_s=1.5, nproc=16, output_bytes=1 << 14)


def test_protocol() -> None:
    tool = PythonTool()
    assert isinstance(tool, Tool) and tool.name == "python"
    assert isinstance(tool.open(), ToolSession)


def test_split_cell_echoes_the_last_expression_only() -> None:
    assert split_cell("x = 1\nx + 1") == ("x = 1\n", "x + 1")
    assert split_cell("x = 1; x") == ("x = 1; ", "x")
    assert split_cell("x = 1") == ("x = 1", None)
    assert split_cell("(1 +\n 2)") == ("", "(1 +\n 2)")
    with pytest.raises(SyntaxError):
        split_cell("(1 +")
    with pytest.raises(SyntaxError):
        split_cell("x = '\0'\x00")


def test_verdict_mapping_without_a_sandbox() -> None:
    iso = Isolation(mode="root")

    def res(status: str, out: str = "", err: str = "") -> SandboxResult:
        return SandboxResult(status, 1, out, err, 0.1, iso)  # type: ignore[arg-type]

    tb = 'Traceback (most recent call last):\n  File "<cell>", line 1\nKeyError: 3\n'
    assert to_tool_result(res("error", "partial", tb), 100).error == "exception"
    assert to_tool_result(res("error", "partial", tb), 100).output == "partial\nKeyError: 3"
    assert to_tool_result(res("error", "", "x\nMemoryError\n"), 100).error == "memory"
    for kind in ("timeout", "memory", "output_limit", "unavailable"):
        got = to_tool_result(res(kind), 100)
        assert not got.ok and got.error == kind
    assert to_tool_result(res("ok", "a" * 50), 10).output.startswith("a" * 10 + "\n... [40 more")
    assert truncate("abc", 3) == "abc"


@needs_sandbox
def test_state_persists_in_a_session_and_is_gone_in_a_new_one() -> None:
    tool = PythonTool(limits=FAST)
    s = tool.open()
    first = s.call("x = 312 * 417\nprint('computed')")
    assert first.ok and first.output == "computed"  # earlier cells' output is not repeated
    assert s.call("def f(a):\n    return a + x\n").ok
    got = s.call("f(1)")
    assert got.ok and got.output == "130105"
    assert s.call("1 / 0").error == "exception"  # a failed cell is not replayed ...
    assert s.call("x").output == "130104"  # ... and the state survives it
    assert s.call("None").output == ""  # like the REPL: None is not echoed
    other = tool.open().call("x")
    assert not other.ok and other.error == "exception" and "NameError" in other.output
    s.close()
    closed = s.call("x")
    assert not closed.ok and closed.error == "unavailable"


@needs_sandbox
def test_errors_and_output_limits() -> None:
    s = PythonTool(limits=FAST, max_output_chars=20).open()
    bad = s.call("(1 +")
    assert bad.error == "syntax" and bad.output.startswith("SyntaxError")
    exc = s.call("print('before')\n{}['k']")
    assert exc.error == "exception" and exc.output == "before\nKeyError: 'k'"
    cut = s.call("print('y' * 100)")
    assert cut.ok and cut.output.startswith("y" * 20 + "\n... [80 more characters]")
    flood = s.call("while True: print('z' * 1000)")
    assert not flood.ok and flood.error == "output_limit"
    assert s.call("7 * 6").output == "42"


@needs_sandbox
@pytest.mark.parametrize(
    ("code", "kinds"),
    [
        ("import os\nwhile True:\n    os.fork()", {"exception", "timeout"}),  # fork bomb
        ("while True:\n    pass", {"timeout"}),  # infinite loop
        ("import time\ntime.sleep(60)", {"timeout"}),
        ("b = bytearray(8 << 30)", {"memory"}),  # one huge allocation
        ("xs = []\nwhile True:\n    xs.append(bytearray(1 << 26))", {"memory"}),  # growth
        (
            "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=1)",
            {"exception"},
        ),  # network
        ("import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=1)", {"exception"}),
    ],
    ids=["fork_bomb", "infinite_loop", "sleep", "memory_bomb", "memory_growth", "net", "loopback"],
)
def test_hostile_code_fails_that_call_only(code: str, kinds: set[str]) -> None:
    # filling 512 MB takes ~1 s on a loaded 2-core machine: give "memory" room to win the race
    limits = SandboxLimits(wall_s=6.0, cpu_s=6.0) if kinds == {"memory"} else FAST
    tool = PythonTool(limits=limits)
    s = tool.open()
    assert s.call("keep = 41").ok
    hostile = s.call(code)
    assert not hostile.ok and hostile.error in kinds, hostile
    after = s.call("keep + 1")  # the same session goes on, its state intact
    assert after.ok and after.output == "42", after
    fresh = tool.open().call("2 + 2")  # and so does a new one
    assert fresh.ok and fresh.output == "4"
