"""In-sandbox harness: the first Python code that runs inside the sandbox (stdlib only).

`run.py` starts `python -I -S -B -c <this file's text>` inside fresh network,
PID and mount namespaces (PID 1 of its namespace, so every process it leaves behind dies with it).
Before any untrusted code runs it:
  1. reads its config and the job (nonce, program, test cases) from stdin (marshal), then
     points stdin at /dev/null or at the job's own stdin text;
  2. mounts a size-capped private tmpfs on /tmp (the only writable place, cwd and HOME), covers
     the other world-writable directories with read-only tmpfs, remounts every mount read-only;
  3. sets rlimits (address space, CPU, processes, file size, open files, no core dumps);
  4. drops to the dedicated unprivileged uid/gid with no supplementary groups (all capabilities
     go with uid 0) and sets no_new_privs;
  5. writes one header line (what it obtained) to stdout.
Then it executes the program, then each test case in the program's namespace, writing a
`<nonce>:case:<i>:<0|1>` line after each and `<nonce>:end` after the last. The host only counts
lines carrying the nonce, so an early exit (sys.exit, os._exit, a killed harness) cannot look
like success. Everything it needs later is bound to locals before untrusted code runs.
"""

import ctypes
import marshal
import os
import resource
import signal
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND = 32, 1024, 2048, 4096
MS_REC, MS_PRIVATE, MS_RELATIME, MS_STRICTATIME = 16384, 1 << 18, 1 << 21, 1 << 24
_FLAG_BITS = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
    "strictatime": MS_STRICTATIME,
}
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP = 38, 24
PR_SET_SECUREBITS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 28, 47, 4
SECBIT_NOROOT, SECBIT_NOROOT_LOCKED = 1, 2
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def _mount_fn():
    libc = ctypes.CDLL(None, use_errno=True)

    def mount(src, target, fstype, flags, data):
        def enc(s):
            return None if s is None else s.encode()

        return libc.mount(enc(src), enc(target), enc(fstype), flags, enc(data)) == 0

    return mount


def private_filesystem(cfg):
    """Private writable /tmp, everything else read-only. Returns a report dict."""
    mount = _mount_fn()
    mount(None, "/", None, MS_REC | MS_PRIVATE, None)  # never propagate back to the host
    with open("/proc/self/mountinfo") as fh:
        existing = [(ln.split()[4], ln.split()[5]) for ln in fh]
    size_kb = int(cfg["file_mb"]) * 1024
    own = f"size={size_kb}k,mode=0700,uid={cfg['uid']},gid={cfg['gid']}"
    tmp_ok = mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, own)
    covered = ["/tmp"]
    for extra in ("/var/tmp", "/dev/shm", "/run/lock", "/dev/mqueue"):
        if os.path.isdir(extra) and mount(
            "tmpfs", extra, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, "size=4k"
        ):
            covered.append(extra)
    ro_failed = []
    for target, opts in existing:
        if target in covered or target == "/proc" or target.startswith("/proc/"):
            continue
        if "ro" in opts.split(","):
            continue  # already read-only (e.g. a read-only checkout): nothing to remount
        keep = sum(_FLAG_BITS.get(o, 0) for o in opts.split(","))
        if not mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | keep, None):
            ro_failed.append(target)
    return {"private_tmp": tmp_ok, "covered": covered, "ro_failed": ro_failed}


def set_limits(cfg):
    mb = 1024 * 1024
    cpu = int(cfg["cpu_s"]) + (1 if cfg["cpu_s"] % 1 else 0)
    limits = [
        (resource.RLIMIT_AS, int(cfg["memory_mb"]) * mb),
        (resource.RLIMIT_FSIZE, int(cfg["file_mb"]) * mb),
        (resource.RLIMIT_NOFILE, int(cfg["nofile"])),
        (resource.RLIMIT_CORE, 0),
    ]
    # Per real uid: with the dedicated uid this bounds the sandbox alone; without it, all of the
    # user's processes count, which only makes the sandbox's forks fail sooner (the safe side).
    limits.append((resource.RLIMIT_NPROC, int(cfg["nproc"])))
    for which, value in limits:
        resource.setrlimit(which, (value, value))
    # CPU: SIGXCPU at the soft limit (reported by the harness), SIGKILL one second later
    resource.setrlimit(resource.RLIMIT_CPU, (max(cpu, 1), max(cpu, 1) + 1))


def _drop_bounding_set(libc):
    # Empty the capability bounding set (CapBnd), so nothing can regain a capability later,
    # even through a file-capability binary (no_new_privs already blocks that).
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break


def _clear_capabilities(libc):
    """Give up every capability while staying uid 0 (user-namespace mode, where only uid 0 is
    mapped, so there is no other uid to switch to). Without this the program is root of its own
    user namespace: it could open raw sockets or bring up `lo` in its (empty) network namespace.
    SECBIT_NOROOT (locked) stops an exec of any binary from granting root's capabilities back."""
    libc.prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED, 0, 0, 0)
    _drop_bounding_set(libc)
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable x 2 words: all zero
    libc.capset(header, data)


def drop_privileges(cfg):
    libc = ctypes.CDLL(None, use_errno=True)
    if cfg["mode"] == "userns":
        _clear_capabilities(libc)
    if cfg["uid_drop"]:
        _drop_bounding_set(libc)
        os.setgroups([])
        os.setresgid(cfg["gid"], cfg["gid"], cfg["gid"])
        os.setresuid(cfg["uid"], cfg["uid"], cfg["uid"])
    return libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0


def _cap_eff():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("CapEff:"):
                return line.split()[1]
    return "?"


def _print_exc():
    import traceback  # only on failure: saves its import on every passing run

    traceback.print_exc()


class _CaseTimeout(BaseException):
    pass


def _on_alarm(signum, frame):
    raise _CaseTimeout()


def prepare(cfg, job):
    """Confine this process (filesystem, limits, privileges, stdin); returns the header."""
    report = {"mode": cfg["mode"]}
    if cfg["mode"] in ("root", "userns"):
        report.update(private_filesystem(cfg))
    workdir = "/tmp" if report.get("private_tmp") else cfg["workdir"]
    set_limits(cfg)
    report["no_new_privs"] = drop_privileges(cfg)
    report.update(uid=os.getuid(), cap_eff=_cap_eff())
    os.chdir(workdir)
    os.environ.update(HOME=workdir, TMPDIR=workdir)
    os.umask(0o077)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    if job.get("stdin") is not None:
        import io

        sys.stdin = io.StringIO(job["stdin"])
    return report


def main():
    # marshal is built in: no import cost (json + re + enum add ~10-30 ms to every run)
    cfg, job = marshal.loads(sys.stdin.buffer.read())
    report = prepare(cfg, job)
    # Bind everything used after untrusted code runs: the program may rebind builtins
    # (compile, exec, enumerate ...) or module attributes (os.write, signal.setitimer).
    write, exit_now, nonce = os.write, os._exit, job.pop("nonce")
    compile_, exec_, enumerate_, base_exc = compile, exec, enumerate, BaseException
    out, err = sys.stdout, sys.stderr
    print_exc, set_timer, itimer = _print_exc, signal.setitimer, signal.ITIMER_REAL
    cases, case_timeout = list(job.get("cases") or []), job.get("case_timeout_s")
    signal.signal(signal.SIGALRM, _on_alarm)

    def on_cpu_limit(signum, frame):  # RLIMIT_CPU soft limit: say so, then stop at once
        write(1, f"\n{nonce}:cpu\n".encode())
        exit_now(124)

    signal.signal(signal.SIGXCPU, on_cpu_limit)
    write(1, ("\n" + repr(report) + "\n").encode())  # host reads it with ast.literal_eval

    def flush():
        for stream in (out, err):
            try:
                stream.flush()
            except base_exc:  # a stream the program broke must not crash the harness
                continue

    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        exec_(compile_(job["code"], "<program>", "exec"), namespace)
        if job.get("setup"):
            exec_(compile_(job["setup"], "<tests>", "exec"), namespace)
    except base_exc:
        print_exc()
        flush()
        exit_now(1)
    for i, case in enumerate_(cases):
        ok = 0
        try:
            try:
                if case_timeout:
                    set_timer(itimer, case_timeout)
                exec_(compile_(case, f"<case {i}>", "exec"), namespace)
                ok = 1
            finally:
                set_timer(itimer, 0)
        except base_exc:  # includes a late alarm that fires inside the finally above
            ok = 0
            print_exc()
        flush()
        write(1, f"\n{nonce}:case:{i}:{ok}\n".encode())
    flush()
    write(1, f"\n{nonce}:end\n".encode())
    exit_now(0)


if __name__ == "__main__":  # run as `python -c <text>`; importing it runs nothing
    main()
