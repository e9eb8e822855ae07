"""Math answer grading: extract the final answer, then compare it with the gold answer.

Extraction (`extract_answer`) tries, in order: the last `\\boxed{...}` / `\\fbox{...}`, the last
`#### x` (GSM8K), the last "The (final) answer is x", and finally the last number in the text.

Comparison (`MathGrader.equivalent`) tries cheap exact paths first and math-verify last:
  1. string equality after light LaTeX normalisation (spaces, \\left/\\right, \\dfrac -> \\frac);
  2. plain numbers ("1,234", "-0.5", "3/4", "\\frac{3}{4}", "025"): exact rational comparison,
     with relative tolerance 1e-6 when a decimal is involved (math-verify's float_rounding=6);
     math-verify is never called for two plain numbers;
  3. math-verify (HF, github.com/huggingface/Math-Verify) in a child process: LaTeX, symbolic,
     sets, intervals, percent, units. Every call has a hard wall-clock limit: past it the child
     is killed (a pathological expression can hang inside sympy's C code, where no signal
     reaches) and the comparison counts as a failure with reason "timeout".
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

from reasonrl.rewards.lazy import Lazy
from reasonrl.text import extract_boxed
from reasonrl.types import Completion, RewardResult, Sample

_WORKER = Path(__file__).with_name("worker.py")  # run by path: see worker.py
_NUMBER_TEXT = r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+"
_LAST_NUMBER_RE = re.compile(_NUMBER_TEXT)
_ANSWER_IS_RE = re.compile(r"(?i)the\s+(?:final\s+)?answer\s+is\s*[:=]?\s*(.+?)(?:\n|$)")
_HASHES_RE = re.compile(r"####\s*([^\n]+)")


class MathGradeTimeout(RuntimeError):
    """math-verify did not answer within the hard limit (its worker was killed)."""


def extract_answer(text: str) -> tuple[str | None, str]:
    """Final answer of a solution text and the rule that found it.

    Returns:
        (answer or None, rule) with rule in {"boxed", "hashes", "answer_is", "last_number", "none"}.
    """
    boxed = extract_boxed(text)
    if boxed:
        return boxed, "boxed"
    hashes = _HASHES_RE.findall(text)
    if hashes:
        return hashes[-1].strip(), "hashes"
    said = _ANSWER_IS_RE.findall(text)
    if said:
        ans = said[-1].strip().rstrip(".").strip()
        if ans.startswith("$") and ans.endswith("$") and len(ans) > 1:
            ans = ans.strip("$").strip()
        if ans:
            return ans, "answer_is"
    numbers = _LAST_NUMBER_RE.findall(text)
    if numbers:
        return numbers[-1], "last_number"
    return None, "none"


def normalize_latex(s: str) -> str:
    """Light canonical form for string comparison (not for parsing)."""
    s = s.strip().strip("$").strip()
    for old, new in (("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"), ("\\left", ""), ("\\right", "")):
        s = s.replace(old, new)
    s = s.replace("\\!", "").replace("\\,", "").replace("\\ ", "").replace("~", "")
    s = re.sub(r"\s+", "", s)
    return s.rstrip(".")


_FRAC_RE = re.compile(r"^(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}$")
_SLASH_RE = re.compile(r"^(-?\d+)/(-?\d+)$")
_PLAIN_RE = re.compile(rf"^(?:{_NUMBER_TEXT})$")


def parse_plain_number(s: str) -> Fraction | None:
    """Exact value of a plain number string, or None if it is anything richer.

    Accepts "42", "-3.5", ".5", "1,234,567" (thousands commas only), "025", "3/4",
    "\\frac{3}{4}" / "-\\dfrac{3}{4}", optionally wrapped in $...$ or with a "\\$" prefix.
    """
    t = normalize_latex(s)
    t = t.removeprefix("\\$").removeprefix("$")
    if _PLAIN_RE.match(t):
        return Fraction(t.replace(",", ""))
    m = _SLASH_RE.match(t)
    if m and int(m.group(2)) != 0:
        return Fraction(int(m.group(1)), int(m.group(2)))
    m = _FRAC_RE.match(t)
    if m and int(m.group(3)) != 0:
        value = Fraction(int(m.group(2)), int(m.group(3)))
        return -value if m.group(1) else value
    return None


def numbers_match(a: Fraction, b: Fraction, *, has_decimal: bool, rel_tol: float = 1e-6) -> bool:
    """Exact equality; with a decimal involved, |a-b| <= rel_tol * max(1, |b|)."""
    if a == b:
        return True
    return has_decimal and abs(a - b) <= Fraction(rel_tol) * max(1, abs(b))


class _Worker:
    """One math-verify child process, restarted after it is killed."""

    def __init__(self, python: str, startup_s: float) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OMP")}
        env["OMP_NUM_THREADS"] = "1"
        self.proc = subprocess.Popen(
            [python, "-u", str(_WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        if self._read(startup_s) != {"ready": True}:
            self.kill()
            raise RuntimeError("math-verify worker failed to start (is math-verify installed?)")

    def _read(self, timeout_s: float) -> dict | None:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else None

    def ask(self, gold: str, pred: str, hard_s: float) -> dict | None:
        assert self.proc.stdin is not None
        soft = max(1, int(hard_s / 2))
        self.proc.stdin.write(json.dumps({"gold": gold, "pred": pred, "soft_s": soft}) + "\n")
        self.proc.stdin.flush()
        return self._read(hard_s)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


class MathGrader:
    """Thread-safe answer comparator with a hard time limit on every math-verify call.

    Args:
        timeout_s: hard wall-clock limit per math-verify comparison (seconds).
        startup_s: limit for starting a worker (imports sympy and math_verify: ~1-2 s).
        python: interpreter for the worker (default: this one).
    """

    def __init__(
        self, *, timeout_s: float = 5.0, startup_s: float = 60.0, python: str | None = None
    ) -> None:
        self.timeout_s = timeout_s
        self.startup_s = startup_s
        self.python = python or sys.executable
        self._worker: _Worker | None = None
        self._lock = threading.Lock()
        self.calls = {"string": 0, "number": 0, "math_verify": 0, "timeout": 0}

    def equivalent(self, pred: str, gold: str) -> tuple[bool, str]:
        """Whether `pred` equals `gold`, and which path decided ("string"/"number"/"math_verify").

        Raises:
            MathGradeTimeout: math-verify exceeded `timeout_s` (the worker was killed).
        """
        if normalize_latex(pred) == normalize_latex(gold):
            self.calls["string"] += 1
            return True, "string"
        a, b = parse_plain_number(pred), parse_plain_number(gold)
        if a is not None and b is not None:
            self.calls["number"] += 1
            return numbers_match(a, b, has_decimal="." in pred + gold), "number"
        return self._math_verify(pred, gold), "math_verify"

    def _math_verify(self, pred: str, gold: str) -> bool:
        with self._lock:
            self.calls["math_verify"] += 1
            if self._worker is None or self._worker.proc.poll() is not None:
                self._worker = _Worker(self.python, self.startup_s)
            reply = self._worker.ask(gold, pred, self.timeout_s)
            if reply is None:  # hung or died: kill it, the next call starts a fresh one
                self._worker.kill()
                self._worker = None
                self.calls["timeout"] += 1
                raise MathGradeTimeout(f"math-verify exceeded {self.timeout_s:g}s")
        if "error" in reply:
            raise ValueError(f"math-verify: {reply['error']}")
        return bool(reply["equal"])

    def close(self) -> None:
        with self._lock:
            if self._worker is not None:
                self._worker.kill()
                self._worker = None

    def __del__(self) -> None:  # best effort: do not leave a child behind
        with contextlib.suppress(Exception):
            self.close()


_DEFAULT = Lazy(MathGrader)


def default_grader() -> MathGrader:
    """The process-wide grader used by `math_reward` (created on first use)."""
    return _DEFAULT.get()


def answer_key(answer: str | None) -> str | None:
    """A math answer in the form maj@k votes on: a plain number as its exact value ("18", "18.0",
    "18.00" -> "18"; "0.5", "1/2", "\\frac{1}{2}" -> "1/2"), anything richer in the light LaTeX
    form of `normalize_latex`. None stays None."""
    if answer is None:
        return None
    value = parse_plain_number(answer)
    if value is not None:
        return str(value)  # Fraction prints "18" or "1/2"
    return normalize_latex(answer)


def gold_answer_key(sample: Sample) -> str | None:
    """The sample's gold answer as `answer_key` writes it (the reward's `gold_answer` hook)."""
    return answer_key(sample.answer)


def grade_answer(text: str, gold: str, *, grader: MathGrader | None = None) -> RewardResult:
    """Extract the final answer of `text` and compare it with `gold`: score 1.0 or 0.0.

    Typed fields: `answer` = `answer_key` of the extracted answer, `outcome` = equal to gold.
    `info` keeps the raw extraction (`extracted`, `extraction` rule, `method`, `grade_s`).
    A math-verify timeout or error is a failed grade (score 0.0, `info["failed"]`), not a crash.
    """
    start = time.perf_counter()
    answer, rule = extract_answer(text)
    info: dict[str, object] = {"extracted": answer, "extraction": rule}
    key = answer_key(answer)
    if answer is None:
        return RewardResult(0.0, {**info, "reason": "no answer found"}, outcome=False)
    try:
        equal, method = (grader or default_grader()).equivalent(answer, gold)
    except MathGradeTimeout as exc:
        fail = {"failed": True, "error": f"timeout: {exc}", "error_kind": "timeout"}
        return RewardResult(0.0, {**info, **fail}, answer=key, outcome=False)
    except ValueError as exc:
        fail = {"failed": True, "error": str(exc), "error_kind": "math_verify_error"}
        return RewardResult(0.0, {**info, **fail}, answer=key, outcome=False)
    info.update(method=method, grade_s=time.perf_counter() - start)
    return RewardResult(1.0 if equal else 0.0, info, answer=key, outcome=equal)


def math_reward(sample: Sample, completion: Completion) -> RewardResult | None:
    """Reward 1.0 if the completion's final answer equals `sample.answer`, else 0.0.

    Not applicable (None) when the sample has no gold answer.
    """
    if sample.answer is None:
        return None
    return grade_answer(completion.text, sample.answer)


math_reward.gold_answer = gold_answer_key  # type: ignore[attr-defined]  # for maj@k
