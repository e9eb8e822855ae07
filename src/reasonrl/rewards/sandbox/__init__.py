"""Run untrusted, model-written Python in a separate, confined process (threat model:
docs/sandbox.md).

- `run.py`: `run_python` and the isolation it probes for (`detect_mode`, `sandbox_python`);
- `result.py`: the records (`SandboxLimits`, `Isolation`, `SandboxResult`) and the verdict;
- `procs.py`: process-tree helpers of the host-side watchdog (/proc);
- `harness.py`: the first code run inside the sandbox. It is read as text and executed with
  `python -I -S`, so it is stdlib-only and self-contained: never import it.
"""

from reasonrl.rewards.sandbox.result import Isolation, Mode, SandboxLimits, SandboxResult, Status
from reasonrl.rewards.sandbox.run import (
    MAX_SLOTS,
    UID_BASE,
    detect_mode,
    run_python,
    sandbox_info,
    sandbox_python,
)

__all__ = [
    "MAX_SLOTS",
    "UID_BASE",
    "Isolation",
    "Mode",
    "SandboxLimits",
    "SandboxResult",
    "Status",
    "detect_mode",
    "run_python",
    "sandbox_info",
    "sandbox_python",
]
