"""Run untrusted, model-written Python in a separate, confined process.

What is covered (each has its own test in tests/rewards/sandbox/):
- No network: a fresh network namespace with only a loopback that is down (no routes, no
  interfaces but `lo`); nothing, not even 127.0.0.1 on the host, is reachable.
- Processes: a fresh PID namespace whose init is the harness, so every process the program
  starts (daemons, double forks, setsid) dies with it; the host's processes are invisible.
  RLIMIT_NPROC on a dedicated uid per concurrent run bounds fork bombs (as root).
- Privileges: as root, drops to a dedicated unprivileged uid/gid (no supplementary groups, no
  capabilities, no_new_privs), so root-only files (/etc/shadow) are unreadable and host
  processes cannot be signalled. As a normal user, an unprivileged user namespace provides the
  namespaces and the program keeps the user's own (unprivileged) identity.
- Files: a private, size-capped tmpfs on /tmp is the only writable place (cwd and HOME); the
  other world-writable directories are covered and every mount is remounted read-only inside
  the sandbox's mount namespace. It disappears with the namespace: nothing to clean up.
- Resources: RLIMIT_CPU, RLIMIT_AS (per process), RLIMIT_FSIZE, RLIMIT_NOFILE, no core dumps;
  a wall-clock limit; a host-side watchdog that sums the resident memory of the whole process
  tree and kills it past a budget (per-process limits alone do not bound the total); a cap on
  the bytes read from stdout+stderr.
- Environment: a clean environment (PATH, LANG only): no inherited secrets; `python -I -S`.
- Verdicts: the program's results count only when followed by a per-run random nonce written
  by the harness, so exiting early (sys.exit(0), os._exit(0), killing the harness) fails.
- Killing: the whole process group and the namespace's init are SIGKILLed at the end.

What is not covered:
- Code that introspects the harness inside its own interpreter (frames, `gc`) can find the
  nonce, and objects with an always-true `__eq__` can satisfy `assert x == y` tests. This
  matters for reward hacking by a strong policy, not for host safety; for stdin/stdout
  problems use `run_io_tests`, which compares outputs on the host.
- Kernel exploits and side channels (CPU time, cache timing); no seccomp filter is installed.
- Without `unshare` (mode "uid" or "none") there is no network or PID isolation: by default
  such runs are refused (`SandboxResult.status == "unavailable"`). See docs/sandbox.md.
- The watchdog polls (every ~20 ms): a burst between polls is bounded by RLIMIT_AS x NPROC.
Cgroups are deliberately not used: they may belong to the machine's supervisor.
"""

from __future__ import annotations

import marshal
import os
import pwd
import secrets
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any

from reasonrl.rewards.lazy import Lazy
from reasonrl.rewards.sandbox.procs import kill_tree, tree_pids, tree_rss_bytes, wait_uid_gone
from reasonrl.rewards.sandbox.result import Isolation, Mode, SandboxLimits, SandboxResult, verdict

_HARNESS = Path(__file__).with_name("harness.py")  # read as text, run with `python -I -S -c`
UID_BASE = int(os.environ.get("REASONRL_SANDBOX_UID_BASE", "61000"))
MAX_SLOTS = 64
_NAMESPACES = ["--net", "--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL"]


def _probe(cmd: list[str]) -> bool:
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@lru_cache(maxsize=1)
def detect_mode() -> Mode:
    """The strongest isolation this host allows (probed once per process)."""
    unshare = shutil.which("unshare")
    if os.geteuid() == 0:
        return "root" if unshare and _probe([unshare, *_NAMESPACES, "true"]) else "uid"
    if unshare and _probe([unshare, "--user", "--map-root-user", *_NAMESPACES, "true"]):
        return "userns"
    return "none"


class _Slots:
    """Dedicated uids, one per concurrent run, so RLIMIT_NPROC counts only that run."""

    def __init__(self) -> None:
        self._free = [uid for uid in range(UID_BASE, UID_BASE + MAX_SLOTS) if not _uid_taken(uid)]
        self._cond = threading.Condition()

    def acquire(self) -> int:
        with self._cond:
            while not self._free:
                self._cond.wait()
            return self._free.pop(0)

    def release(self, uid: int) -> None:
        with self._cond:
            self._free.append(uid)
            self._cond.notify()


def _uid_taken(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


_SLOTS = Lazy(_Slots)


@lru_cache(maxsize=1)
def sandbox_python() -> str:
    """An interpreter whose standard library the sandbox uid can read (probed once).

    This one is tried first; a Python under a private home (e.g. pyenv in /root, mode 700)
    cannot import its stdlib after the uid drop, so the system python3 is the fallback.
    `REASONRL_SANDBOX_PYTHON` overrides the choice.
    """
    if os.environ.get("REASONRL_SANDBOX_PYTHON"):
        return os.environ["REASONRL_SANDBOX_PYTHON"]
    found = [os.path.realpath(sys.executable), shutil.which("python3"), "/usr/bin/python3"]
    candidates = list(dict.fromkeys(os.path.realpath(c) for c in found if c))
    for cand in candidates:
        if os.access(cand, os.X_OK):
            probe = run_python("import typing, json, collections, math, re", python=cand)
            if probe.status in ("ok", "unavailable"):
                return cand
    return candidates[0]


@lru_cache(maxsize=1)
def _harness_source() -> str:
    return _HARNESS.read_text()


def _command(mode: Mode, python: str) -> list[str]:
    harness = [python, "-I", "-S", "-B", "-c", _harness_source()]
    unshare = shutil.which("unshare") or "unshare"
    if mode == "root":
        return [unshare, *_NAMESPACES, *harness]
    if mode == "userns":
        return [unshare, "--user", "--map-root-user", *_NAMESPACES, *harness]
    return harness


def run_python(
    code: str,
    *,
    cases: list[str] | None = None,
    setup: str | None = None,
    stdin: str | None = None,
    limits: SandboxLimits | None = None,
    case_timeout_s: float | None = None,
    require_isolation: bool = True,
    python: str | None = None,
) -> SandboxResult:
    """Run `code` (then `setup`, then each of `cases`) in a fresh sandbox.

    Args:
        code: the untrusted program.
        cases: test snippets executed one by one in the program's namespace; each reports
            pass (no exception) or fail, so a partial pass rate is available.
        setup: trusted test scaffolding executed after the program (e.g. a `check` function).
        stdin: text the program reads from `sys.stdin` (default: empty).
        limits: resource limits (default `SandboxLimits()`).
        case_timeout_s: per-case alarm inside the harness (the wall limit still applies).
        require_isolation: refuse to run without network and PID namespaces (status
            "unavailable") rather than run untrusted code unconfined.
        python: interpreter inside the sandbox (default: `sandbox_python()`).
    Returns:
        a `SandboxResult`; never raises for anything the program does.
    """
    limits = limits or SandboxLimits()
    mode = detect_mode()
    if mode in ("uid", "none") and require_isolation:
        iso = Isolation(mode=mode, notes=("unshare unavailable: refusing to run unconfined",))
        return SandboxResult("unavailable", None, "", "", 0.0, iso)
    uid_drop = mode in ("root", "uid")
    uid = _SLOTS.get().acquire() if uid_drop else None
    workdir = None
    try:
        if mode in ("uid", "none"):  # no private tmpfs: a host temp dir owned by the run
            workdir = tempfile.mkdtemp(prefix="reasonrl-sbx-")
            if uid is not None:
                os.chown(workdir, uid, uid)
        cfg = {
            **asdict(limits),
            "mode": mode,
            "uid": uid if uid is not None else 0,
            "gid": uid if uid is not None else 0,
            "uid_drop": uid_drop,
            "workdir": workdir or "/tmp",
        }
        job = {
            "nonce": secrets.token_hex(16),
            "code": code,
            "setup": setup,
            "cases": list(cases or []),
            "stdin": stdin,
            "case_timeout_s": case_timeout_s,
        }
        python = python or sandbox_python()
        return _execute(_command(mode, python), cfg, job, limits, mode, uid)
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
        if uid is not None:
            # the next run with this uid must start from zero processes (RLIMIT_NPROC)
            if mode == "root":
                wait_uid_gone(uid)
            _SLOTS.get().release(uid)


def _execute(
    cmd: list[str],
    cfg: dict[str, Any],
    job: dict[str, Any],
    limits: SandboxLimits,
    mode: Mode,
    uid: int | None,
) -> SandboxResult:
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd="/",
        start_new_session=True,  # its own process group: killed as a whole
        close_fds=True,
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(marshal.dumps((cfg, job)))
        proc.stdin.close()
    except BrokenPipeError:
        pass
    out, err, why, peak = _pump(proc, limits, start)
    wall = time.monotonic() - start
    kill_tree(proc.pid, uid=uid if mode == "uid" else None)
    rc = proc.wait()
    return verdict(out, err, why, rc, wall, peak, job["nonce"], len(job["cases"]), mode, uid)


def _pump(
    proc: subprocess.Popen[bytes], limits: SandboxLimits, start: float
) -> tuple[bytes, bytes, str | None, int]:
    """Read stdout/stderr until exit or a limit; returns (out, err, limit hit or None, peak RSS)."""
    assert proc.stdout is not None and proc.stderr is not None
    streams = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    open_fds = set(streams)
    budget = limits.total_memory_mb * 1024 * 1024
    why, peak, next_poll = None, 0, 0.0
    while open_fds:
        now = time.monotonic()
        if now - start > limits.wall_s:
            why = "timeout"
            break
        ready, _, _ = select.select(list(open_fds), [], [], 0.02)
        for fd in ready:
            chunk = os.read(fd, 65536)
            if chunk:
                streams[fd].extend(chunk)
            else:
                open_fds.discard(fd)
        if sum(len(b) for b in streams.values()) > limits.output_bytes:
            why = "output_limit"
            break
        if now >= next_poll:
            rss = tree_rss_bytes(tree_pids(proc.pid))
            peak = max(peak, rss)
            if rss > budget:
                why = "memory"
                break
            next_poll = now + 0.02
    if why is not None:
        kill_tree(proc.pid)
    return bytes(streams[proc.stdout.fileno()]), bytes(streams[proc.stderr.fileno()]), why, peak


def sandbox_info() -> Isolation:
    """Run a trivial program and return the isolation obtained (for logs and `reasonrl doctor`)."""
    return run_python("pass", require_isolation=False).isolation
