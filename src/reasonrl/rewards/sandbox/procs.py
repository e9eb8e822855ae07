"""Process-tree helpers for the sandbox watchdog (Linux /proc only; no third-party deps)."""

from __future__ import annotations

import contextlib
import os
import signal
import time

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out.extend(int(c) for c in fh.read().split())
        except OSError:
            continue
    return out


def tree_pids(root: int) -> list[int]:
    """`root` and all its descendants (host PIDs), found through /proc/<pid>/task/*/children."""
    seen, stack = [], [root]
    while stack and len(seen) < 4096:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.append(pid)
        stack.extend(_children(pid))
    return seen


def tree_rss_bytes(pids: list[int]) -> int:
    """Sum of resident memory of `pids` (shared pages are counted once per process)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm") as fh:
                total += int(fh.read().split()[1]) * _PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total


def uid_pids(uid: int) -> list[int]:
    """Host PIDs of every process owned by `uid` (a /proc scan: ~1 ms)."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    out.append(int(name))
            except OSError:
                continue
    return out


def kill_tree(root: int, *, uid: int | None = None) -> None:
    """SIGKILL the process group of `root`, every descendant, and (if given) every process of
    `uid` (used when there is no PID namespace to reap escaped daemons)."""
    victims = tree_pids(root)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(root, signal.SIGKILL)
    if uid is not None and uid != 0:
        victims.extend(uid_pids(uid))
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue


def wait_uid_gone(uid: int, timeout_s: float = 2.0) -> bool:
    """SIGKILL every process of `uid` until none is left (dying processes take a moment to
    free their memory and leave /proc). True if none is left within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        pids = uid_pids(uid)
        if not pids:
            return True
        if time.monotonic() > deadline:
            return False
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
