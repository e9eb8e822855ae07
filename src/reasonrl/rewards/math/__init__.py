"""Math answer grading: extract the final answer of a text and compare it with the gold answer.

`grader.py` holds the logic; `worker.py` is the child process that runs math-verify (started by
path, so it stays free of reasonrl imports). The usual entry point is
`from reasonrl.rewards import grade_answer`.
"""

from reasonrl.rewards.math.grader import (
    MathGrader,
    MathGradeTimeout,
    default_grader,
    extract_answer,
    grade_answer,
    math_reward,
    normalize_latex,
    numbers_match,
    parse_plain_number,
)
from reasonrl.text import extract_boxed

__all__ = [
    "MathGradeTimeout",
    "MathGrader",
    "default_grader",
    "extract_answer",
    "extract_boxed",
    "grade_answer",
    "math_reward",
    "normalize_latex",
    "numbers_match",
    "parse_plain_number",
]
