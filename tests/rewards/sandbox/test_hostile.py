"""Hostile programs against the sandbox: each contained, the host unaffected, the verdict failed.

Every program defines `f` and is tested with `assert f(2) == 4`. Where the program can tell from
inside whether its attack worked, `f` returns the right answer only on success, so a passing
verdict would expose a hole. Every program first prints ATTACK-START (so a typo cannot make a
program fail for the wrong reason); after the suite the host is checked from outside.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from reasonrl.rewards import sandbox as sb
from reasonrl.rewards.code_tests import run_tests
from reasonrl.rewards.pool import SandboxPool
from reasonrl.rewards.sandbox import SandboxLimits, detect_mode
from reasonrl.rewards.sandbox.procs import uid_pids

pytestmark = pytest.mark.skipif(detect_mode() in ("uid", "none"), reason="no namespaces here")

LIMITS = SandboxLimits(
    wall_s=2.0, cpu_s=2.0, memory_mb=256, total_memory_mb=400, nproc=12, output_bytes=1 << 16
)
# The checkout (not the cwd, which may be anywhere) is the host directory the attacks go after.
REPO = Path(__file__).resolve().parents[3]
PWNED = REPO / "REASONRL_PWNED"
HOST_TMP = "/tmp/reasonrl_pwned_host"

# Attack succeeded -> OK = True -> f is correct -> the test would pass.
WIN = "\ndef f(x):\n    return x * 2 if OK else None\n"
LOSE = "\ndef f(x):\n    return None\n"


def _try(body: str) -> str:
    """A program that sets OK to whether `body` ran without an exception."""
    indented = "\n".join("    " + line for line in body.strip().splitlines())
    return f"OK = False\ntry:\n{indented}\n    OK = True\nexcept BaseException:\n    pass\n{WIN}"


def _l(*lines: str) -> str:
    return "\n".join(lines) + "\n"


def hostile_programs(port: int, port6: int | None, host_pid: int) -> dict[str, str]:
    cwd, loop_forever = REPO, "while True:\n    pass"
    p = {
        # --- resources ---
        "fork_bomb": _l(
            "import os",
            "while True:",
            "    try:",
            "        os.fork()",
            "    except OSError:",
            "        pass",
        ),
        "fork_bomb_subprocess": _l(
            "import subprocess, sys",
            "while True:",
            "    try:",
            "        subprocess.Popen([sys.executable, '-c', 'while True: pass'])",
            "    except OSError:",
            "        pass",
        ),
        "thread_bomb": _try(
            _l(
                "import threading, time",
                "for _ in range(500):",
                "    threading.Thread(target=time.sleep, args=(5,)).start()",
            )
        ),
        "memory_bomb": _l("x = []", "while True:", "    x.append(bytearray(10**7))"),
        "memory_bomb_forked": _l(
            "import os, time",
            "for _ in range(6):",
            "    if os.fork() == 0:",
            "        break",
            "x = bytearray(200 * 2**20)",
            "time.sleep(5)",
        )
        + LOSE,
        "huge_allocation": _try("x = bytearray(10**10)"),
        "infinite_loop_toplevel": loop_forever,
        "infinite_loop_in_f": _l("def f(x):", "    while True:", "        pass"),
        "swallow_timeouts": _l(
            "def f(x):",
            "    while True:",
            "        try:",
            "            while True:",
            "                pass",
            "        except BaseException:",
            "            pass",
        ),
        "sleep_forever": "import time\ntime.sleep(10**6)\n",
        "huge_output": "print('x' * 10**8)\n" + LOSE,
        "endless_stderr": _l("import sys", "while True:", "    sys.stderr.write('e' * 4096)"),
        "big_power": "x = 10 ** 10 ** 8\n" + LOSE,
        "recursion_bomb": _l(
            "import sys", "sys.setrecursionlimit(10**8)", "def r(n):", "    return r(n + 1)", "r(0)"
        ),
        "segfault": "import ctypes\nctypes.string_at(0)\n",
        "disk_fill": _try("open('big', 'wb').write(b'x' * (200 * 2**20))"),
        "many_files": _try("fs = [open(f'f{i}', 'w') for i in range(5000)]"),
        # --- filesystem ---
        "write_repo": _try(f"open('{PWNED}', 'w').write('x')"),
        "write_root_fs": _try("open('/pwned', 'w').write('x')"),
        "write_var_tmp": _try("open('/var/tmp/pwned', 'w').write('x')"),
        "write_dev_shm": _try("open('/dev/shm/pwned', 'w').write('x')"),
        "write_host_tmp": f"open('{HOST_TMP}', 'w').write('x')\n" + LOSE,  # lands in private /tmp
        "delete_repo": _try(f"import shutil\nshutil.rmtree('{cwd}')"),
        "chmod_repo": _try(f"import os\nos.chmod('{cwd}', 0o777)"),
        "write_proc_sys": _try("open('/proc/sys/kernel/hostname', 'w').write('pwned')"),
        "remount_rw": _try(
            _l(
                "import ctypes",
                "libc = ctypes.CDLL(None, use_errno=True)",
                "assert libc.mount(None, b'/', None, 32 | 4096, None) == 0",
                "open('/pwned', 'w').write('x')",
            )
        ),
        "userns_regain_privilege": _try(
            _l(
                "import ctypes",
                "libc = ctypes.CDLL(None, use_errno=True)",
                "libc.unshare(0x10000000 | 0x00020000)",
                f"open('{PWNED}', 'w').write('x')",
            )
        ),
        # --- secrets ---
        "read_shadow": _try("open('/etc/shadow').read()"),
        "read_root_home": _try("import os\nos.listdir('/root')"),
        "read_env_secret": "import os\nOK = 'REASONRL_HOSTILE_SECRET' in os.environ\n" + WIN,
        "read_proc_environ": _try(
            "assert b'REASONRL_HOSTILE_SECRET' in open('/proc/1/environ', 'rb').read()"
        ),
        "read_host_process": _try(
            f"open('/proc/{host_pid}/environ', 'rb').read()\nassert {host_pid} != 1"
        ),
        # --- network (loopback only; nothing else is ever contacted) ---
        "connect_loopback": _try(
            f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)"
        ),
        "raw_socket": _try("import socket\nsocket.socket(socket.AF_PACKET, socket.SOCK_RAW)"),
        "bring_up_loopback": _try(
            _l(
                "import fcntl, socket, struct",
                "s = socket.socket()",
                "fcntl.ioctl(s, 0x8914, struct.pack('16sH', b'lo', 1))",
            )
        ),
        "list_interfaces": "import socket\nOK = len(socket.if_nameindex()) > 1\n" + WIN,
        # --- processes ---
        "kill_parent": _try(
            _l(
                "import os, signal",
                "os.kill(os.getppid(), signal.SIGKILL)",
                "assert os.getppid() != 0",
            )
        ),
        "kill_host_pid": _try(
            _l(
                "import os, signal",
                f"os.kill({host_pid}, signal.SIGKILL)",
                f"assert {host_pid} != 1",
            )
        ),
        "kill_everything": _l(
            "import os, signal",
            "try:",
            "    os.kill(-1, signal.SIGKILL)",
            "except OSError:",
            "    pass",
        )
        + LOSE,
        "setuid_root": _try(
            _l(
                "import os",
                "os.setuid(0)",
                "assert os.getuid() == 0 and open('/etc/shadow').read()",
            )
        ),
        "daemon_double_fork": _l(
            "import os, time",
            "if os.fork() == 0:",
            "    os.setsid()",
            "    if os.fork() == 0:",
            "        time.sleep(30)",
            "    os._exit(0)",
        )
        + LOSE,
        "daemon_popen": _l(
            "import subprocess", "subprocess.Popen(['sleep', '30'], start_new_session=True)"
        )
        + LOSE,
        # --- harness tampering ---
        "exit_zero_early": "import sys\nsys.exit(0)\n",
        "os_exit_zero": "import os\nos._exit(0)\n",
        "os_exit_in_f": _l("def f(x):", "    import os", "    os._exit(0)"),
        "fake_markers": "print(':case:0:1')\nprint(':end')\n" + LOSE,
        "patch_builtins_compile": _l(
            "import builtins",
            "c = builtins.compile",
            "builtins.compile = lambda *a, **k: c('pass', 'x', 'exec')",
        )
        + LOSE,
        "patch_builtins_exec": "import builtins\nbuiltins.exec = lambda *a, **k: None\n" + LOSE,
        "patch_enumerate": "import builtins\nbuiltins.enumerate = lambda *a: iter(())\n" + LOSE,
        "patch_assertion_error": _l(
            "import builtins", "builtins.AssertionError = type('Fake', (Exception,), {})"
        )
        + LOSE,
        "sys_modules_tamper": _l(
            "import sys",
            "for m in ('os', 'signal', 'traceback', 'marshal'):",
            "    sys.modules[m] = None",
        )
        + LOSE,
        "patch_os_write": "import os\nos.write = lambda fd, data: len(data)\n" + LOSE,
        "break_stdout": _l(
            "import sys",
            "class W:",
            "    def write(self, s):",
            "        raise SystemExit(0)",
            "    def flush(self):",
            "        raise SystemExit(0)",
            "sys.stdout = sys.stderr = W()",
        )
        + LOSE,
        "close_stdout": "import os\nos.close(1)\n" + LOSE,
        "ignore_alarm": _l(
            "import signal",
            "signal.signal(signal.SIGALRM, signal.SIG_IGN)",
            "def f(x):",
            "    while True:",
            "        pass",
        ),
        "ignore_xcpu": _l(
            "import signal", "signal.signal(signal.SIGXCPU, signal.SIG_IGN)", loop_forever
        ),
    }
    if port6 is not None:
        p["connect_loopback_v6"] = _try(
            f"import socket\nsocket.create_connection(('::1', {port6}), timeout=1)"
        )
    return p


def _listener(family: int, addr: str) -> socket.socket | None:
    try:
        srv = socket.socket(family)
        srv.bind((addr, 0))
    except OSError:
        return None
    srv.listen(4)
    srv.setblocking(False)
    return srv


def test_hostile_programs_are_contained(monkeypatch):
    monkeypatch.setenv("REASONRL_HOSTILE_SECRET", "hunter2")
    srv4 = _listener(socket.AF_INET, "127.0.0.1")
    srv6 = _listener(socket.AF_INET6, "::1")
    assert srv4 is not None
    programs = hostile_programs(
        srv4.getsockname()[1], srv6.getsockname()[1] if srv6 else None, os.getpid()
    )
    assert len(programs) >= 40
    for name, code in programs.items():
        compile(code, name, "exec")  # a typo would make a program fail for the wrong reason
    host_tmp_before = set(os.listdir("/tmp"))
    start = time.perf_counter()
    with SandboxPool(workers=4) as pool:
        futures = {
            name: pool._pool.submit(
                run_tests,
                "print('ATTACK-START', flush=True)\n" + code,
                ["assert f(2) == 4"],
                limits=LIMITS,
                case_timeout_s=1.0,
            )
            for name, code in programs.items()
        }
        reports = {name: fut.result() for name, fut in futures.items()}
    elapsed = time.perf_counter() - start

    passed = [n for n, r in reports.items() if r.passed or r.fraction > 0]
    assert passed == [], f"attacks that got a passing verdict: {passed}"
    silent = [n for n, r in reports.items() if "ATTACK-START" not in r.result.stdout]
    assert silent == [], f"programs that never started: {silent}"
    assert all(r.result.isolation.level in ("full", "namespaces") for r in reports.values())
    assert elapsed < 60, f"hostile suite took {elapsed:.1f} s"

    # The host, checked from outside.
    assert not PWNED.exists() and not Path("/pwned").exists()
    assert not Path(HOST_TMP).exists() and not Path("/var/tmp/pwned").exists()
    assert not Path("/dev/shm/pwned").exists()
    assert (REPO / "pyproject.toml").exists()
    assert oct(REPO.stat().st_mode)[-3:] != "777"
    # files the programs wrote in their (private) cwd /tmp never appear in the host's /tmp
    new_on_host = set(os.listdir("/tmp")) - host_tmp_before
    assert not new_on_host & {"big", "f0", "f4999", "pwned", "reasonrl_pwned_host"}
    for srv in (srv4, srv6):
        if srv is not None:
            with pytest.raises(BlockingIOError):
                srv.accept()  # nothing ever connected
            srv.close()
    time.sleep(0.2)
    leftovers = [
        pid for uid in range(sb.UID_BASE, sb.UID_BASE + sb.MAX_SLOTS) for pid in uid_pids(uid)
    ]
    assert leftovers == [] or os.geteuid() != 0, f"sandbox processes survived: {leftovers}"
    assert os.environ["REASONRL_HOSTILE_SECRET"] == "hunter2"
    # and the sandbox still works afterwards
    ok = run_tests("def f(x):\n    return 2 * x\n", ["assert f(2) == 4"], limits=LIMITS)
    assert ok.passed and ok.fraction == 1.0


def test_known_limitation_harness_introspection_can_forge_a_pass():
    # Documented as NOT covered (docs/sandbox.md): code in the harness's own interpreter can read
    # the nonce from the harness frame and forge the markers. This test pins that the limitation
    # is real and documented; if it starts failing, the sandbox got stronger: update the docs.
    forge = (
        "import sys, os\n"
        "nonce = sys._getframe(1).f_locals['nonce']\n"
        "os.write(1, f'\\n{nonce}:case:0:1\\n{nonce}:end\\n'.encode())\n"
        "os._exit(0)\n"
    )
    report = run_tests(forge, ["assert False"], limits=LIMITS)
    assert report.passed
