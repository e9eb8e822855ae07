"""A multi-turn environment where the policy may call tools between turns.

Each policy turn is parsed for a tool call (`parse`, pluggable; default the tag format of
`envs/tools/format.py`, `<code>...</code>`). A call runs in the episode's `ToolSession` (opened
on the first call, so episodes that never call cost nothing; closed by `close()`, which the
driver calls on every exit path), and its `ToolResult` is rendered (`render`, default
`<output>...</output>`) and tokenized as the observation the next turn continues from. A turn
with no call ends the episode; its reward is the run's task reward on the whole transcript
(`reward=None`: the driver scores it in the batched reward call).

Limits, each ending the episode with its own finish reason (counted in `env/finish/<reason>`):
a call beyond `max_tool_calls` ends it with "max_tool_calls" (the call is not run), a call in
the last allowed turn (`max_turns`) with "max_turns" (there would be no turn to read its
output); the token limit ("max_tokens") is the driver's (`EnvFactory.max_total_tokens`).

A failing call (the tool's `ok=False`, an unknown tool name, a session that raises) fails that
call only: the policy sees the error text as the observation and the episode goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from reasonrl.envs.base import StepResult
from reasonrl.envs.tools.base import Tool, ToolResult, ToolSession
from reasonrl.envs.tools.format import DEFAULT_FORMAT, ToolCall, call_tool
from reasonrl.types import Completion, Sample

ParseFn = Callable[[str], ToolCall | None]
RenderFn = Callable[[ToolResult], str]


class ToolEnv:
    """One tool-using episode on `sample` (see the module docstring)."""

    def __init__(
        self,
        sample: Sample,
        *,
        encode: Callable[[Sample], Sequence[int]],
        tokenize: Callable[[str], Sequence[int]],
        tools: Mapping[str, Tool],
        parse: ParseFn = DEFAULT_FORMAT.parse,
        render: RenderFn = DEFAULT_FORMAT.render,
        max_turns: int = 4,
        max_tool_calls: int = 4,
    ) -> None:
        self.sample = sample
        self._encode, self._tokenize = encode, tokenize
        self._tools = tools
        self._parse, self._render = parse, render
        self.max_turns, self.max_tool_calls = max_turns, max_tool_calls
        self.turns = self.tool_calls = 0
        self.sessions: dict[str, ToolSession] = {}
        self.closed = False

    def reset(self) -> Sequence[int]:
        return self._encode(self.sample)

    def step(self, action: Completion) -> StepResult:
        self.turns += 1
        if action.truncated:  # cut mid-turn: nothing to run
            return StepResult(done=True, finish_reason="length")
        call = self._parse(action.text)
        if call is None:  # the policy answered: the task reward scores the transcript
            return StepResult(done=True, finish_reason="stop")
        if self.tool_calls >= self.max_tool_calls:
            return StepResult(done=True, finish_reason="max_tool_calls")
        if self.turns >= self.max_turns:
            return StepResult(done=True, finish_reason="max_turns")
        self.tool_calls += 1
        result = self._call(call)
        text = self._render(result)
        metrics = {"tool_calls": 1.0, "tool_errors": float(not result.ok)}
        if not result.ok:
            metrics[f"tool_error/{result.error or 'unknown'}"] = 1.0
        return StepResult(
            observation=tuple(self._tokenize(text)), observation_text=text, metrics=metrics
        )

    def _call(self, call: ToolCall) -> ToolResult:
        """`format.call_tool` on this episode's sessions, opening the named tool's on first use
        (an unknown name or a malformed call is its `bad_call` result)."""
        tool = self._tools.get(call.name)
        if tool is not None and call.name not in self.sessions and call.error is None:
            try:
                self.sessions[call.name] = tool.open()
            except Exception as exc:  # a tool that cannot start fails this call only
                return ToolResult(f"tool error: {type(exc).__name__}", False, "unavailable")
        return call_tool(call, self.sessions)

    def close(self) -> None:
        """Close every session this episode opened (idempotent; a failing close is ignored so
        the others still close)."""
        self.closed = True
        sessions, self.sessions = self.sessions, {}
        for session in sessions.values():
            try:
                session.close()
            except Exception:  # best effort: the episode is over either way
                continue


class ToolEnvs:
    """EnvFactory of `ToolEnv`s sharing one set of tools (each episode opens its own sessions).

    parse, render, stop: the call format (default `format.DEFAULT_FORMAT`: `<code>` calls the
    tool named "python", `</code>` ends the turn); another `TagFormat`'s `parse`, `render` and
    `stop_strings`, or the chat format's parser, plug in here.
    """

    def __init__(
        self,
        *,
        encode: Callable[[Sample], Sequence[int]],
        tokenize: Callable[[str], Sequence[int]],
        tools: Sequence[Tool],
        parse: ParseFn = DEFAULT_FORMAT.parse,
        render: RenderFn = DEFAULT_FORMAT.render,
        stop: tuple[str, ...] = tuple(DEFAULT_FORMAT.stop_strings),
        max_turns: int = 4,
        max_tool_calls: int = 4,
        max_total_tokens: int | None = None,
    ) -> None:
        if not tools:
            raise ValueError("ToolEnvs needs at least one tool")
        self.encode, self.tokenize = encode, tokenize
        self.tools = {t.name: t for t in tools}
        self.parse, self.render, self.stop = parse, render, tuple(stop)
        self.max_turns, self.max_tool_calls = max_turns, max_tool_calls
        self.max_total_tokens = max_total_tokens

    def __call__(self, sample: Sample) -> ToolEnv:
        return ToolEnv(
            sample,
            encode=self.encode,
            tokenize=self.tokenize,
            tools=self.tools,
            parse=self.parse,
            render=self.render,
            max_turns=self.max_turns,
            max_tool_calls=self.max_tool_calls,
        )
