"""Tools an environment can offer the policy (Python interpreter, calculator)."""

from reasonrl.envs.tools.base import Tool, ToolResult, ToolSession
from reasonrl.envs.tools.calculator import CalculatorTool, calculate
from reasonrl.envs.tools.format import (
    TagFormat,
    ToolCall,
    call_tool,
    parse_chat_tool_call,
    parse_chat_tool_calls,
    parse_tool_call,
    render_observation,
    tool_message,
    tool_spec,
)
from reasonrl.envs.tools.python import PythonTool

__all__ = [
    "CalculatorTool",
    "PythonTool",
    "TagFormat",
    "Tool",
    "ToolCall",
    "ToolResult",
    "ToolSession",
    "calculate",
    "call_tool",
    "parse_chat_tool_call",
    "parse_chat_tool_calls",
    "parse_tool_call",
    "render_observation",
    "tool_message",
    "tool_spec",
]
