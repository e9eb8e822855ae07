"""Tool-call formats: how a policy's text names a tool call, and how the answer is shown to it.

(a) Tag format (AgentMath, arXiv 2512.20745 §5.1, with `<output>` for its `<interpreter>`): the
policy writes `<code>...</code>`; generation stops at the closing tag (`TagFormat.stop_strings`),
the environment runs the code and inserts `render(result)` = `<output>...</output>` as
observation tokens (masked from the loss), and generation resumes. Tag names are configurable,
and several call tags may name different tools (`tags=(("code", "python"), ("calc",
"calculator"))`).

(b) Chat-template tool calls for HF chat models (Qwen2.5 / Hermes style): `tool_spec(tool)` is the
JSON-schema function spec to pass as `tokenizer.apply_chat_template(..., tools=[...])`; the model
answers `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`, parsed by
`parse_chat_tool_calls`; malformed JSON, an unknown argument or a truncated call is a `ToolCall`
with `error` set, which `call_tool` answers with a `bad_call` result instead of running anything.
The answer goes back as a `{"role": "tool", ...}` message (`tool_message`).
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from reasonrl.envs.tools.base import ToolResult, ToolSession


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call parsed from the policy's text.

    name: the tool's name. arguments: the string passed to `ToolSession.call` (code, an
    expression). error: None for a well-formed call; else why it is malformed (the call is
    answered with a "bad_call" result and no tool runs).
    """

    name: str
    arguments: str
    error: str | None = None


class DescribedTool(Protocol):
    """What `tool_spec` reads from a tool (PythonTool and CalculatorTool have all three)."""

    name: str
    description: str
    argument: str


def clean_code(body: str) -> str:
    """A call body as code: surrounding blank lines dropped, common indentation removed."""
    return textwrap.dedent(body.strip("\n")).strip()


def error_text(result: ToolResult) -> str:
    """What the policy reads for a result: the output, or "error: <kind>" then the output."""
    if result.ok:
        return result.output
    head = f"error: {result.error or 'unknown'}"
    return f"{head}\n{result.output}" if result.output else head


@dataclass(frozen=True)
class TagFormat:
    """The tag format (a). tags: (call tag, tool name) pairs; output_tag: the answer's tag."""

    tags: tuple[tuple[str, str], ...] = (("code", "python"),)
    output_tag: str = "output"

    @property
    def stop_strings(self) -> list[str]:
        """The closing call tags: stop generation there so the environment can answer."""
        return [f"</{tag}>" for tag, _ in self.tags]

    def parse(self, text: str, *, require_end: bool = True) -> ToolCall | None:
        """The last complete call of a turn, or None (the turn is not a tool call).

        require_end: only a turn that ends (after whitespace) with a closing call tag is a call,
        as when generation stopped at `stop_strings`; False: the last complete call anywhere.
        """
        text = str(text)
        best: tuple[int, ToolCall] | None = None
        for tag, tool in self.tags:
            close = f"</{tag}>"
            end = text.rfind(close)
            if end < 0 or (require_end and text[end + len(close) :].strip()):
                continue
            start = text.rfind(f"<{tag}>", 0, end)
            if start < 0:
                continue
            call = ToolCall(tool, clean_code(text[start + len(tag) + 2 : end]))
            if best is None or end > best[0]:
                best = (end, call)
        return None if best is None else best[1]

    def render(self, result: ToolResult) -> str:
        """The observation inserted after a call: "\\n<output>\\n{text}\\n</output>\\n"."""
        return f"\n<{self.output_tag}>\n{error_text(result)}\n</{self.output_tag}>\n"


DEFAULT_FORMAT = TagFormat()


def parse_tool_call(text: str, fmt: TagFormat = DEFAULT_FORMAT) -> ToolCall | None:
    """`fmt.parse(text)`: the last complete call of a turn ending with a closing call tag."""
    return fmt.parse(text)


def render_observation(result: ToolResult, fmt: TagFormat = DEFAULT_FORMAT) -> str:
    """`fmt.render(result)`: the `<output>...</output>` observation text."""
    return fmt.render(result)


# ---- (b) chat-template tool calls -------------------------------------------------------------

_TOOL_CALL = re.compile(r"<tool_call>(.*?)(</tool_call>|$)", re.DOTALL)
CHAT_STOP_STRINGS = ["</tool_call>"]  # stop a chat model's turn where its tool call ends


def tool_spec(tool: DescribedTool) -> dict[str, Any]:
    """JSON-schema function spec of a one-string-argument tool (`apply_chat_template(tools=)`)."""
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": {
                "type": "object",
                "properties": {tool.argument: {"type": "string", "description": tool.argument}},
                "required": [tool.argument],
            },
        },
    }


def _chat_call(raw: str, arg_names: Mapping[str, str]) -> ToolCall:
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError) as err:
        return ToolCall("", raw, error=f"malformed tool call JSON: {err}")
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return ToolCall("", raw, error='a tool call needs {"name": ..., "arguments": {...}}')
    name, args = obj["name"], obj.get("arguments", {})
    if isinstance(args, str):  # OpenAI style: arguments as a JSON string
        try:
            args = json.loads(args)
        except (ValueError, RecursionError) as err:
            return ToolCall(name, raw, error=f"malformed arguments JSON: {err}")
    if not isinstance(args, dict):
        return ToolCall(name, raw, error="arguments must be an object")
    want = arg_names.get(name)
    if want is None and len(args) == 1:
        want = next(iter(args))
    value = args.get(want) if want is not None else None
    if not isinstance(value, str):
        return ToolCall(name, raw, error=f"tool {name!r} needs a string argument {want!r}")
    return ToolCall(name, value)


def parse_chat_tool_calls(text: str, tools: Sequence[DescribedTool] = ()) -> list[ToolCall]:
    """Every `<tool_call>{json}</tool_call>` of a turn, in order (a truncated last one included,
    as a malformed call). `tools` give each tool's argument name; without them a call's only
    argument is taken."""
    arg_names = {t.name: t.argument for t in tools}
    calls = []
    for m in _TOOL_CALL.finditer(str(text)):
        if not m.group(2):
            calls.append(ToolCall("", m.group(1), error="unterminated <tool_call>"))
        else:
            calls.append(_chat_call(m.group(1).strip(), arg_names))
    return calls


def parse_chat_tool_call(text: str, tools: Sequence[DescribedTool] = ()) -> ToolCall | None:
    """The last chat-template tool call of a turn, or None."""
    calls = parse_chat_tool_calls(text, tools)
    return calls[-1] if calls else None


def tool_message(result: ToolResult, name: str) -> dict[str, str]:
    """The chat message that answers a call: {"role": "tool", "name": ..., "content": ...}."""
    return {"role": "tool", "name": name, "content": error_text(result)}


def call_tool(call: ToolCall, sessions: Mapping[str, ToolSession]) -> ToolResult:
    """Answer a parsed call with the episode's open sessions; never raises.

    A malformed call or an unknown tool is a "bad_call" result; a tool that raises (a bug: tools
    must not) is "unavailable", so one broken call never ends the run.
    """
    if call.error is not None:
        return ToolResult(call.error, ok=False, error="bad_call")
    session = sessions.get(call.name)
    if session is None:
        known = ", ".join(sorted(sessions)) or "none"
        return ToolResult(f"unknown tool {call.name!r} (tools: {known})", False, "bad_call")
    try:
        return session.call(call.arguments)
    except Exception as err:  # defensive: a tool's own bug must fail this call only
        return ToolResult(f"tool error: {type(err).__name__}: {err}", False, "unavailable")
