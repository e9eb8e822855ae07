"""Tool-call formats: the tag format and chat-template (Qwen/Hermes) tool calls."""

from __future__ import annotations

import json

from reasonrl.envs.tools import (
    CalculatorTool,
    PythonTool,
    TagFormat,
    ToolCall,
    ToolResult,
    call_tool,
    parse_chat_tool_call,
    parse_chat_tool_calls,
    parse_tool_call,
    render_observation,
    tool_message,
    tool_spec,
)


def test_tag_call_is_the_last_complete_call_of_a_turn_ending_with_the_tag() -> None:
    text = "a = <code> 1 + 1 </code> <output> 2 </output> <code>\n  x = 1\n  x\n</code>"
    assert parse_tool_call(text) == ToolCall("python", "x = 1\nx")
    assert parse_tool_call("so a = <code> 312 * 417 </code>  \n") == ToolCall("python", "312 * 417")
    assert parse_tool_call("<code> 1 </code> then the answer") is None  # not a tool turn
    assert parse_tool_call("<code> 1 </code> then", fmt=TagFormat()) is None
    assert TagFormat().parse("<code> 1 </code> then", require_end=False) == ToolCall("python", "1")
    assert parse_tool_call("no call </code>") is None  # closing tag without an opening one
    assert parse_tool_call("<code> unfinished") is None
    assert parse_tool_call("") is None


def test_tag_names_are_configurable_and_map_to_tools() -> None:
    fmt = TagFormat(tags=(("code", "python"), ("calc", "calculator")), output_tag="result")
    assert fmt.stop_strings == ["</code>", "</calc>"]
    assert fmt.parse("<code> x </code> <calc> 2 * 3 </calc>") == ToolCall("calculator", "2 * 3")
    assert fmt.parse("<calc> 2 </calc> <code> x </code>") == ToolCall("python", "x")
    assert fmt.render(ToolResult("6")) == "\n<result>\n6\n</result>\n"


def test_render_observation() -> None:
    assert render_observation(ToolResult("130104")) == "\n<output>\n130104\n</output>\n"
    bad = ToolResult("SyntaxError: invalid syntax", ok=False, error="syntax")
    assert render_observation(bad) == (
        "\n<output>\nerror: syntax\nSyntaxError: invalid syntax\n</output>\n"
    )
    assert "error: timeout" in render_observation(ToolResult("", ok=False, error="timeout"))


def test_chat_specs_are_json_schema_functions() -> None:
    spec = tool_spec(PythonTool())
    assert spec["type"] == "function" and spec["function"]["name"] == "python"
    params = spec["function"]["parameters"]
    assert params["required"] == ["code"] and params["properties"]["code"]["type"] == "string"
    json.dumps(spec)  # plain data
    assert tool_spec(CalculatorTool())["function"]["parameters"]["required"] == ["expression"]


def test_chat_spec_goes_through_a_chat_template() -> None:
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    word_level = Tokenizer(models.WordLevel({"<unk>": 0}, "<unk>"))
    tok = PreTrainedTokenizerFast(tokenizer_object=word_level)
    tok.chat_template = (
        "{% for t in tools %}<tool>{{ t.function.name }}:"
        "{{ t.function.parameters.required[0] }}</tool>{% endfor %}"
        "{% for m in messages %}{{ m.content }}{% endfor %}"
    )
    text = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}],
        tools=[tool_spec(PythonTool()), tool_spec(CalculatorTool())],
        tokenize=False,
    )
    assert text == "<tool>python:code</tool><tool>calculator:expression</tool>hi"


def test_chat_tool_calls_parse_and_malformed_ones_are_bad_calls() -> None:
    tools = [PythonTool(), CalculatorTool()]
    good = '<tool_call>\n{"name": "python", "arguments": {"code": "x = 1\\nx"}}\n</tool_call>'
    assert parse_chat_tool_call("Let me run it. " + good, tools) == ToolCall("python", "x = 1\nx")
    openai = '<tool_call>{"name": "calculator", "arguments": "{\\"expression\\": \\"2*3\\"}"}'
    assert parse_chat_tool_call(openai + "</tool_call>", tools) == ToolCall("calculator", "2*3")
    assert parse_chat_tool_call("no call here", tools) is None
    bad = parse_chat_tool_calls(
        good
        + "<tool_call>{'name': 'python'}</tool_call>"  # not JSON
        + '<tool_call>{"arguments": {}}</tool_call>'  # no name
        + '<tool_call>{"name": "python", "arguments": {"src": "1"}}</tool_call>'  # wrong arg
        + '<tool_call>{"name": "python", "arguments": [1]}</tool_call>'
        + '<tool_call>{"name": "python", "arguments": {"code":',  # truncated
        tools,
    )
    assert [c.error is None for c in bad] == [True, False, False, False, False, False]
    assert "malformed" in (bad[1].error or "") and "unterminated" in (bad[-1].error or "")
    # without the tool list, a call's only argument is taken
    one = '<tool_call>{"name": "t", "arguments": {"a": "v"}}</tool_call>'
    assert parse_chat_tool_call(one) == ToolCall("t", "v")


def test_call_tool_dispatches_and_answers_bad_calls() -> None:
    sessions = {"calculator": CalculatorTool().open()}
    assert call_tool(ToolCall("calculator", "6 * 7"), sessions) == ToolResult("42")
    bad = call_tool(ToolCall("", "{x", error="malformed tool call JSON"), sessions)
    assert not bad.ok and bad.error == "bad_call"
    unknown = call_tool(ToolCall("python", "1"), sessions)
    assert unknown.error == "bad_call" and "calculator" in unknown.output

    class Broken:
        def call(self, arguments: str) -> ToolResult:
            raise RuntimeError("bug")

        def close(self) -> None:
            return None

    broke = call_tool(ToolCall("b", "1"), {"b": Broken()})
    assert not broke.ok and broke.error == "unavailable" and "bug" in broke.output
    assert tool_message(ToolResult("42"), "calculator") == {
        "role": "tool", "name": "calculator", "content": "42"
    }  # fmt: skip
