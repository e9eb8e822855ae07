"""Sandbox records (limits, isolation, result) and the parsing of a run's output into a verdict.

Split from `run.py` to keep files small; import these names from `reasonrl.rewards.sandbox`.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from typing import Any, Literal

from reasonrl.text import literal_eval

Mode = Literal["root", "userns", "uid", "none"]
Status = Literal["ok", "error", "timeout", "memory", "output_limit", "unavailable"]


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one run (all enforced; defaults suit unit-test style programs)."""

    wall_s: float = 10.0
    cpu_s: float = 10.0  # RLIMIT_CPU per process, rounded up to whole seconds
    memory_mb: int = 512  # RLIMIT_AS per process
    total_memory_mb: int = 1024  # watchdog budget for the resident memory of the whole tree
    nproc: int = 16  # RLIMIT_NPROC (processes + threads of the sandbox uid)
    output_bytes: int = 1 << 20  # stdout + stderr bytes read before the run is killed
    file_mb: int = 16  # RLIMIT_FSIZE and the size of the private /tmp
    nofile: int = 64  # RLIMIT_NOFILE


@dataclass(frozen=True)
class Isolation:
    """What a run actually obtained. `level`: "full" (namespaces + uid drop), "namespaces"
    (user namespace: no separate uid), "weak" (uid drop only) or "none"."""

    mode: Mode
    network: bool = False
    pid_ns: bool = False
    private_tmp: bool = False
    readonly_fs: bool = False
    uid_drop: bool = False
    no_new_privs: bool = False
    uid: int | None = None
    notes: tuple[str, ...] = ()

    @property
    def level(self) -> str:
        if self.network and self.pid_ns and self.uid_drop:
            return "full"
        if self.network and self.pid_ns:
            return "namespaces"
        return "weak" if self.uid_drop else "none"


@dataclass(frozen=True)
class SandboxResult:
    """Outcome of one run. `completed`: the harness reached its end marker; `cases`: per test
    case pass flags in order (False for cases never reported)."""

    status: Status
    returncode: int | None
    stdout: str
    stderr: str
    wall_s: float
    isolation: Isolation
    completed: bool = False
    cases: tuple[bool, ...] = ()
    peak_rss_mb: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """The program and every case ran to the end without error."""
        return self.status == "ok" and self.completed and all(self.cases)


def _parse_header(lines: list[str]) -> tuple[dict[str, Any], list[str]]:
    """The harness's header (its first non-empty line, written before any untrusted code)."""
    for i, line in enumerate(lines):
        if line.strip():
            try:
                parsed = literal_eval(line)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                return {}, lines
            return (parsed, lines[i + 1 :]) if isinstance(parsed, dict) else ({}, lines)
    return {}, lines


def _parse_markers(
    lines: list[str], nonce: str, n_cases: int
) -> tuple[list[bool], bool, bool, list[str]]:
    """(case flags, completed, cpu limit hit, the program's own lines) from the output lines."""
    cases = [False] * n_cases
    completed, cpu_marker, kept = False, False, []
    for line in lines:
        if nonce not in line:
            kept.append(line)
            continue
        at = line.index(nonce)
        tag = line[at + len(nonce) :]
        if tag == ":end":
            completed = True
        elif tag == ":cpu":
            cpu_marker = True
        elif tag.startswith(":case:"):
            idx, _, ok = tag[len(":case:") :].partition(":")
            if idx.isdigit() and int(idx) < n_cases:
                cases[int(idx)] = ok == "1"
        if line[:at]:
            kept.append(line[:at])
    return cases, completed, cpu_marker, kept


def verdict(
    out: bytes,
    err: bytes,
    why: str | None,
    rc: int,
    wall: float,
    peak: int,
    nonce: str,
    n_cases: int,
    mode: Mode,
    uid: int | None,
) -> SandboxResult:
    """The `SandboxResult` of a finished run, from its raw output, exit code and limit hit."""
    header, lines = _parse_header(out.decode("utf-8", errors="replace").split("\n"))
    cases, completed, cpu_marker, kept = _parse_markers(lines, nonce, n_cases)
    stdout = "\n".join(kept).strip("\n")
    # unshare cannot pass on a child's death by signal (it exits 1), so the harness reports the
    # CPU limit itself; a program that ignores SIGXCPU is SIGKILLed one second later ("error").
    cpu_limited = cpu_marker or rc in (-signal.SIGXCPU, 128 + signal.SIGXCPU)
    status: Status
    if why is not None:
        status = why  # type: ignore[assignment]
    elif cpu_limited:
        status = "timeout"
    else:
        status = "ok" if rc == 0 and completed else "error"
    iso = _isolation(mode, header, uid)
    info = {"cpu_limited": cpu_limited}
    return SandboxResult(
        status=status,
        returncode=rc,
        stdout=stdout,
        stderr=err.decode("utf-8", errors="replace")[-20000:],
        wall_s=wall,
        isolation=iso,
        completed=completed,
        cases=tuple(cases),
        peak_rss_mb=peak / 2**20,
        info=info,
    )


def _isolation(mode: Mode, header: dict[str, Any], uid: int | None) -> Isolation:
    ns = mode in ("root", "userns") and bool(header)
    notes = []
    if header.get("ro_failed"):
        notes.append(f"could not remount read-only: {header['ro_failed']}")
    dropped = uid is not None and header.get("uid") == uid and header.get("cap_eff") == "0" * 16
    return Isolation(
        mode=mode,
        network=ns,
        pid_ns=ns,
        private_tmp=bool(header.get("private_tmp")),
        readonly_fs=ns and not header.get("ro_failed"),
        uid_drop=dropped,
        no_new_privs=bool(header.get("no_new_privs")),
        uid=header.get("uid"),
        notes=tuple(notes),
    )
