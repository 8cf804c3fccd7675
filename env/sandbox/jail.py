"""Per-call jails for model-written code. Runs inside a sandbox worker (standard library only).

Layout of one code call (all of it already inside the worker's bubblewrap sandbox)::

    worker W ──pipe──▶ zygote Z          (forked from W at start, before any session existed)
                          └─fork─▶ C     unshare(user, mount, pid, ipc); user.max_user_namespaces=0;
                                         into the read-only root template (system binds, /dev) bind
                                         the session's workspace on /workspace, fresh /tmp; chroot
                                  └─fork─▶ G   pid 1 of its own pid namespace: fresh /proc, setsid,
                                               rlimits, every capability dropped, no_new_privs,
                                               optional seccomp, fds 0/1/2 redirected, exec(code)

Why each piece:

- **Z** holds no session data, so model code forked from it cannot read other sessions'
  backend state out of its own memory, and the interpreter state is fresh on every call
  (Python start-up is ~20 ms; a fork is ~1 ms).
- **pid namespace**: the code cannot see or signal the worker, the zygote or the server;
  when G exits or is killed, the kernel kills everything left in its namespace, so nothing
  outlives the call (background processes, fork bombs).
- **user + mount namespace**: the code's root holds only read-only system files, its own
  workspace and a private /tmp; the worker's tree (other sessions' workspaces) lies outside
  it, not even listed in mountinfo; it cannot create further user namespaces.
- **rlimits**: CPU, address space, open files, processes (RLIMIT_NPROC, counted inside the
  call's own user namespace), file size.
- Z enforces wall time (kills G, hence the whole namespace) and output size.
"""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import sys
import time
import traceback
from typing import Any

from toolgym.env.sandbox import lockdown as lk
from toolgym.env.sandbox import protocol

WORKSPACE_MOUNT = "/workspace"
WORKSPACE_ROOT = "/ws"
JAIL_ROOT = "/jail"  # the jails' root template (a mount point created by bwrap)

JAIL_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": WORKSPACE_MOUNT,
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONIOENCODING": "utf-8",
    "PYTHONHASHSEED": "0",
    "PYTHONDONTWRITEBYTECODE": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}

# Modules imported once in the zygote so calls that use them pay nothing.
# (Each module makes every fork a little slower: ~0.4 ms for a dozen; keep this list short.)
PRELOAD = ("ast", "linecache", "traceback", "json", "re", "math", "collections", "itertools", "functools")


# --------------------------------------------------------------------------- the code runner (in G)
def _vsize() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * resource.getpagesize()


def _run_user_code(code: str) -> str | None:
    """Execute ``code`` as ``__main__``; echo the last bare expression like a REPL.

    Returns the error text (traceback) or None.
    """
    import ast
    import linecache

    filename = "<python>"
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    glb: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__, "__file__": filename}
    try:
        tree = ast.parse(code, filename, "exec")
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        exec(compile(tree, filename, "exec"), glb)
        if last is not None:
            value = eval(compile(last, filename, "eval"), glb)
            if value is not None:
                print(repr(value))
        return None
    except SystemExit as e:
        if e.code is None or e.code == 0:
            return None
        return f"SystemExit: {e.code}"
    except BaseException as e:  # noqa: BLE001 - everything the code raised is reported
        tb = traceback.TracebackException.from_exception(e)
        # Drop this module's own frame so the traceback starts in the user's code.
        frames = [f for f in tb.stack if f.filename == filename]
        tb.stack = traceback.StackSummary.from_list(frames)
        return "".join(tb.format())


def _grandchild(req: dict[str, Any], out_w: int, res_w: int, seccomp: lk.SeccompFilter | None) -> None:
    """G: pid 1 of the call's pid namespace. Never returns."""
    code = 70
    rfd = res_w
    try:
        lk.prctl(lk.PR_SET_PDEATHSIG, signal.SIGKILL)
        os.setsid()  # kill(0, ...) by the code must not reach the worker's process group
        lk.mount("proc", "/proc", "proc", lk.MS_NOSUID | lk.MS_NODEV | lk.MS_NOEXEC)
        lim = req["limits"]
        # Handlers inherited from the worker must not leak into the code's process.
        for sig in (signal.SIGXCPU, signal.SIGPIPE, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGALRM):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
        os.chdir(WORKSPACE_MOUNT)
        os.environ.clear()
        os.environ.update(JAIL_ENV)
        devnull = os.open("/dev/null", os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_w, 1)
        os.dup2(out_w, 2)
        os.dup2(res_w, 3, inheritable=False)  # the result record; not passed on to exec'd programs
        rfd = 3
        os.closerange(4, 1 << 16)
        base_vsize = _vsize()
        cpu = max(1, int(-(-float(lim["cpu_s"]) // 1)))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_NOFILE, (int(lim["open_files"]),) * 2)
        resource.setrlimit(resource.RLIMIT_NPROC, (int(lim["processes"]) + 1,) * 2)  # + C, counted here too
        resource.setrlimit(resource.RLIMIT_FSIZE, (int(lim["file_bytes"]),) * 2)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        lk.drop_capabilities()
        if seccomp is not None:
            seccomp.load()
        as_hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        as_lim = base_vsize + int(lim["memory_bytes"])
        if as_hard != resource.RLIM_INFINITY:
            as_lim = min(as_lim, as_hard)
        resource.setrlimit(resource.RLIMIT_AS, (as_lim, as_lim))
        sys.stdin = open(0, "r", closefd=False)
        sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
        sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False, buffering=1)
        sys.argv = ["<python>"]
        sys.path.insert(0, WORKSPACE_MOUNT)  # the session's own modules are importable
        err = _run_user_code(req["code"])
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:  # noqa: BLE001
            pass
        if err is not None and len(err) > int(lim["output_bytes"]):
            cap = int(lim["output_bytes"])
            err = err[: cap // 2] + f"\n[... error text truncated: more than {cap} characters ...]\n" + err[-(cap // 2):]
        if os.getpid() != 1:
            # A process the code forked ran to the end of the code: like a forked child of a
            # script, it just exits (only the jail's pid 1 reports the call's result).
            code = 0 if err is None else 1
            if err is not None:
                os.write(2, err.encode("utf-8", errors="replace"))
        else:
            os.write(3, json.dumps({"error": err}).encode())
            code = 0
    except BaseException as e:  # noqa: BLE001 - jail setup failed or the runner itself broke
        try:
            os.write(rfd, json.dumps({"error": f"sandbox setup failed: {type(e).__name__}: {e}", "setup": True}).encode())
        except BaseException:  # noqa: BLE001
            pass
    finally:
        os._exit(code)


_TMP_BINDS: tuple[str, ...] = ()


def build_template(binds: list[str], symlinks: dict[str, str]) -> None:
    """Build the jails' root once per worker, at :data:`JAIL_ROOT` (in the worker's mount namespace).

    It holds only the worker's read-only system/Python binds, /dev and /proc (G mounts a fresh
    procfs over it) and empty mount points for /tmp and /workspace; then it is made read-only.
    Each call only adds its workspace and fresh tmpfs's, then chroots into it.
    """
    global _TMP_BINDS
    new = JAIL_ROOT
    lk.mount("tmpfs", new, "tmpfs", lk.MS_NOSUID | lk.MS_NODEV, "size=1m,nr_inodes=4096,mode=0755")
    for path in binds:
        os.makedirs(new + path, exist_ok=True)
        lk.mount(path, new + path, None, lk.MS_BIND | lk.MS_REC)  # read-only like its source
    # A checkout or venv that lives under /tmp (e.g. a CI clone in /tmp) would be hidden by each
    # call's fresh /tmp: remember those binds so every call puts them back on top of it.
    _TMP_BINDS = tuple(p for p in binds if p == "/tmp" or p.startswith("/tmp/"))
    for link, target in symlinks.items():
        os.symlink(target, new + link)
    for d in ("/dev", "/proc", "/tmp", WORKSPACE_MOUNT):
        os.makedirs(new + d, 0o755, exist_ok=True)
    lk.mount("/dev", new + "/dev", None, lk.MS_BIND | lk.MS_REC)
    lk.mount("/proc", new + "/proc", None, lk.MS_BIND | lk.MS_REC)
    lk.mount(None, new, None, lk.MS_REMOUNT | lk.MS_BIND | lk.MS_RDONLY | lk.MS_NOSUID | lk.MS_NODEV)


def _enter_new_root(req: dict[str, Any]) -> None:
    """In C (capabilities in its own namespaces): finish the template and chroot into it.

    The worker's tree, every other session's workspace included, lies outside the new root:
    not reachable (G holds no fd outside it and has no capability to chroot or mount again;
    seccomp refuses both) and not listed in /proc/self/mountinfo. ``chroot`` rather than
    ``pivot_root``: the latter walks every task of the host (~3 ms here).
    """
    new = JAIL_ROOT
    lk.mount(None, "/", None, lk.MS_REC | lk.MS_PRIVATE)  # nothing here propagates back to the worker
    lk.mount(req["workspace"], new + WORKSPACE_MOUNT, None, lk.MS_BIND | lk.MS_REC)
    tmp_opts = f"size={int(req['tmp_bytes'])},nr_inodes={int(req['tmp_inodes'])},mode=1777"
    lk.mount("tmpfs", new + "/tmp", "tmpfs", lk.MS_NOSUID | lk.MS_NODEV, tmp_opts)
    for path in _TMP_BINDS:  # read-only Python/toolgym paths that live under /tmp (see build_template)
        os.makedirs(new + path, exist_ok=True)
        lk.mount(path, new + path, None, lk.MS_BIND | lk.MS_REC)
    if os.path.isdir(new + "/dev/shm"):
        lk.mount("tmpfs", new + "/dev/shm", "tmpfs", lk.MS_NOSUID | lk.MS_NODEV, tmp_opts)
    os.chroot(new)
    os.chdir("/")


def _child(req: dict[str, Any], out_w: int, res_w: int, ctl_w: int, fds_to_close: list[int], seccomp: lk.SeccompFilter | None) -> None:
    """C: builds the namespaces, forks G, waits for it. Never returns.

    Reports on ``ctl_w``: ``P<pid>`` once G exists, ``S<status>`` once G and with it every
    process of the call's pid namespace is gone. The zygote answers on ``S`` and does not
    wait for C's own exit (tearing down the namespaces), which overlaps with the reply.
    """
    status = 71
    try:
        lk.prctl(lk.PR_SET_PDEATHSIG, signal.SIGKILL)
        for fd in fds_to_close:
            os.close(fd)
        uid, gid = os.getuid(), os.getgid()
        lk.check(lk.libc.unshare(lk.CLONE_NEWUSER | lk.CLONE_NEWNS | lk.CLONE_NEWPID | lk.CLONE_NEWIPC), "unshare")
        lk.write_file("/proc/self/setgroups", "deny")
        lk.write_file("/proc/self/uid_map", f"{uid} {uid} 1")
        lk.write_file("/proc/self/gid_map", f"{gid} {gid} 1")
        lk.write_file("/proc/sys/user/max_user_namespaces", "0")
        _enter_new_root(req)
        pid = os.fork()
        if pid == 0:
            os.close(ctl_w)
            _grandchild(req, out_w, res_w, seccomp)
        os.write(ctl_w, f"P{pid}\n".encode())
        os.close(out_w)
        os.close(res_w)
        _, st = os.waitpid(pid, 0)
        status = 128 + os.WTERMSIG(st) if os.WIFSIGNALED(st) else os.WEXITSTATUS(st)
        os.write(ctl_w, f"S{status}\n".encode())
    except BaseException as e:  # noqa: BLE001
        try:
            os.write(res_w, json.dumps({"error": f"sandbox setup failed: {type(e).__name__}: {e}", "setup": True}).encode())
        except BaseException:  # noqa: BLE001
            pass
        status = 72
    finally:
        os._exit(status)


def _kill(pid: int | None) -> None:
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


_pending: list[int] = []  # C processes that reported and are exiting on their own


def _reap_pending() -> None:
    while _pending:
        pid = _pending.pop()
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == 0:
                _kill(pid)  # it has nothing left to do but exit
                os.waitpid(pid, 0)
        except ChildProcessError:
            pass


class _Ctl:
    """Parses C's ``P<pid>`` / ``S<status>`` lines."""

    def __init__(self) -> None:
        self.buf = b""
        self.gpid: int | None = None
        self.status: int | None = None

    def feed(self, data: bytes) -> None:
        self.buf += data
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            if line[:1] == b"P":
                self.gpid = int(line[1:])
            elif line[:1] == b"S":
                self.status = int(line[1:])


def run_jailed(req: dict[str, Any], seccomp: lk.SeccompFilter | None = None) -> dict[str, Any]:
    """Run ``req["code"]`` in a fresh jail. Called in the zygote. Returns a CallResult dict.

    ``req``: code, workspace (path inside the worker), limits (SandboxLimits dict),
    tmp_bytes, tmp_inodes. The worker must have called :func:`build_template`.
    """
    _reap_pending()
    t0 = time.monotonic()
    lim = req["limits"]
    wall = float(lim["wall_s"])
    out_cap = int(lim["output_bytes"])
    drain_cap = max(1 << 20, 16 * out_cap)
    deadline = t0 + wall
    out_r, out_w = os.pipe()
    res_r, res_w = os.pipe()
    ctl_r, ctl_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    cpid = os.fork()
    if cpid == 0:
        _child(req, out_w, res_w, ctl_w, [out_r, res_r, ctl_r], seccomp)
    os.close(out_w)
    os.close(res_w)
    os.close(ctl_w)
    ctl = _Ctl()
    out = bytearray()
    seen = 0
    res = bytearray()
    timed_out = flooded = False
    open_fds = {out_r, res_r, ctl_r}

    def pump(until: float) -> bool:
        """Read until G is reaped and its pipes are closed; False on deadline."""
        nonlocal seen, flooded
        while ctl.status is None or out_r in open_fds or res_r in open_fds:
            if not open_fds:
                return True  # C died without reporting (setup failure)
            left = until - time.monotonic()
            if left <= 0:
                return False
            r, _, _ = select.select(list(open_fds), [], [], left)
            for fd in r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    open_fds.discard(fd)
                elif fd == out_r:
                    seen += len(chunk)
                    if len(out) <= out_cap:
                        out.extend(chunk[: out_cap + 1 - len(out)])
                    if seen > drain_cap:
                        flooded = True
                        return False
                elif fd == res_r:
                    if len(res) < (1 << 20) + out_cap:
                        res.extend(chunk)
                else:
                    ctl.feed(chunk)
        return True

    try:
        if not pump(deadline):
            timed_out = not flooded
            if ctl.gpid is not None:
                _kill(ctl.gpid)  # pid 1 of the call's namespace: the kernel kills the rest
                open_fds.discard(out_r)
                open_fds.discard(res_r)
                pump(time.monotonic() + 2.0)  # until C reports G reaped
    finally:
        if ctl.status is None:
            _kill(cpid)
            os.waitpid(cpid, 0)
        else:
            _pending.append(cpid)
        for fd in (out_r, res_r, ctl_r):
            os.close(fd)
    status = ctl.status if ctl.status is not None else 72
    return _result(lim, out, res, seen, status, timed_out, flooded, time.monotonic() - t0)


def _result(lim: dict[str, Any], out: bytearray, res: bytearray, seen: int, status: int, timed_out: bool, flooded: bool, duration: float) -> dict[str, Any]:
    out_cap = int(lim["output_bytes"])
    truncated = len(out) > out_cap
    text = bytes(out[:out_cap]).decode("utf-8", errors="replace")
    if truncated:
        text += f"\n[output truncated: more than {out_cap} bytes]"
    try:
        info = json.loads(bytes(res).decode("utf-8", errors="replace")) if res else {}
        if not isinstance(info, dict):
            raise ValueError("not an object")
        error = info.get("error")
        error = None if error is None else str(error)
    except ValueError:  # the code wrote to the result pipe itself, or the record was cut off
        info, error = {"error": "unreadable"}, "the call's result record was unreadable (did the code write to fd 3?)"
    ok = error is None
    if timed_out:
        ok, error = False, f"wall-time limit exceeded ({float(lim['wall_s']):g} s); the process was killed"
    elif flooded:
        ok, error = False, f"output limit exceeded ({seen} bytes written); the process was killed"
    elif not info:
        # No result record: the code ended its own process (os._exit) or was killed by a signal.
        if status >= 128:
            sig = status - 128
            if sig in (signal.SIGXCPU, signal.SIGKILL):
                ok, error, timed_out = False, f"CPU time limit exceeded ({float(lim['cpu_s']):g} s); the process was killed", True
            else:
                name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
                ok, error = False, f"the process was killed by signal {name}"
        elif status != 0:
            ok, error = False, f"the process exited with status {status}"
    return {"ok": ok, "output": text, "error": error, "timed_out": timed_out, "truncated": truncated, "duration_s": duration}


# --------------------------------------------------------------------------- the zygote
def _zygote_main(req_r: int, resp_w: int, seccomp: lk.SeccompFilter | None) -> None:
    lk.prctl(lk.PR_SET_PDEATHSIG, signal.SIGKILL)
    signal.signal(signal.SIGXCPU, signal.SIG_DFL)
    devnull = os.open("/dev/null", os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)  # never hold the worker's protocol pipe
    keep = {0, 1, 2, req_r, resp_w}
    for fd in _open_fds():
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass
    for m in PRELOAD:
        try:
            __import__(m)
        except ImportError:
            pass
    while True:
        try:
            req = protocol.read_frame(req_r)
        except (protocol.FrameError, OSError):
            os._exit(0)
        try:
            resp = run_jailed(req, seccomp)
        except BaseException as e:  # noqa: BLE001
            resp = {"ok": False, "output": "", "error": f"sandbox error: {type(e).__name__}: {e}", "timed_out": False, "truncated": False, "duration_s": 0.0}
        try:
            protocol.write_frame(resp_w, resp)
        except OSError:
            os._exit(0)


def _open_fds() -> list[int]:
    try:
        return [int(x) for x in os.listdir("/proc/self/fd")]
    except OSError:
        return list(range(3, 256))


class Zygote:
    """Handle (held by the worker) on the zygote process that runs code calls."""

    def __init__(self, layout: dict[str, Any], use_seccomp: bool = True) -> None:
        # tmp_bytes, tmp_inodes: sent with every request
        self.layout = {k: layout[k] for k in ("tmp_bytes", "tmp_inodes")}
        prog = lk.build_seccomp_program() if use_seccomp else None
        self.seccomp = lk.SeccompFilter(prog) if prog else None
        req_r, self._req_w = os.pipe()
        self._resp_r, resp_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        self.pid = os.fork()
        if self.pid == 0:
            try:
                os.close(self._req_w)
                os.close(self._resp_r)
                _zygote_main(req_r, resp_w, self.seccomp)
            finally:
                os._exit(0)
        os.close(req_r)
        os.close(resp_w)

    def run(self, code: str, workspace: str, limits: dict[str, Any]) -> dict[str, Any]:
        protocol.write_frame(self._req_w, {"code": code, "workspace": workspace, "limits": limits, **self.layout})
        return protocol.read_frame(self._resp_r)

    def alive(self) -> bool:
        try:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return False
        return pid == 0


_zygote: Zygote | None = None


def start_zygote(layout: dict[str, Any], use_seccomp: bool = True) -> Zygote:
    """Start this worker's zygote. Must be called before any session exists."""
    global _zygote
    _zygote = Zygote(layout, use_seccomp)
    return _zygote


def zygote() -> Zygote:
    if _zygote is None:
        raise RuntimeError("code jails are only available inside a sandbox worker")
    return _zygote
