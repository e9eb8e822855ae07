"""The package surface: `REWARDS` and `grade_answer` load on first use, from their public paths."""

from __future__ import annotations

import subprocess
import sys

import reasonrl.rewards
from reasonrl.rewards import REWARDS, grade_answer
from reasonrl.rewards.math import grader
from reasonrl.rewards.registry import REWARDS as REGISTRY


def test_import_rewards_loads_only_the_contract():
    code = (
        "import sys, reasonrl.rewards\n"
        "print(','.join(sorted(m for m in sys.modules if m.startswith('reasonrl.rewards.'))))\n"
        "print('subprocess' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded, subprocess_loaded = out.stdout.split()
    assert loaded == "reasonrl.rewards.api"
    assert subprocess_loaded == "False"


def test_lazy_names_resolve_to_their_modules():
    assert REWARDS is REGISTRY
    assert grade_answer is grader.grade_answer
    assert {"REWARDS", "grade_answer"} <= set(dir(reasonrl.rewards))
    assert set(reasonrl.rewards.__all__) <= set(dir(reasonrl.rewards))
