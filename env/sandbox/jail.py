"""Per-call jails for model-written code. Runs inside a sandbox worker (standard library only).

Layout of one code call (all of it already inside the worker's bubblewrap sandbox)::

    worker W ──pipe──▶ zygote Z          (forked from W at start, before any session existed)
                          └─fork─▶ C     unshare(user, mount, pid, ipc); user.max_user_namespaces=0;
                                         bind the session's workspace on /workspace, empty tmpfs over
                                         /ws (every other session's workspace), fresh tmpfs /tmp
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
- **user + mount namespace**: the code sees only its own workspace (others are hidden under
  an empty tmpfs it has no capability to unmount) and a private /tmp; it cannot create
  further user namespaces.
- **rlimits**: CPU, address space, open files, processes (RLIMIT_NPROC, counted inside the
  call's own user namespace), file size.
- Z enforces wall time (kills G, hence the whole namespace) and output size.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import resource
import select
import signal
import sys
import time
import traceback
from typing import Any

from toolgym.env.sandbox import protocol

WORKSPACE_MOUNT = "/workspace"
WORKSPACE_ROOT = "/ws"

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000
PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]

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
PRELOAD = ("re", "math", "json", "collections", "itertools", "functools", "datetime", "random",
           "statistics", "decimal", "fractions", "string", "textwrap", "io", "traceback", "linecache", "ast")


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(src: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(
        _libc.mount(src.encode() if src else None, target.encode(), fstype.encode() if fstype else None, flags, data.encode() if data else None),
        f"mount {target}",
    )


def _prctl(option: int, arg: int = 0) -> int:
    return _libc.prctl(option, arg, 0, 0, 0)


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _drop_capabilities() -> None:
    try:
        last = int(open("/proc/sys/kernel/cap_last_cap").read())
    except OSError:
        last = 63
    for cap in range(last + 1):
        _prctl(PR_CAPBSET_DROP, cap)
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    hdr = _CapHeader(0x20080522, 0)
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(hdr), data), "capset")
    _check(_prctl(PR_SET_NO_NEW_PRIVS, 1), "no_new_privs")


# --------------------------------------------------------------------------- seccomp
class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


# Syscalls a code call never needs; refused with EPERM. Namespaces already contain the rest.
SECCOMP_DENY = (
    "ptrace", "process_vm_readv", "process_vm_writev", "kexec_load", "kexec_file_load", "bpf",
    "perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd", "io_uring_setup",
    "io_uring_enter", "io_uring_register", "mount", "umount2", "pivot_root", "unshare", "setns",
    "swapon", "swapoff", "reboot", "init_module", "finit_module", "delete_module", "acct",
    "quotactl", "open_by_handle_at", "name_to_handle_at", "syslog", "fanotify_init", "move_mount",
    "open_tree", "fsopen", "fsmount", "fsconfig", "fspick", "mount_setattr", "chroot",
)


def build_seccomp_program() -> bytes | None:
    """Compile the deny-list filter to classic BPF once (libseccomp via ctypes), or None."""
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    SCMP_ACT_ALLOW = 0x7FFF0000
    SCMP_ACT_ERRNO_EPERM = 0x00050000 | 1
    SCMP_FLTATR_CTL_NNP = 3
    ctx = lib.seccomp_init(SCMP_ACT_ALLOW)
    if not ctx:
        return None
    try:
        lib.seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)  # we set no_new_privs ourselves
        for sc in SECCOMP_DENY:
            nr = lib.seccomp_syscall_resolve_name(sc.encode())
            if nr < 0:
                continue
            if lib.seccomp_rule_add(ctx, SCMP_ACT_ERRNO_EPERM, nr, 0) != 0:
                return None
        r, w = os.pipe()
        try:
            if lib.seccomp_export_bpf(ctx, w) != 0:
                return None
            os.close(w)
            w = -1
            chunks = []
            while True:
                b = os.read(r, 65536)
                if not b:
                    break
                chunks.append(b)
            return b"".join(chunks)
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)
    finally:
        lib.seccomp_release(ctx)


def _load_seccomp(prog: bytes) -> None:
    buf = ctypes.create_string_buffer(prog, len(prog))
    fprog = _SockFprog(len(prog) // 8, ctypes.cast(buf, ctypes.c_void_p))
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0), "seccomp")


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


def _grandchild(req: dict[str, Any], out_w: int, res_w: int, seccomp_prog: bytes | None) -> None:
    """G: pid 1 of the call's pid namespace. Never returns."""
    code = 70
    rfd = res_w
    try:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        os.setsid()
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        lim = req["limits"]
        cpu = max(1, int(-(-float(lim["cpu_s"]) // 1)))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_NOFILE, (int(lim["open_files"]), int(lim["open_files"])))
        resource.setrlimit(resource.RLIMIT_NPROC, (int(lim["processes"]) + 1, int(lim["processes"]) + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (int(lim["file_bytes"]), int(lim["file_bytes"])))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        os.chdir(WORKSPACE_MOUNT)
        os.environ.clear()
        os.environ.update(JAIL_ENV)
        devnull = os.open("/dev/null", os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_w, 1)
        os.dup2(out_w, 2)
        os.dup2(res_w, 3)
        rfd = 3
        os.closerange(4, 1 << 16)
        _drop_capabilities()
        if seccomp_prog:
            _load_seccomp(seccomp_prog)
        as_hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        as_lim = _vsize() + int(lim["memory_bytes"])
        if as_hard != resource.RLIM_INFINITY:
            as_lim = min(as_lim, as_hard)
        resource.setrlimit(resource.RLIMIT_AS, (as_lim, as_lim))
        sys.stdin = open(0, "r", closefd=False)
        sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
        sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False, buffering=1)
        sys.argv = ["<python>"]
        sys.path[:] = [p for p in sys.path if p] + []
        sys.path.insert(0, WORKSPACE_MOUNT)
        err = _run_user_code(req["code"])
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:  # noqa: BLE001
            pass
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


def _child(req: dict[str, Any], out_w: int, res_w: int, pid_w: int, fds_to_close: list[int], seccomp_prog: bytes | None) -> None:
    """C: builds the namespaces, forks G, waits for it. Never returns."""
    status = 71
    try:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        for fd in fds_to_close:
            os.close(fd)
        uid, gid = os.getuid(), os.getgid()
        _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC), "unshare")
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
        _write("/proc/sys/user/max_user_namespaces", "0")
        _mount(None, "/", None, MS_REC | MS_PRIVATE)
        _mount(req["workspace"], WORKSPACE_MOUNT, None, MS_BIND | MS_REC)
        _mount("tmpfs", WORKSPACE_ROOT, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k,mode=0555")
        _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={int(req['tmp_bytes'])},mode=1777")
        if os.path.isdir("/dev/shm"):
            _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"size={int(req['tmp_bytes'])},mode=1777")
        pid = os.fork()
        if pid == 0:
            os.close(pid_w)
            _grandchild(req, out_w, res_w, seccomp_prog)
        os.write(pid_w, str(pid).encode())
        os.close(pid_w)
        os.close(out_w)
        os.close(res_w)
        _, st = os.waitpid(pid, 0)
        if os.WIFSIGNALED(st):
            status = 128 + os.WTERMSIG(st)
        else:
            status = os.WEXITSTATUS(st)
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


def run_jailed(req: dict[str, Any], seccomp_prog: bytes | None = None) -> dict[str, Any]:
    """Run ``req["code"]`` in a fresh jail. Called in the zygote. Returns a CallResult dict.

    ``req``: code, workspace (path inside the worker), tmp_bytes, limits (SandboxLimits dict).
    """
    t0 = time.monotonic()
    lim = req["limits"]
    wall = float(lim["wall_s"])
    out_cap = int(lim["output_bytes"])
    drain_cap = max(1 << 20, 16 * out_cap)
    deadline = t0 + wall
    out_r, out_w = os.pipe()
    res_r, res_w = os.pipe()
    pid_r, pid_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    cpid = os.fork()
    if cpid == 0:
        _child(req, out_w, res_w, pid_w, [out_r, res_r, pid_r], seccomp_prog)
    os.close(out_w)
    os.close(res_w)
    os.close(pid_w)
    gpid: int | None = None
    out = bytearray()
    seen = 0
    res = bytearray()
    timed_out = flooded = False
    open_fds = {out_r, res_r, pid_r}
    pid_buf = bytearray()
    try:
        while open_fds:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            r, _, _ = select.select(list(open_fds), [], [], left)
            for fd in r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    open_fds.discard(fd)
                    if fd == pid_r and pid_buf:
                        gpid = int(pid_buf)
                    continue
                if fd == out_r:
                    seen += len(chunk)
                    if len(out) <= out_cap:
                        out += chunk[: out_cap + 1 - len(out)]
                    if seen > drain_cap:
                        flooded = True
                elif fd == res_r:
                    if len(res) < (1 << 20) + out_cap:
                        res += chunk
                else:
                    pid_buf += chunk
            if flooded:
                break
    finally:
        if timed_out or flooded or open_fds:
            if gpid is None and pid_buf:
                try:
                    gpid = int(pid_buf)
                except ValueError:
                    gpid = None
            _kill(gpid)
            _kill(cpid)
        _, st = os.waitpid(cpid, 0)
        for fd in (out_r, res_r, pid_r):
            os.close(fd)
    status = os.WEXITSTATUS(st) if os.WIFEXITED(st) else 128 + os.WTERMSIG(st)
    truncated = len(out) > out_cap
    text = bytes(out[:out_cap]).decode("utf-8", errors="replace")
    if truncated:
        text += f"\n[output truncated: more than {out_cap} bytes]"
    try:
        info = json.loads(bytes(res).decode("utf-8", errors="replace")) if res else {}
        if not isinstance(info, dict):
            info = {}
    except json.JSONDecodeError:
        info = {}
    error = info.get("error")
    if error is not None:
        error = str(error)
    ok = error is None
    if timed_out:
        ok, error = False, f"wall-time limit exceeded ({wall:g} s); the process was killed"
    elif flooded:
        ok, error = False, f"output limit exceeded ({seen} bytes written); the process was killed"
    elif not info:
        # No result record: the code ended its own process (os._exit) or was killed by a signal.
        if status >= 128:
            sig = status - 128
            if sig in (signal.SIGXCPU, signal.SIGKILL):
                ok, error, timed_out = False, f"CPU time limit exceeded ({float(lim['cpu_s']):g} s); the process was killed", True
            else:
                ok, error = False, f"the process was killed by signal {signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else sig}"
        elif status != 0:
            ok, error = False, f"the process exited with status {status}"
    return {
        "ok": ok,
        "output": text,
        "error": error,
        "timed_out": timed_out,
        "truncated": truncated,
        "duration_s": time.monotonic() - t0,
    }


# --------------------------------------------------------------------------- the zygote
def _zygote_main(req_r: int, resp_w: int, seccomp_prog: bytes | None) -> None:
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
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
            resp = run_jailed(req, seccomp_prog)
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

    def __init__(self, tmp_bytes: int, use_seccomp: bool = True) -> None:
        self.tmp_bytes = int(tmp_bytes)
        self.seccomp = build_seccomp_program() if use_seccomp else None
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
        protocol.write_frame(self._req_w, {"code": code, "workspace": workspace, "tmp_bytes": self.tmp_bytes, "limits": limits})
        return protocol.read_frame(self._resp_r)

    def alive(self) -> bool:
        try:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return False
        return pid == 0


_zygote: Zygote | None = None


def start_zygote(tmp_bytes: int, use_seccomp: bool = True) -> Zygote:
    """Start this worker's zygote. Must be called before any session exists."""
    global _zygote
    _zygote = Zygote(tmp_bytes, use_seccomp)
    return _zygote


def zygote() -> Zygote:
    if _zygote is None:
        raise RuntimeError("code jails are only available inside a sandbox worker")
    return _zygote
