"""Parse a solution trace back into a graph: quantity name -> (variable, parents, value).

Follows the process-verification parser of arXiv 2512.07783 §3 (upstream
`solution_dependency_graph.py`): every "Define <name> as <V>; ..." sentence is a node; its parents
are the quantities whose variables appear on the right-hand side of its steps (resolved through
intermediate letters); its value is the last number it evaluates to. We also check each step's
arithmetic (numbers substituted for letters must be those letters' values and the numeric
expression must equal the result), so a node reached by wrong arithmetic is marked inconsistent.
The parser never raises: garbage, truncated or repeated definitions give a partial graph.

Tool calls (the large-number tool task, issue 18): `<code>...</code>` calls and the
`<output>...</output>` answers the environment inserts are blanked (same length, so offsets
stay valid) before parsing: code is not a claim and tool outputs are not the model's claims, so
a step is verified by the value the model itself states after them ("= <code> 312 * 417 </code>
<output> 130104 </output> 130104" reads as "= 130104").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

_DEFINE = re.compile(r"Define\s+([^;.<>]{1,300}?)\s+as\s+([A-Za-z])\s*;")
_ANSWER = re.compile(r"Answer\s*:\s*(-?\d+(?:\.\d+)?)")
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_LETTER = re.compile(r"(?<![A-Za-z0-9])[A-Za-z](?![A-Za-z0-9])")
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")
_TOKEN = re.compile(r"\d+(?:\.\d+)?|[A-Za-z]+|[+\-*/()]|\S")
_SENTENCE_END = re.compile(r"\.(?!\d)")
_MAX_CHARS = 200_000  # longer texts are cut (a policy can emit anything)
TOOL_TAGS = ("code", "output")  # tool call / tool answer regions (tokenizer.TOOL_MARKERS)
# A region runs to its closing tag, or to the end of the text when it never closes (truncated).
_TOOL_REGION = re.compile(r"<(code|output)>.*?(?:</\1>|$)", re.DOTALL)


def blank_tool_regions(text: str) -> str:
    """`text` with every tool call and tool output region replaced by spaces (same length)."""
    if "<code>" not in text and "<output>" not in text:
        return text
    return _TOOL_REGION.sub(lambda m: " " * len(m.group(0)), text)


@dataclass(frozen=True, slots=True)
class ParsedNode:
    """One defined quantity: its variable, parent quantity names and value.

    value: the last number the definition evaluates to (None when there is none or it is not a
    number). value_text: that last right-hand side as written (e.g. "x + 3" in reverse mode);
    form: it as a linear form (a, b) = a * x + b, or None. consistent: every step's substituted
    numbers and arithmetic (or linear algebra) check out.
    """

    var: str
    parents: frozenset[str]
    value: float | None
    value_text: str = ""
    consistent: bool = True
    form: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class ParsedTrace:
    """Graph parsed from a trace. answer: the text after the last "Answer:" (None if absent)."""

    nodes: dict[str, ParsedNode] = field(default_factory=dict)
    answer: str | None = None
    n_defines: int = 0
    n_repeated: int = 0


def _number(text: str) -> float | None:
    text = text.strip().rstrip(".").strip()
    return float(text) if _NUMBER.match(text) else None


Linear = tuple[float, float]  # a * x + b


def linear_eval(text: str) -> Linear | None:
    """Value of an expression of numbers, x, + - * and brackets as (a, b) = a * x + b.

    None if malformed, non-linear (x * x) or containing any other letter. Plain numbers give
    (0, value), so this checks forward arithmetic ("3 + 4") and reverse algebra ("2 * (x + 3)").
    """
    tokens = _TOKEN.findall(text)
    if not tokens or len(tokens) > 200:
        return None
    pos = 0

    def expr() -> Linear | None:
        nonlocal pos
        acc = term()
        while acc is not None and pos < len(tokens) and tokens[pos] in "+-":
            sign = 1.0 if tokens[pos] == "+" else -1.0
            pos += 1
            rhs = term()
            if rhs is None:
                return None
            acc = (acc[0] + sign * rhs[0], acc[1] + sign * rhs[1])
        return acc

    def term() -> Linear | None:
        nonlocal pos
        acc = atom()
        while acc is not None and pos < len(tokens) and tokens[pos] == "*":
            pos += 1
            rhs = atom()
            if rhs is None or (acc[0] != 0 and rhs[0] != 0):
                return None
            acc = (acc[0] * rhs[1] + rhs[0] * acc[1], acc[1] * rhs[1])
        return acc

    def atom() -> Linear | None:
        nonlocal pos
        if pos >= len(tokens):
            return None
        tok = tokens[pos]
        pos += 1
        if tok == "(":
            inner = expr()
            if inner is None or pos >= len(tokens) or tokens[pos] != ")":
                return None
            pos += 1
            return inner
        if tok == "-":
            inner = atom()
            return None if inner is None else (-inner[0], -inner[1])
        if tok == "x":
            return (1.0, 0.0)
        num = _number(tok)
        return None if num is None else (0.0, num)

    try:
        out = expr()
    except RecursionError:
        return None
    return out if pos == len(tokens) else None


def _same_form(a: Linear | None, b: Linear | None) -> bool:
    return a is not None and b is not None and abs(a[0] - b[0]) < 1e-6 and abs(a[1] - b[1]) < 1e-6


@dataclass
class _Binding:
    names: frozenset[str]
    value: float | None


def _check_substitution(sym: str, num: str, env: dict[str, _Binding]) -> bool:
    """Symbols "a + 2" vs numbers "3 + 2": same shape, each letter replaced by its value."""
    s_toks, n_toks = _TOKEN.findall(sym), _TOKEN.findall(num)
    for tok in s_toks:
        bound = env.get(tok) if len(tok) == 1 and tok.isalpha() else None
        if bound is not None and bound.value is None:
            return True  # symbolic values (reverse mode) are not checked numerically
    if len(s_toks) != len(n_toks):
        return False
    for s_tok, n_tok in zip(s_toks, n_toks):
        if len(s_tok) == 1 and s_tok.isalpha():
            bound = env.get(s_tok)
            if bound is None:
                continue  # an undefined letter is a dependency error, counted there
            n_val = _number(n_tok)
            if n_val is None or abs(bound.value - n_val) > 1e-6:  # type: ignore[operator]
                return False
        elif s_tok != n_tok:
            return False
    return True


def _step_consistent(parts: list[str], value: float | None, env: dict[str, _Binding]) -> bool:
    """ "V = a + b = 3 + 4 = 7": letters substituted by their values, and 3 + 4 really is 7."""
    if len(parts) < 3:
        return True
    has_letters = _LETTER.search(parts[1]) is not None
    if has_letters and not _check_substitution(parts[1], parts[2], env):
        return False
    if has_letters and len(parts) == 3:
        return True  # alias "V = a = 3": the substitution is the whole claim
    return _same_form(linear_eval(parts[-2]), linear_eval(parts[-1]))


def _parse_steps(body: str, env: dict[str, _Binding]) -> tuple[set[str], str, bool, str | None]:
    """Parents, last right-hand side, consistency and final left-hand letter of one Define body."""
    parents: set[str] = set()
    last_rhs, consistent, last_lhs = "", True, None
    for raw in body.split(";"):
        step = raw.strip()
        if step.startswith("so "):
            step = step[3:]
        parts = [p.strip() for p in step.split("=")]
        if len(parts) < 2 or not _LETTER.fullmatch(parts[0]):
            continue
        deps: set[str] = set()
        for letter in _LETTER.findall(parts[1]):
            bound = env.get(letter)
            deps |= set(bound.names) if bound is not None else {f"?{letter}"}
        parents |= deps
        last_rhs = parts[-1]
        value = _number(last_rhs)
        consistent &= _step_consistent(parts, value, env)
        env[parts[0]] = _Binding(frozenset(deps), value)
        last_lhs = parts[0]
    return parents, last_rhs, consistent, last_lhs


def _solution_region(text: str) -> str:
    """The trace part of a completion: before "</solution>" (after "<solution>" if present)."""
    start = text.rfind("<solution>")
    if start >= 0:
        text = text[start + len("<solution>") :]
    end = text.find("</solution>")
    return text if end < 0 else text[:end]


def parse_trace(text: str) -> ParsedTrace:
    """Parse a (possibly garbage or truncated) trace into a ParsedTrace; never raises.

    Reference: arXiv 2512.07783 (process verification of generated solutions).

    Args:
        text: a gold trace, a completion (" {trace} </solution> <answer> ..."), or any string.
    Returns: ParsedTrace with nodes keyed by quantity name (whitespace-normalised); a repeated
        definition replaces the earlier one.
    """
    try:
        return _parse(_solution_region(blank_tool_regions(str(text)[:_MAX_CHARS])))
    except Exception:  # a policy's text must never crash the reward
        return ParsedTrace()


def _parse(text: str) -> ParsedTrace:
    env: dict[str, _Binding] = {}
    nodes: dict[str, ParsedNode] = {}
    matches = list(_DEFINE.finditer(text))
    repeated = 0
    for i, m in enumerate(matches):
        name = " ".join(m.group(1).split())
        var = m.group(2)
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = text[m.end() : end]
        # A Define sentence ends at its first full stop (numbers have no decimal point here);
        # what follows ("We know N = 1, so ..." in reverse mode, "Answer: 6.") is not a step.
        stop = _SENTENCE_END.search(body)
        body = body[: stop.start()] if stop else body
        # Steps must not see this node's own (new) letter as its older binding.
        env.pop(var, None)
        parents, rhs, consistent, last_lhs = _parse_steps(body, env)
        node = ParsedNode(var, frozenset(parents), _number(rhs), rhs, consistent, linear_eval(rhs))
        repeated += name in nodes
        nodes[name] = node
        binding = _Binding(frozenset({name}), node.value)
        env[var] = binding
        if last_lhs is not None:
            env[last_lhs] = binding
    answers = _ANSWER.findall(text)
    return ParsedTrace(nodes, answers[-1] if answers else None, len(matches), repeated)


def step_spans(text: str) -> list[tuple[str, int]]:
    """The reasoning steps of a completion: (quantity name, end offset) per "Define" sentence.

    A step is one "Define <name> as <V>; ..." sentence of the trace region, cut exactly as
    `parse_trace` cuts it (at its first full stop, or the next Define); the end offset is into
    `text` itself, one past the sentence's full stop (or its last character). Never raises.
    """
    try:
        text = blank_tool_regions(str(text)[:_MAX_CHARS])
        start = text.rfind("<solution>")
        start = 0 if start < 0 else start + len("<solution>")
        stop_at = text.find("</solution>", start)
        region = text[start:] if stop_at < 0 else text[start:stop_at]
        matches = list(_DEFINE.finditer(region))
        out: list[tuple[str, int]] = []
        for i, m in enumerate(matches):
            end = matches[i + 1].start() if i + 1 < len(matches) else len(region)
            stop = _SENTENCE_END.search(region, m.end(), end)
            end = stop.end() if stop else len(region[:end].rstrip())
            out.append((" ".join(m.group(1).split()), start + end))
        return out
    except Exception:  # a policy's text must never crash the reward
        return []


def extract_answer_tag(text: str) -> str | None:
    """Text inside the last complete "<answer> ... </answer>" pair, stripped (None if none)."""
    try:
        found = _ANSWER_TAG.findall(blank_tool_regions(str(text)[:_MAX_CHARS]))
    except Exception:
        return None
    return found[-1].strip() if found else None


@lru_cache(maxsize=65536)
def parse_gold(trace: str) -> ParsedTrace:
    """parse_trace with a cache, for gold traces that are scored many times."""
    return parse_trace(trace)
