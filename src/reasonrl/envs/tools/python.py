"""A stateful Python interpreter per episode, run in the code sandbox (docs/sandbox.md).

Design: **replay**. A session keeps the source of its episode's previous *successful* cells; each
call starts a fresh sandbox (`rewards.sandbox.run_python`: same isolation, limits and verdicts as
the code rewards) that re-executes those cells with their output discarded, then runs the new
cell like a REPL: its stdout, and the `repr` of its last statement when that is an expression
(and not None), are the call's output. So variables, functions and imports persist across calls
within an episode, and nothing survives `close()` (there is no process to leak: every call's
process tree is killed when the call ends).

Costs and caveats, stated because they are real:
- a call costs one sandbox start (~40 ms here) plus the re-execution of every earlier successful
  cell, so an episode of n calls costs O(n^2) cell executions; the limits (wall clock, CPU,
  memory) apply to the replay and the new cell together;
- side effects re-run: randomness, time, files written in the private /tmp (which starts empty
  on every call) are recomputed; a cell that succeeded once but fails on replay (e.g. random)
  fails the new call with its traceback ("exception");
- a cell that failed (exception, timeout, ...) is not kept: its partial assignments are lost.

Verdicts (`ToolResult.error`): "syntax" (checked on the host before any sandbox starts),
"exception" (output: the cell's stdout, then the last traceback line), "timeout", "memory"
(the watchdog, or a `MemoryError` inside), "output_limit" (the sandbox's byte cap; the call is
killed), "unavailable" (no isolated sandbox on this host, or the session is closed). A successful
call's output longer than `max_output_chars` is cut, with a note of how much was dropped.
"""

from __future__ import annotations

import ast
import threading
from dataclasses import dataclass, field

from reasonrl.envs.tools.base import ToolResult
from reasonrl.rewards.sandbox import SandboxLimits, SandboxResult, run_python
from reasonrl.text import parse_python

# Tighter than the code rewards' defaults: a tool call is one step of an episode, not a program
# with test cases; the byte cap stops a runaway print early (the model sees max_output_chars).
DEFAULT_LIMITS = SandboxLimits(wall_s=5.0, cpu_s=5.0, output_bytes=1 << 16)

# Runs inside the sandbox. {cells}, {body}, {expr} are Python string literals (repr). Earlier
# cells run with stdout/stderr swallowed; the new cell's last expression is echoed like a REPL.
_PROGRAM = """\
import sys as __rrl_sys
def __rrl_replay(cells, g):
    import io
    keep = __rrl_sys.stdout, __rrl_sys.stderr
    __rrl_sys.stdout = __rrl_sys.stderr = io.StringIO()
    try:
        for i, src in enumerate(cells):
            exec(compile(src, "<cell %d>" % (i + 1), "exec"), g)
    finally:
        __rrl_sys.stdout, __rrl_sys.stderr = keep
__rrl_replay({cells}, globals())
del __rrl_replay, __rrl_sys
exec(compile({body}, "<cell>", "exec"), globals())
"""
_ECHO = """\
__rrl_value = eval(compile({expr}, "<cell>", "eval"), globals())
if __rrl_value is not None:
    print(repr(__rrl_value))
del __rrl_value
"""


def split_cell(code: str) -> tuple[str, str | None]:
    """(statements, last expression or None) of a cell, like the REPL's echo of a value.

    Raises SyntaxError (also for null bytes or absurd nesting) when the cell does not parse.
    """
    try:
        tree = parse_python(code)
    except (ValueError, RecursionError, MemoryError) as err:  # null bytes, deep nesting
        raise SyntaxError(str(err) or type(err).__name__) from None
    body = tree.body  # type: ignore[attr-defined]
    if not body or not isinstance(body[-1], ast.Expr):
        return code, None
    last = body[-1]
    expr = ast.get_source_segment(code, last)
    if expr is None:  # pragma: no cover - get_source_segment fails only on broken positions
        return code, None
    lines = code.splitlines(keepends=True)
    head = lines[last.lineno - 1]
    col = len(head.encode("utf-8")[: last.col_offset].decode("utf-8", errors="replace"))
    return "".join(lines[: last.lineno - 1]) + head[:col], expr


def truncate(text: str, max_chars: int) -> str:
    """`text` cut to `max_chars` characters, with a note of how many were dropped."""
    if len(text) <= max_chars:
        return text
    return text[:max_chars] + f"\n... [{len(text) - max_chars} more characters]"


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else ""


def to_tool_result(res: SandboxResult, max_chars: int) -> ToolResult:
    """Map a sandbox verdict to a ToolResult (see the module docstring for the kinds)."""
    out = truncate(res.stdout, max_chars)
    if res.status == "ok":
        return ToolResult(out)
    if res.status == "unavailable":
        return ToolResult("sandbox unavailable", ok=False, error="unavailable")
    if res.status in ("timeout", "memory", "output_limit"):
        return ToolResult(out, ok=False, error=res.status)
    last = _last_line(res.stderr) or f"exit status {res.returncode}"
    kind = "memory" if last.startswith("MemoryError") else "exception"
    return ToolResult(f"{out}\n{last}" if out else last, ok=False, error=kind)


@dataclass
class PythonSession:
    """One episode's interpreter (see the module docstring): `call(code)`, then `close()`."""

    limits: SandboxLimits = DEFAULT_LIMITS
    max_output_chars: int = 1000
    require_isolation: bool = True
    python: str | None = None
    cells: list[str] = field(default_factory=list)
    closed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def call(self, arguments: str) -> ToolResult:
        """Run one cell; never raises for anything the code does."""
        if self.closed:
            return ToolResult("session closed", ok=False, error="unavailable")
        code = str(arguments)
        try:
            body, expr = split_cell(code)
        except SyntaxError as err:
            return ToolResult(f"SyntaxError: {err.msg}", ok=False, error="syntax")
        with self._lock:  # calls of one episode are sequential; the lock makes that explicit
            program = _PROGRAM.format(cells=repr(self.cells), body=repr(body))
            if expr is not None:
                program += _ECHO.format(expr=repr(expr))
            res = run_python(
                program,
                limits=self.limits,
                require_isolation=self.require_isolation,
                python=self.python,
            )
            result = to_tool_result(res, self.max_output_chars)
            if result.ok:
                self.cells.append(code)
        return result

    def close(self) -> None:
        """Forget the episode's state; later calls answer "unavailable"."""
        self.cells.clear()
        self.closed = True


@dataclass(frozen=True)
class PythonTool:
    """The sandboxed Python interpreter tool; `open()` gives a fresh per-episode session.

    limits: sandbox limits of one call (replay included). max_output_chars: the output shown to
    the policy is cut there. require_isolation: refuse ("unavailable") without namespaces.
    """

    limits: SandboxLimits = DEFAULT_LIMITS
    max_output_chars: int = 1000
    require_isolation: bool = True
    python: str | None = None
    name: str = "python"
    description: str = (
        "Run Python code in a stateful sandboxed interpreter (no network, no packages beyond the "
        "standard library). Variables persist across calls within the episode. Returns stdout "
        "and the value of the last expression."
    )
    argument: str = "code"

    def open(self) -> PythonSession:
        return PythonSession(
            limits=self.limits,
            max_output_chars=self.max_output_chars,
            require_isolation=self.require_isolation,
            python=self.python,
        )
