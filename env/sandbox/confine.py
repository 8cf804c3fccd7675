"""Confining one code call: the jails' root template and the two processes of a jail.

Runs inside a sandbox worker (standard library only). The zygote, the call's supervisor, lives
in :mod:`toolgym.env.sandbox.jail` (which also lays out the whole picture and says why each
piece is there); this module holds what it forks for one call:

- :func:`build_template`: the jails' read-only root, built once per worker at :data:`JAIL_ROOT`;
- :func:`child_main` (C): new user, mount, pid and ipc namespaces, the call's workspace and
  fresh /tmp mounted into the template, chroot, then forks G and reports on it;
- ``_grandchild`` (G): pid 1 of the call's pid namespace; fresh /proc, rlimits, capabilities
  dropped, seccomp, and :func:`_run_user_code`, which executes the model's code.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import traceback
from typing import Any

from toolgym.env.sandbox import lockdown as lk

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


#: How much lower than the worker model code is scheduled (see :func:`_grandchild`).
SANDBOX_NICE = 10


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
        # Model code runs below the supervisor's priority: on a loaded host the worker thread that
        # samples the call's tree memory (and kills it near its budget) is scheduled first, so a
        # forking allocator cannot outrun its watchdog by starving it of CPU.
        os.setpriority(os.PRIO_PROCESS, 0, min(19, os.getpriority(os.PRIO_PROCESS, 0) + SANDBOX_NICE))
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
_TMP_HIDE: tuple[str, ...] = ()


def _hide(new: str, paths: tuple[str, ...] | list[str]) -> None:
    """Cover each of ``paths`` that exists in the jail root with an empty read-only tmpfs."""
    for path in paths:
        if os.path.isdir(new + path):
            lk.mount("tmpfs", new + path, "tmpfs", lk.MS_NOSUID | lk.MS_NODEV | lk.MS_NOEXEC | lk.MS_RDONLY,
                     "size=4k,nr_inodes=2,mode=0555")


def build_template(binds: list[str], symlinks: dict[str, str], hide: list[str] = ()) -> None:
    """Build the jails' root once per worker, at :data:`JAIL_ROOT` (in the worker's mount namespace).

    It holds only the worker's read-only system/Python binds, /dev and /proc (G mounts a fresh
    procfs over it) and empty mount points for /tmp and /workspace; then it is made read-only.
    ``hide`` lists directories inside those binds that model code must not read (installed
    packages, toolgym's code and task data: ground truth lives there); each is covered by an
    empty tmpfs. Each call only adds its workspace and fresh tmpfs's, then chroots into it.
    """
    global _TMP_BINDS, _TMP_HIDE
    new = JAIL_ROOT
    lk.mount("tmpfs", new, "tmpfs", lk.MS_NOSUID | lk.MS_NODEV, "size=1m,nr_inodes=4096,mode=0755")
    for path in binds:
        os.makedirs(new + path, exist_ok=True)
        lk.mount(path, new + path, None, lk.MS_BIND | lk.MS_REC)  # read-only like its source
    # A checkout or venv that lives under /tmp (e.g. a CI clone in /tmp) would be hidden by each
    # call's fresh /tmp: remember those binds so every call puts them back on top of it.
    _TMP_BINDS = tuple(p for p in binds if p == "/tmp" or p.startswith("/tmp/"))
    _TMP_HIDE = tuple(p for p in hide if p.startswith("/tmp/"))
    _hide(new, hide)
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
    _hide(new, _TMP_HIDE)  # re-binding them brought back what the template hid
    if os.path.isdir(new + "/dev/shm"):
        lk.mount("tmpfs", new + "/dev/shm", "tmpfs", lk.MS_NOSUID | lk.MS_NODEV, tmp_opts)
    os.chroot(new)
    os.chdir("/")


def child_main(req: dict[str, Any], out_w: int, res_w: int, ctl_w: int, fds_to_close: list[int], seccomp: lk.SeccompFilter | None) -> None:
    """C: builds the namespaces, forks G, waits for it. Never returns.

    Reports on ``ctl_w``: ``P<pid>`` once G exists, ``S<status> <cpu seconds>`` once G and with it every
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
        _, st, ru = os.wait4(pid, 0)
        status = 128 + os.WTERMSIG(st) if os.WIFSIGNALED(st) else os.WEXITSTATUS(st)
        # G's CPU seconds too: a SIGKILL is the CPU hard limit only if G used that much CPU
        # (else a watchdog killed it, e.g. for memory).
        os.write(ctl_w, f"S{status} {ru.ru_utime + ru.ru_stime:.3f}\n".encode())
    except BaseException as e:  # noqa: BLE001
        try:
            os.write(res_w, json.dumps({"error": f"sandbox setup failed: {type(e).__name__}: {e}", "setup": True}).encode())
        except BaseException:  # noqa: BLE001
            pass
        status = 72
    finally:
        os._exit(status)
