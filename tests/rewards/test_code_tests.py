"""Code rewards: test splitting, program assembly, partial and all-or-nothing scores, HumanEval."""

from __future__ import annotations

import time

import pytest

from reasonrl.data.benchmarks import load_humaneval
from reasonrl.rewards import REWARDS, call_reward
from reasonrl.rewards.code_tests import (
    code_tests_all_reward,
    code_tests_reward,
    extract_code,
    program_for,
    run_io_tests,
    split_check,
)
from reasonrl.rewards.pool import SandboxPool
from reasonrl.rewards.sandbox import detect_mode
from reasonrl.types import Completion, Sample

needs_sandbox = pytest.mark.skipif(detect_mode() in ("uid", "none"), reason="no namespaces")

CHECK = """
import math

def check(candidate):
    eps = 1e-9
    assert candidate(1) == 2
    assert abs(candidate(0.5) - 1.0) < eps
    for x in range(3):
        assert candidate(x) == 2 * x
    assert candidate(-1) == -2
"""


def _c(text: str) -> Completion:
    return Completion(text=text, token_ids=(), logprobs=())


def test_split_check_one_case_per_top_level_assert():
    setup, cases = split_check(CHECK, "double")
    assert setup == CHECK and len(cases) == 3  # the for-loop is shared setup, not a case
    assert "assert candidate(1) == 2" in cases[0] and "candidate(-1)" not in cases[0]
    assert all("eps = 1e-09" in c and "for x in range(3)" in c for c in cases)
    assert cases[2].rstrip().endswith("_case_2(double)")
    assert split_check("def check(c):\n    for i in range(2):\n        assert c(i)\n", "f")[1] == [
        "check(f)"
    ]
    with pytest.raises(ValueError, match="does not parse"):
        split_check("def check(:", "f")


def test_extract_code_and_program_assembly():
    text = "blah\n```python\ndef f(x):\n    return 1\n```\nthen\n```py\ndef g():\n    pass\n```"
    assert extract_code(text) == "def g():\n    pass\n"
    assert extract_code("no code") is None
    he = Sample(id="h", prompt="def f(x):\n", meta={"entry_point": "f", "test": CHECK})
    assert program_for(he, _c("    return 2 * x\n")) == "def f(x):\n    return 2 * x\n"
    fenced = _c("```python\ndef f(x):\n    return 2 * x\n```")
    assert program_for(he, fenced) == "def f(x):\n    return 2 * x\n"
    helper_only = _c("```python\n    return 2 * x\n```")  # body only: prompt is prepended
    assert program_for(he, helper_only) == "def f(x):\n    return 2 * x\n"


@needs_sandbox
def test_partial_and_all_or_nothing_rewards():
    s = Sample(id="d", prompt="def double(x):\n", meta={"entry_point": "double", "test": CHECK})
    right, half = _c("    return 2 * x\n"), _c("    return 2 * x if x > 0 else 0\n")
    assert code_tests_reward(s, right).score == 1.0
    assert code_tests_all_reward(s, right).score == 1.0
    # cases: candidate(1)==2 passes; 0.5 -> 1.0 passes; candidate(-1) == -2 fails (returns 0);
    # the shared loop passes (x = 0, 1, 2). So 2 of 3 cases pass.
    assert code_tests_reward(s, half).score == pytest.approx(2 / 3)
    assert code_tests_all_reward(s, half).score == 0.0
    listed = Sample(
        id="l", prompt="", meta={"tests": ["assert add(1, 2) == 3", "assert add(0, 0)"]}
    )
    assert code_tests_reward(listed, _c("def add(a, b):\n    return a + b\n")).score == 0.5
    assert code_tests_reward(Sample(id="n", prompt=""), right) is None  # not applicable
    assert call_reward(REWARDS["code_tests"], s, _c("    return (\n")).score == 0.0  # syntax error


@needs_sandbox
def test_io_tests_compare_on_the_host():
    cases = [("3\n", "6\n"), ("5\n", "10")]
    assert run_io_tests("print(int(input()) * 2)", cases).passed
    report = run_io_tests("n = int(input())\nprint(6)", cases)
    assert (report.passed, report.n_passed) == (False, 1)
    s = Sample(id="io", prompt="", meta={"io_tests": [{"input": i, "output": o} for i, o in cases]})
    assert code_tests_reward(s, _c("```python\nprint(int(input()) * 2)\n```")).score == 1.0


@needs_sandbox
def test_humaneval_canonical_pass_and_pass_bodies_fail(shared_data):
    problems = load_humaneval(shared_data / "humaneval/HumanEval.jsonl.gz")
    assert len(problems) == 164
    canonical = [(p.prompt + p.answer, p.meta["test"], p.meta["entry_point"]) for p in problems]
    stubbed = [(p.prompt + "    pass\n", t, e) for p, (_, t, e) in zip(problems, canonical)]
    start = time.perf_counter()
    with SandboxPool(workers=4) as pool:
        good = pool.run_tests_many(canonical)
        bad = pool.run_tests_many(stubbed)
    elapsed = time.perf_counter() - start
    failed = [p.id for p, r in zip(problems, good) if not (r.passed and r.fraction == 1.0)]
    assert failed == []
    wrongly_passed = [p.id for p, r in zip(problems, bad) if r.passed]
    assert wrongly_passed == []
    print(f"HumanEval 2x164 sandboxed test suites in {elapsed:.1f} s")
