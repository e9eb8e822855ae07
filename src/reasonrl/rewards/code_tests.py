"""Test-case rewards for code: run a program against its tests in the sandbox.

Two rewards (DRIVE arXiv 2511.06307 and AgentMath arXiv 2512.20745 use executable test cases;
which mapping a paper uses varies, so both are offered):
- `code_tests_reward`: fraction of test cases passed (a partial-credit reward);
- `code_tests_all_reward`: 1.0 only if every test case passes (all-or-nothing).

Test formats (from `sample.meta`):
- HumanEval style: `meta["test"]` defines `check(candidate)` and `meta["entry_point"]` names the
  function. Each top-level `assert` in `check` becomes its own case (the other statements of
  `check` are kept in every case), so a partial pass rate exists; a `check` without top-level
  asserts is one case.
- A list of snippets: `meta["tests"]`, e.g. ["assert add(1, 2) == 3", ...], one case each.
- Stdin/stdout cases: `meta["io_tests"]` = [{"input": str, "output": str}, ...]; each case is
  its own sandbox run and the output is compared on the host (`run_io_tests`): the sturdiest
  format against reward hacking, since nothing inside the sandbox decides the verdict.
"""

from __future__ import annotations

import ast
import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass

from reasonrl.rewards.sandbox import SandboxLimits, SandboxResult, run_python
from reasonrl.text import parse_python
from reasonrl.types import Completion, RewardResult, Sample

_FENCE_RE = re.compile(r"```(?:python|py|Python)?[ \t]*\n(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class TestReport:
    """Outcome of `run_tests`: `passed` (all cases), `fraction` passed, the raw sandbox result."""

    passed: bool
    fraction: float
    n_cases: int
    n_passed: int
    result: SandboxResult


def extract_code(text: str) -> str | None:
    """The last fenced code block (```python ... ```) in `text`, or None."""
    blocks = _FENCE_RE.findall(text)
    return blocks[-1] if blocks else None


def split_check(test: str, entry_point: str) -> tuple[str, list[str]]:
    """Split a HumanEval `check(candidate)` test into (setup, one case per top-level assert).

    Returns:
        setup: the test module (every top-level statement, including `def check`).
        cases: sources that each define a reduced check function and call it on `entry_point`.
    """
    try:
        module = parse_python(test)
    except SyntaxError as exc:
        raise ValueError(f"test code does not parse: {exc.msg} (line {exc.lineno})") from None
    checks = [n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == "check"]
    call = f"check({entry_point})"
    if not checks:
        return test, [call]
    check = checks[-1]
    asserts = [i for i, stmt in enumerate(check.body) if isinstance(stmt, ast.Assert)]
    if not asserts:
        return test, [call]
    cases = []
    for k, keep in enumerate(asserts):
        body = [s for i, s in enumerate(check.body) if not isinstance(s, ast.Assert) or i == keep]
        fn = copy.copy(check)  # keeps every field this Python's FunctionDef has
        fn.name, fn.body, fn.decorator_list = f"_case_{k}", body, []
        cases.append(f"{ast.unparse(fn)}\n_case_{k}({entry_point})\n")
    return test, cases


def run_tests(
    code: str,
    tests: str | Sequence[str],
    *,
    entry_point: str | None = None,
    limits: SandboxLimits | None = None,
    case_timeout_s: float | None = 3.0,
) -> TestReport:
    """Run `code` against `tests` in one sandbox; pass/fail and the fraction of cases passed.

    Args:
        code: the candidate program (e.g. prompt + completion for HumanEval).
        tests: a HumanEval test module (with `entry_point`) or a list of snippets.
        entry_point: the function `check` is called on (HumanEval style only).
        limits: sandbox limits; case_timeout_s: per-case alarm inside the sandbox.
    """
    if isinstance(tests, str):
        if entry_point is None:
            setup, cases = None, [tests]
        else:
            setup, cases = split_check(tests, entry_point)
    else:
        setup, cases = None, list(tests)
    result = run_python(
        code, setup=setup, cases=cases, limits=limits, case_timeout_s=case_timeout_s
    )
    n_passed = sum(result.cases) if result.completed or result.cases else 0
    n = max(len(cases), 1)
    return TestReport(
        passed=result.passed,
        fraction=n_passed / n,
        n_cases=len(cases),
        n_passed=n_passed,
        result=result,
    )


def _normalise_output(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip().splitlines()]


def run_io_tests(
    code: str, cases: Sequence[tuple[str, str]], *, limits: SandboxLimits | None = None
) -> TestReport:
    """Stdin/stdout problems: one sandbox run per (input, expected output) case, the output
    compared on the host (trailing whitespace ignored), so the program cannot fake a verdict."""
    if not cases:
        raise ValueError("run_io_tests needs at least one (input, expected output) case")
    results = [run_python(code, stdin=inp, limits=limits) for inp, _ in cases]
    ok = [
        r.status == "ok" and r.completed and _normalise_output(r.stdout) == _normalise_output(exp)
        for r, (_, exp) in zip(results, cases, strict=True)
    ]
    return TestReport(
        passed=all(ok),
        fraction=sum(ok) / len(ok),
        n_cases=len(ok),
        n_passed=sum(ok),
        result=next((r for r, good in zip(results, ok, strict=True) if not good), results[-1]),
    )


def program_for(sample: Sample, completion: Completion) -> str:
    """The program to test: a fenced block if the completion has one (prefixed with the prompt
    when it does not define the entry point itself), else prompt + completion (HumanEval)."""
    block = extract_code(completion.text)
    entry = sample.meta.get("entry_point")
    if block is not None:
        if entry and not re.search(rf"def\s+{re.escape(entry)}\s*\(", block):
            return sample.prompt + block
        return block
    return sample.prompt + completion.text if entry else completion.text


def _code_reward(
    sample: Sample, completion: Completion, *, all_or_nothing: bool
) -> RewardResult | None:
    test, tests, io = sample.meta.get("test"), sample.meta.get("tests"), sample.meta.get("io_tests")
    if test is None and tests is None and io is None:
        return None
    program = program_for(sample, completion)
    if io is not None:
        report = run_io_tests(program, [(c["input"], c["output"]) for c in io])
    else:
        report = run_tests(
            program,
            test if test is not None else tests,
            entry_point=sample.meta.get("entry_point") if test is not None else None,
        )
    info = {
        "passed": report.passed,
        "fraction": report.fraction,
        "status": report.result.status,
        "isolation": report.result.isolation.level,
    }
    if report.result.status == "unavailable":
        fail = {"failed": True, "error": "sandbox unavailable"}
        return RewardResult(score=0.0, info={**info, **fail}, outcome=False)
    score = float(report.passed) if all_or_nothing else report.fraction
    # outcome = every test passed; no `answer` (programs are not voted on: no maj@k)
    return RewardResult(score=score, info=info, outcome=bool(report.passed))


def code_tests_reward(sample: Sample, completion: Completion) -> RewardResult | None:
    """Fraction of test cases passed (None when the sample has no tests)."""
    return _code_reward(sample, completion, all_or_nothing=False)


def code_tests_all_reward(sample: Sample, completion: Completion) -> RewardResult | None:
    """1.0 if every test case passes, else 0.0 (None when the sample has no tests)."""
    return _code_reward(sample, completion, all_or_nothing=True)
