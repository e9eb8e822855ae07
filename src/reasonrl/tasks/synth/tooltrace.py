"""Tool-using demonstration traces of the synthetic task, and a behaviour tagger (issue 18).

A tool trace is the gold trace with a `<code>` call before the result of every numeric step
("so a = 473 * W = 473 * 504 = <code> 473 * 504 </code> <output> 238392 </output> 238392.");
the observation text comes from a callback (`observe(code) -> "<output>...</output>"` text), so
this module needs no tool: `reasonrl data synth --tool-traces` passes the real tool's renderer.

Behaviours (Behavior Priming, arXiv 2510.06534: SFT on behaviour-rich trajectories before RL;
its "information verification" and "error recovery", transposed to computation), drawn per call:
- plain: one call, then the result copied;
- verify: after the call, a check `<code> R - (expr) </code>` whose output is 0;
- recheck: a call with a mistyped operand, the check shows a non-zero residual, the call is
  redone correctly (re-computation after an error the model itself detects);
- recover: a malformed call (a dangling operator), the tool answers a syntax error, the call is
  redone (recovery after a tool error).
`tag_behaviours` counts these in any text (regex rules, the "behaviour tagger" of the recipe),
so sampled trajectories can be filtered the same way as generated ones. Tool regions are blanked
by the reward's parser (parse.blank_tool_regions), so a tool trace of a correct solution scores
exactly as its gold trace.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

Observe = Callable[[str], str]  # code -> the observation text inserted after "</code>"
BEHAVIOURS = ("plain", "verify", "recheck", "recover")
# "= <numeric> = <result>" of a step: the numeric side has digits, operators, brackets only
_NUMERIC_STEP = re.compile(r"= ([0-9(][0-9 +\-*()]*[0-9)]) = (-?\d+)(?=[.;])")
_OPERATOR = re.compile(r"\d\s*[+\-*]\s*[\d(]")
_CALL = re.compile(r"<code>(.*?)</code>\s*<output>(.*?)</output>", re.DOTALL)
_RESIDUAL = re.compile(r"^\s*(-?\d+)\s*-\s*\(.*\)\s*$", re.DOTALL)
_INT = re.compile(r"^\s*(-?\d+)\s*$")


@dataclass(frozen=True)
class BehaviourMix:
    """Probabilities of each behaviour per call (the rest: plain)."""

    verify: float = 0.25
    recheck: float = 0.1
    recover: float = 0.1


def _mistype(numeric: str, rng: random.Random) -> str:
    """`numeric` with one operand's last digit changed (a plausible copying slip)."""
    numbers = list(re.finditer(r"\d+", numeric))
    m = rng.choice(numbers)
    digit = int(m.group(0)[-1])
    new = m.group(0)[:-1] + str((digit + rng.randint(1, 9)) % 10)
    return numeric[: m.start()] + new + numeric[m.end() :]


def _malform(numeric: str) -> str:
    """`numeric` with a dangling operator ("312 * 417 *"): a syntax error in Python and the
    calculator alike (a doubled "+" or "-" would still parse, as a unary sign)."""
    ops = re.findall(r"(?<=\s)[+\-*](?=\s)", numeric)
    return f"{numeric} {ops[0] if ops else '*'}"


def _output_body(observation: str) -> str:
    m = re.search(r"<output>(.*?)</output>", observation, re.DOTALL)
    return m.group(1) if m else observation


def _calls(numeric: str, result: str, kind: str, rng: random.Random, observe: Observe) -> str:
    def call(code: str) -> str:
        return f"<code> {code} </code>{observe(code)}"

    check = f"{result} - ({numeric})"
    if kind == "verify":
        return call(numeric) + " " + call(check)
    if kind == "recheck":
        wrong = _mistype(numeric, rng)
        out = observe(wrong)
        value = _INT.search(_output_body(out))
        residual = f"{value.group(1)} - ({numeric})" if value else check
        return f"<code> {wrong} </code>{out} " + call(residual) + " " + call(numeric)
    if kind == "recover":
        return call(_malform(numeric)) + " " + call(numeric)
    return call(numeric)


def tool_trace(
    trace: str, rng: random.Random, observe: Observe, mix: BehaviourMix | None = None
) -> str:
    """A gold trace (`SynthProblem.trace`, a row's "trace") with tool calls (module docstring);
    deterministic in `rng`. observe: code -> observation text; it must answer like the tool the
    policy will call (the CLI uses the tag format's rendering of the real tool's result)."""
    mix = mix or BehaviourMix()
    weights = [max(0.0, 1.0 - mix.verify - mix.recheck - mix.recover), mix.verify, mix.recheck,
               mix.recover]  # fmt: skip

    def insert(m: re.Match[str]) -> str:
        numeric, result = m.group(1), m.group(2)
        if not _OPERATOR.search(numeric):
            return m.group(0)
        kind = rng.choices(BEHAVIOURS, weights)[0]
        return f"= {numeric} = {_calls(numeric, result, kind, rng, observe)} {result}"

    return _NUMERIC_STEP.sub(insert, trace)


def tool_completion(trace: str, answer: int | str) -> str:
    """Completion text of a tool trace: " {trace} </solution> <answer> {answer} </answer>"."""
    return f" {trace} </solution> <answer> {answer} </answer>"


def tag_behaviours(text: str) -> dict[str, int]:
    """Counts of tool behaviours in a text, from its (code, output) pairs in order.

    calls: complete call + output pairs. errors: outputs starting "error:". verifications:
    calls "N - (...)" where N is the previous output's value. recoveries: calls made right
    after an error output or after a verification with a non-zero residual.
    """
    counts = {"calls": 0, "errors": 0, "verifications": 0, "recoveries": 0}
    prev_out: str | None = None
    need_redo = False
    for m in _CALL.finditer(str(text)):
        code, out = m.group(1).strip(), m.group(2).strip()
        counts["calls"] += 1
        if need_redo:
            counts["recoveries"] += 1
        need_redo = False
        residual = _RESIDUAL.match(code)
        if residual and prev_out is not None and residual.group(1) == prev_out:
            counts["verifications"] += 1
            need_redo = out != "0"
        if out.startswith("error"):
            counts["errors"] += 1
            need_redo = True
        prev_out = out
    return counts


def behaviour_rich(text: str, *, min_behaviours: int = 1) -> bool:
    """At least `min_behaviours` verifications + recoveries (the Behavior Priming filter)."""
    c = tag_behaviours(text)
    return c["verifications"] + c["recoveries"] >= min_behaviours


def tool_output_spans(text: str) -> list[tuple[int, int]]:
    """Character spans [start, end) of the `<output>...</output>` regions (tags included): the
    observation text an SFT loss must mask (AgentMath's feedback masking)."""
    return [m.span() for m in re.finditer(r"<output>.*?(?:</output>|$)", text, re.DOTALL)]
