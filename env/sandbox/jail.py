"""Per-call jails for model-written code. Runs inside a sandbox worker (standard library only).

Layout of one code call (all of it already inside the worker's bubblewrap sandbox)::

    worker W ──socket──▶ session process S   (forked per session from W's clean code zygote,
                                               :mod:`toolgym.env.sandbox.zygote`; holds only
                                               its own session: the workspace path)
                          └─fork─▶ C     unshare(user, mount, pid, ipc); user.max_user_namespaces=0;
                                         into the read-only root template (system binds, /dev) bind
                                         the session's workspace on /workspace, fresh /tmp; chroot
                                  └─fork─▶ G   pid 1 of its own pid namespace: fresh /proc, setsid,
                                               rlimits, every capability dropped, no_new_privs,
                                               optional seccomp, fds 0/1/2 redirected, exec(code)

Why each piece:

- **S** is forked from a zygote that never held session data, so model code forked from it
  cannot read other sessions' state out of its own memory, and the interpreter state is fresh
  on every call (Python start-up is ~20 ms; a fork is ~1 ms).
- **pid namespace**: the code cannot see or signal the worker, the zygote or the server;
  when G exits or is killed, the kernel kills everything left in its namespace, so nothing
  outlives the call (background processes, fork bombs).
- **user + mount namespace**: the code's root holds only read-only system files, its own
  workspace and a private /tmp; the worker's tree (other sessions' workspaces) lies outside
  it, not even listed in mountinfo; it cannot create further user namespaces.
- **rlimits**: CPU, address space, open files, processes (RLIMIT_NPROC, counted inside the
  call's own user namespace), file size.
- S enforces wall time (kills G, hence the whole namespace), output size, and the resident
  memory of the call's whole process tree (``tree_memory_bytes``, sampled every few ms by
  :mod:`toolgym.env.sandbox.memwatch`: per-process rlimits do not bound a tree).

This module supervises one call (:func:`run_jailed`, :func:`run_code`); building the jail's
root and the processes C and G live in :mod:`toolgym.env.sandbox.confine`.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time
from typing import Any

from toolgym.env.sandbox import lockdown as lk
from toolgym.env.sandbox import memwatch
from toolgym.env.sandbox.confine import (
    JAIL_ENV,
    JAIL_ROOT,
    WORKSPACE_MOUNT,
    WORKSPACE_ROOT,
    build_template,
    child_main,
)

__all__ = [
    "JAIL_ENV",
    "JAIL_ROOT",
    "PRELOAD",
    "WORKSPACE_MOUNT",
    "WORKSPACE_ROOT",
    "build_template",
    "configure",
    "run_code",
    "run_jailed",
]

# Modules imported once in the zygote so calls that use them pay nothing.
# (Each module makes every fork a little slower: ~0.4 ms for a dozen; keep this list short.)
PRELOAD = ("ast", "linecache", "traceback", "json", "re", "math", "collections", "itertools", "functools")

#: Seconds between two samples of a running call's tree memory (see memwatch).
MEMORY_SAMPLE_S = 0.004
#: A call's tree is killed once it holds this fraction of ``tree_memory_bytes``; the rest is
#: headroom for what it can allocate before the next sample (measured: a few MB at 4 ms).
TREE_KILL_FRACTION = 0.9


# --------------------------------------------------------------------------- one call (in Z)
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
    """Parses C's ``P<pid>`` / ``S<status> <cpu seconds>`` lines."""

    def __init__(self) -> None:
        self.buf = b""
        self.gpid: int | None = None
        self.status: int | None = None
        self.cpu_s = 0.0

    def feed(self, data: bytes) -> None:
        self.buf += data
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            if line[:1] == b"P":
                self.gpid = int(line[1:])
            elif line[:1] == b"S":
                status, _, cpu = line[1:].partition(b" ")
                self.status = int(status)
                self.cpu_s = float(cpu or 0)


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
        child_main(req, out_w, res_w, ctl_w, [out_r, res_r, ctl_r], seccomp)
    os.close(out_w)
    os.close(res_w)
    os.close(ctl_w)
    ctl = _Ctl()
    out = bytearray()
    seen = 0
    res = bytearray()
    timed_out = flooded = over_memory = False
    open_fds = {out_r, res_r, ctl_r}
    tree_cap = int(lim.get("tree_memory_bytes") or 0)
    # Kill at 90% of the budget: what the tree allocates between two samples stays inside it.
    kill_at = int(tree_cap * TREE_KILL_FRACTION)
    peak = 0

    def pump(until: float) -> bool:
        """Read until G is reaped and its pipes are closed; False on deadline."""
        nonlocal seen, flooded, over_memory, peak
        while ctl.status is None or out_r in open_fds or res_r in open_fds:
            if not open_fds:
                return True  # C died without reporting (setup failure)
            left = until - time.monotonic()
            if left <= 0:
                return False
            if tree_cap and ctl.status is None:
                used = memwatch.tree_rss(cpid)
                peak = max(peak, used)
                if used > kill_at:
                    over_memory = True
                    return False
                left = min(left, MEMORY_SAMPLE_S)
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
            timed_out = not (flooded or over_memory)
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
    result = _result(lim, out, res, seen, status, timed_out, flooded, time.monotonic() - t0, ctl.cpu_s)
    if over_memory:
        result.update(ok=False, timed_out=False, error=f"memory limit exceeded: the call's processes together neared its budget of {tree_cap} bytes "
                                      f"(tree_memory_bytes; {peak} resident seen); every process of the call was killed")
    return result


def _result(lim: dict[str, Any], out: bytearray, res: bytearray, seen: int, status: int, timed_out: bool, flooded: bool, duration: float,
            cpu_used: float = 0.0) -> dict[str, Any]:
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
            cpu_lim = float(lim["cpu_s"])
            if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu_used >= max(1.0, cpu_lim) - 0.05):
                ok, error, timed_out = False, f"CPU time limit exceeded ({float(lim['cpu_s']):g} s); the process was killed", True
            else:
                name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
                ok, error = False, f"the process was killed by signal {name}"
        elif status != 0:
            ok, error = False, f"the process exited with status {status}"
    return {"ok": ok, "output": text, "error": error, "timed_out": timed_out, "truncated": truncated, "duration_s": duration}


# --------------------------------------------------------------------------- the runner (in S)
_runner: dict[str, Any] = {}


def configure(layout: dict[str, Any], seccomp: lk.SeccompFilter | None) -> None:
    """Set what every code call of this process gets (called once in a session process)."""
    _runner.clear()
    _runner.update(tmp_bytes=int(layout["tmp_bytes"]), tmp_inodes=int(layout["tmp_inodes"]), seccomp=seccomp)


def run_code(code: str, workspace: str, limits: dict[str, Any]) -> dict[str, Any]:
    """Run ``code`` in a fresh jail with ``workspace`` on /workspace; a CallResult dict."""
    if not _runner:
        raise RuntimeError("code jails are only available inside a sandbox session process")
    req = {"code": code, "workspace": workspace, "limits": limits, "tmp_bytes": _runner["tmp_bytes"], "tmp_inodes": _runner["tmp_inodes"]}
    return run_jailed(req, _runner["seccomp"])
