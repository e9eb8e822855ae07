"""Each sandbox guarantee of reasonrl/rewards/sandbox/run.py ("What is covered") has a test here."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import reasonrl
from reasonrl.rewards.sandbox import SandboxLimits, detect_mode, run_python
from reasonrl.rewards.sandbox import run as sb
from reasonrl.rewards.sandbox.procs import uid_pids

pytestmark = pytest.mark.skipif(detect_mode() in ("uid", "none"), reason="no namespaces here")
FAST = SandboxLimits(wall_s=3.0, cpu_s=3.0)
ROOT = os.geteuid() == 0


def _run(code: str, **kw) -> sb.SandboxResult:
    kw.setdefault("limits", FAST)
    return run_python(code, **kw)


def test_reports_isolation_obtained():
    iso = _run("pass").isolation
    assert iso.network and iso.pid_ns and iso.private_tmp and iso.readonly_fs and iso.no_new_privs
    assert iso.level == ("full" if ROOT else "namespaces")
    if ROOT:
        assert iso.uid_drop and iso.uid is not None and iso.uid >= sb.UID_BASE


def test_no_network_interfaces_or_routes():
    code = (
        "import socket\n"
        "print(sorted(n for _, n in socket.if_nameindex()))\n"
        "print(len(open('/proc/net/route').read().splitlines()[1:]))\n"
    )
    res = _run(code)
    # only the loopback device exists (and it is down); the route table has no entries
    assert res.status == "ok" and res.stdout.split("\n") == ["['lo']", "0"]


def test_host_loopback_listener_unreachable():
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        srv.setblocking(False)
        port = srv.getsockname()[1]
        code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
        res = _run(code)
        assert (res.status == "error" and "OSError" in res.stderr) or "Error" in res.stderr
        with pytest.raises(BlockingIOError):
            srv.accept()


def test_wall_clock_limit():
    res = _run("import time\ntime.sleep(30)", limits=SandboxLimits(wall_s=1.0))
    assert res.status == "timeout" and res.wall_s < 2.5


def test_cpu_limit():
    res = _run("while True:\n    pass", limits=SandboxLimits(wall_s=20.0, cpu_s=1.0))
    assert res.status == "timeout" and res.info["cpu_limited"] and res.wall_s < 10


def test_per_process_memory_limit():
    res = _run("x = bytearray(600 * 2**20)", limits=SandboxLimits(memory_mb=256))
    assert res.status == "error" and "MemoryError" in res.stderr


def test_total_memory_watchdog_kills_the_tree():
    # 4 processes x 150 MB each stay under RLIMIT_AS (256 MB) but exceed the 300 MB total budget
    code = (
        "import os, time\n"
        "for _ in range(3):\n"
        "    if os.fork() == 0:\n"
        "        break\n"
        "x = bytearray(150 * 2**20)\n"
        "time.sleep(10)\n"
    )
    lim = SandboxLimits(wall_s=8.0, memory_mb=256, total_memory_mb=300)
    res = _run(code, limits=lim)
    assert res.status == "memory" and res.wall_s < 6


def test_process_count_limit_bounds_fork_bomb():
    code = (
        "import os\nn = 0\n"
        "try:\n"
        "    while n < 1000:\n"
        "        if os.fork() == 0:\n"
        "            import time; time.sleep(5); os._exit(0)\n"
        "        n += 1\n"
        "except OSError:\n"
        "    print('capped at', n)\n"
    )
    res = _run(code, limits=SandboxLimits(wall_s=3.0, nproc=8))
    if ROOT:  # the dedicated uid's limit: 8 processes in all, the harness included
        assert res.stdout.startswith("capped at") and int(res.stdout.split()[-1]) <= 8
    else:  # the user's own limit counts all their processes: forks fail at once or soon
        assert "capped at" in res.stdout


def test_private_tmp_is_the_only_writable_place(tmp_path):
    code = (
        "import os\nprint(os.getcwd(), os.environ['HOME'])\n"
        "open('here.txt', 'w').write('x'); open('/tmp/reasonrl_probe', 'w').write('x')\n"
        "for p in ('/var/tmp/a', '/dev/shm/a', '/run/lock/a', '/root/a', '/a', "
        f"'{Path.cwd()}/a', '{tmp_path}/a'):\n"
        "    try:\n"
        "        open(p, 'w').write('x'); print('WROTE', p)\n"
        "    except OSError as e:\n"
        "        print('denied', type(e).__name__)\n"
    )
    res = _run(code)
    assert res.status == "ok" and res.stdout.startswith("/tmp /tmp")
    assert "WROTE" not in res.stdout and res.stdout.count("denied") == 7
    assert not Path("/tmp/reasonrl_probe").exists() and not Path("/a").exists()


def test_file_size_limit():
    code = "open('big', 'wb').write(b'x' * (8 * 2**20))\n"
    res = _run(code, limits=SandboxLimits(file_mb=2))
    assert res.status == "error" and not res.completed


def test_clean_environment(monkeypatch):
    monkeypatch.setenv("REASONRL_SECRET_TOKEN", "hunter2")
    res = _run("import os\nprint(sorted(os.environ))\nprint(os.environ)")
    assert res.status == "ok" and "hunter2" not in res.stdout
    assert res.stdout.split("\n")[0] == "['HOME', 'LANG', 'PATH', 'TMPDIR']"


@pytest.mark.skipif(not ROOT, reason="uid drop needs root")
def test_privileges_dropped():
    code = (
        "import os\nprint(os.getuid(), os.getgid(), os.getgroups())\n"
        "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('Cap')])\n"
        "try:\n    open('/etc/shadow').read(); print('READ')\n"
        "except OSError:\n    print('denied')\n"
    )
    res = _run(code)
    uid, caps, shadow = res.stdout.split("\n")
    assert int(uid.split()[0]) >= sb.UID_BASE and uid.endswith("[]")
    assert set(eval(caps)) == {"0000000000000000"}  # CapInh/Prm/Eff/Bnd/Amb all empty
    assert shadow == "denied"


def test_output_cap():
    res = _run(
        "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)",
        limits=SandboxLimits(output_bytes=100_000),
    )
    assert res.status == "output_limit" and len(res.stdout) < 300_000


def test_pid_namespace_and_daemons_die_with_the_run():
    code = (
        "import os, time\nprint(os.getpid())\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(60)\n"
        "    os._exit(0)\n"
        "time.sleep(0.2)\n"
        "print(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))\n"
    )
    res = _run(code)
    pid, visible = res.stdout.split("\n")
    assert pid == "1"  # the harness is the init of its own PID namespace
    assert len(eval(visible)) <= 3  # harness, daemon: the host's processes are invisible
    if ROOT:
        assert uid_pids(res.isolation.uid) == []  # nothing of that uid survives on the host


def test_early_exit_is_not_success():
    for code in ("import sys\nsys.exit(0)", "import os\nos._exit(0)", "raise SystemExit"):
        res = _run(code, cases=["assert True"])
        assert not res.completed and not res.passed and res.cases == (False,)


def test_fake_markers_without_nonce_do_not_count():
    res = _run("print(':case:0:1')\nprint(':end')", cases=["assert False"])
    assert res.completed and res.cases == (False,) and not res.passed


def test_cases_report_individually_with_per_case_timeout():
    cases = ["assert x == 1", "assert x == 2", "while True: pass", "assert x"]
    res = _run("x = 1", cases=cases, case_timeout_s=0.5)
    assert res.completed and res.cases == (True, False, False, True)


def test_stdin_is_passed():
    res = _run("print(input()[::-1])", stdin="abc\n")
    assert res.stdout == "cba"


def test_refuses_without_isolation(monkeypatch):
    monkeypatch.setattr(sb, "detect_mode", lambda: "none")
    res = run_python("print(1)")
    assert res.status == "unavailable" and res.isolation.level == "none" and not res.passed


@pytest.mark.skipif(
    not ROOT or not Path("/usr/bin/python3").exists(),
    reason="needs root (to switch to an unprivileged user) and a system python3",
)
def _world_readable_dir() -> Path | None:
    """A fresh temp dir that uid 65534 can reach: every ancestor world-searchable, itself 0o755.

    The checkout may live under a private directory (a `mktemp -d` clone is mode 700), and TMPDIR
    may be private too, so candidates are tried in order until one is reachable.
    """
    import tempfile

    for base in (tempfile.gettempdir(), "/tmp", "/var/tmp", "/dev/shm"):
        base_path = Path(base).resolve()
        if not base_path.is_dir() or not all(
            p.stat().st_mode & 0o001 for p in (base_path, *base_path.parents)
        ):
            continue
        try:
            made = Path(tempfile.mkdtemp(prefix="reasonrl-nobody-", dir=base_path))
        except OSError:
            continue
        made.chmod(0o755)
        return made
    return None


@pytest.mark.skipif(not ROOT, reason="switching to uid 65534 with setpriv needs root")
@pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="no /usr/bin/python3")
def test_works_as_a_normal_user():
    # Run the sandbox from an unprivileged uid (nobody): it must fall back to a user namespace.
    # The package is copied to a world-readable place first: nobody cannot traverse a private
    # checkout (a mode-700 parent), and this test is about the sandbox, not the checkout's path.
    import shutil

    where = _world_readable_dir()
    if where is None:
        pytest.skip("no temp directory that uid 65534 can reach")
    try:
        pkg = Path(reasonrl.__file__).resolve().parent
        shutil.copytree(pkg, where / "reasonrl", ignore=shutil.ignore_patterns("__pycache__"))
        for path in where.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        code = (
            "from reasonrl.rewards.sandbox import run_python\n"
            "r = run_python('import os; print(os.getuid())', cases=['assert 1'])\n"
            "print(r.status, r.isolation.mode, r.isolation.level, r.passed, r.stdout)\n"
        )
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
               "/usr/bin/python3", "-c", code]  # fmt: skip
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(where), "HOME": str(where)}
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd="/", timeout=60)
    finally:
        shutil.rmtree(where, ignore_errors=True)
    out = done.stdout.split()
    assert done.returncode == 0, done.stderr
    if out[0] == "unavailable":  # kernels that forbid unprivileged user namespaces
        assert out[1] == "none"
    else:
        # inside the user namespace the program is "root" mapped to nobody, with no real privilege
        assert out[:5] == ["ok", "userns", "namespaces", "True", "0"]


def test_sandbox_python_can_import_stdlib():
    assert os.access(sb.sandbox_python(), os.X_OK)
    res = _run("import json, collections, typing, math, re, hashlib\nprint('ok')")
    assert res.stdout == "ok", res.stderr
    assert sys.executable  # the host interpreter is untouched
