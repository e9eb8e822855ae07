"""Plain-text helpers shared by data loaders and graders (stdlib only, no reasonrl imports).

A bottom-layer module: `reasonrl.data` (gold answers from worked solutions) and
`reasonrl.rewards.math` (answers from completions) both read `\\boxed{...}` with it, so neither
layer has to import the other. `parse_python` is the one way rewards parse untrusted Python text.
"""

from __future__ import annotations

import ast
import re
import threading

__all__ = ["extract_boxed", "literal_eval", "parse_python"]

# CPython keeps the AST constructor's recursion depth in per-interpreter state, so two threads
# parsing at once can corrupt it and raise a spurious "SystemError: AST constructor recursion depth
# mismatch" (python/cpython gh-106905; seen here on 3.11.7 when reward threads parse test code).
# Rewards run in threads (timeouts, the sandbox pool), so every parse they do goes through one lock.
_AST_LOCK = threading.Lock()


def parse_python(source: str, *, mode: str = "exec") -> ast.AST:
    """`ast.parse(source, mode=mode)`, serialised across threads (see `_AST_LOCK`)."""
    with _AST_LOCK:
        return ast.parse(source, mode=mode)


def literal_eval(text: str) -> object:
    """`ast.literal_eval` of a Python literal, parsed under the same lock."""
    return ast.literal_eval(parse_python(text.lstrip(" \t"), mode="eval"))


def _balanced_group(text: str, start: int) -> str | None:
    """Content of the `{...}` group that opens at `text[start]`, honouring nesting."""
    depth = 0
    for i in range(start, len(text)):
        ch = text[i]
        if ch == "\\":  # an escaped brace (\{ or \}) does not open or close a group
            continue
        if ch == "{" and (i == 0 or text[i - 1] != "\\"):
            depth += 1
        elif ch == "}" and text[i - 1] != "\\":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
    return None


def extract_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (or `\\fbox{...}`, `\\boxed 5`) in `text`, or None."""
    best = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if best < 0:
        return None
    rest = text[best:]
    cmd = "\\boxed" if rest.startswith("\\boxed") else "\\fbox"
    i = best + len(cmd)
    while i < len(text) and text[i] == " ":
        i += 1
    if i < len(text) and text[i] == "{":
        content = _balanced_group(text, i)
        return None if content is None else content.strip()
    m = re.match(r"\s*([^\s$]+)", text[best + len(cmd) :])  # "\boxed 5" form
    return m.group(1).rstrip(".") if m else None
