"""The tool seam: what an environment calls when the policy asks for a computation.

A `Tool` is opened once per episode (`open()` returns a `ToolSession` holding that episode's
state, e.g. a Python interpreter's variables) and closed when the episode ends, whatever way
it ends. A call never raises for bad model-written input: it returns a `ToolResult` with
`ok=False` and an `error` kind, so one failing call fails that call only, not the episode or
the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class ToolResult:
    """The answer to one tool call.

    output: the text shown to the policy (inserted as observation tokens, never trained on).
    ok: the call ran and produced a result.
    error: None when ok, else a short kind: "timeout", "memory", "syntax", "exception",
        "output_limit", "unavailable", "bad_call" (unparseable / unknown tool), ...
    """

    output: str
    ok: bool = True
    error: str | None = None


@runtime_checkable
class ToolSession(Protocol):
    """One episode's view of a tool: state persists across `call`s until `close`."""

    def call(self, arguments: str) -> ToolResult: ...

    def close(self) -> None: ...


@runtime_checkable
class Tool(Protocol):
    """A named tool; `open()` starts a fresh per-episode session."""

    name: str

    def open(self) -> ToolSession: ...
