"""The suite passes wherever the checkout lives and however the shell is set up.

One test copies the working tree into a fresh `mkdtemp` directory (mode 700, as CI systems and
users' scratch dirs are), then runs the whole suite there from `tests/` as the working directory,
with umask 077, HOME unset and TMPDIR pointing to a private directory. Anything in the suite that
depends on where the checkout is, on the cwd, on HOME or on file modes fails here first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
INNER = "REASONRL_PORTABLE_INNER"  # set in the inner run, so this test does not recurse


def _tracked_and_untracked(repo: Path) -> list[str]:
    """Files git tracks plus untracked ones it does not ignore (the working tree as CI sees it)."""
    done = subprocess.run(
        ["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    )
    return [name for name in done.stdout.decode().split("\0") if name]


@pytest.mark.skipif(bool(os.environ.get(INNER)), reason="this is the inner run")
@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to list the working tree")
def test_suite_passes_from_a_private_copy_with_a_hostile_environment(
    shared_data_or_none: Path | None,
) -> None:
    outer = Path(tempfile.mkdtemp(prefix="reasonrl-portable-"))  # mode 0o700
    try:
        copy = outer / "checkout"
        for name in _tracked_and_untracked(REPO):
            src = REPO / name
            if src.is_file():
                (copy / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, copy / name)
        private_tmp = outer / "tmp"
        private_tmp.mkdir(mode=0o700)
        env = {k: v for k, v in os.environ.items() if k not in ("HOME", "PYTHONPATH")}
        env |= {INNER: "1", "TMPDIR": str(private_tmp), "PYTHONPATH": str(copy / "src")}
        if shared_data_or_none is not None:  # the copy has no neighbours: point it at the data
            env["REASONRL_SHARED_DATA"] = str(shared_data_or_none)
        probe = subprocess.run(
            [sys.executable, "-c", "import reasonrl; print(reasonrl.__file__)"],
            capture_output=True, text=True, env=env, cwd=copy / "tests", check=True,
        )  # fmt: skip
        assert probe.stdout.startswith(str(copy)), f"the copy's package was not used: {probe}"
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x"],
            capture_output=True, text=True, env=env, cwd=copy / "tests", timeout=1500,
            preexec_fn=lambda: os.umask(0o077),
        )  # fmt: skip
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-40:])
        assert done.returncode == 0, tail
        assert " passed" in tail and "failed" not in tail, tail
    finally:
        shutil.rmtree(outer, ignore_errors=True)
