"""The sandbox worker W: the process that runs inside bubblewrap and routes tool calls.

Started by :class:`toolgym.env.sandbox.WorkerPool` as ``python -S -s -B -P -c <bootstrap>``
inside bwrap; its launch spec (host paths, limits) arrives as the first frame on stdin, never
on the command line, where code could read it back from ``/proc/self/cmdline``. It speaks
length-prefixed JSON frames (:mod:`toolgym.env.sandbox.protocol`) on its original
stdin/stdout. Every request carries an ``"id"`` that its answer repeats: requests for
different sessions run at the same time, so a slow call in one session never holds up another
session's step on the same worker.

W runs no tool code itself. At start it forks two zygotes (:mod:`toolgym.env.sandbox.zygote`)
and then, per session, has one of them fork a session process S
(:mod:`toolgym.env.sandbox.session`) that holds the toolset; W only mounts the session's
workspace, forwards its requests and enforces wall time by killing S. So:

- every session starts from a fresh-process-equivalent state (no module/class/default state
  of an earlier session can leak into it);
- a call that hangs, runs away or crashes costs only its own session's process (the session is
  rebuilt by the pool from its log); other sessions on the worker never notice.

Requests (pool -> W), answers carry ``"ok"``, failures ``"error"``:

- ``{"op": "open", "session", "kind", "config", "timeout_s"}`` -> ``{"ok", "names", "isolated"}``
- ``{"op": "call", "session", "name", "args", "limits", "digest"?}`` -> ``{"ok", "result",
  "tainted"?}``; ``tainted``: the call hit a limit inside the session's process, which is gone;
  the pool rebuilds the session without that call
- ``{"op": "state", "session", "timeout_s"}`` -> ``{"ok", "state"}``
- ``{"op": "close", "session"}``, ``{"op": "ping"}``, ``{"op": "exit"}``

An answer ``{"ok": false, "lost": true}`` means the session's process is gone (it died, or the
session is unknown here): the pool rebuilds the session, it does not discard the worker.
"""

from __future__ import annotations

import os
import resource
import secrets
import select
import signal
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any

from toolgym.env.sandbox import jail, protocol, session, zygote
from toolgym.env.sandbox import lockdown as lk

WS_ROOT = jail.WORKSPACE_ROOT

#: Toolset kinds whose sessions fork from the code zygote (lean memory: each code call forks
#: from the session's process). Every other kind forks from the backend zygote.
CODE_KINDS = frozenset({"python"})

#: Seconds past a code call's own wall limit before W kills its session process (S enforces
#: the limit itself; this only backs it up).
CODE_GRACE_S = 1.0


def _mount_session_workspace(path: str, size: int, inodes: int) -> None:
    """A tmpfs of its own per session: one session filling its space or inodes cannot starve
    another, and closing the session frees everything at once (unmount)."""
    os.mkdir(path, 0o700)
    try:
        lk.mount("tmpfs", path, "tmpfs", lk.MS_NOSUID | lk.MS_NODEV, f"size={size},nr_inodes={inodes},mode=0700")
    except OSError:
        os.rmdir(path)
        raise


def _unmount_session_workspace(path: str) -> None:
    if lk.libc.umount2(path.encode(), lk.MNT_DETACH) == 0:
        try:
            os.rmdir(path)
        except OSError:
            pass


@dataclass
class _Sess:
    sid: str
    sock: socket.socket
    reader: protocol.FrameReader
    ws: str
    isolated: bool = False
    pid: int | None = None
    pidfd: int | None = None
    inflight: tuple[Any, str, float, dict[str, Any]] | None = None  # (request id, op, deadline, request)


def _call_result(ok: bool, error: str | None, timed_out: bool = False) -> dict[str, Any]:
    return {"ok": ok, "output": "", "error": error, "timed_out": timed_out, "truncated": False, "duration_s": 0.0}


class Worker:
    def __init__(self, spec: dict[str, Any], rfd: int, wfd: int, zygotes: dict[str, zygote.Zygote]) -> None:
        self.ws_bytes = int(spec["workspace_bytes"])
        self.ws_inodes = int(spec["workspace_inodes"])
        self.layout = {"tmp_bytes": int(spec["tmp_bytes"]), "tmp_inodes": int(spec["tmp_inodes"])}
        self.rfd, self.wfd = rfd, wfd
        self.reader = protocol.FrameReader(rfd, int(spec.get("max_frame_bytes") or protocol.MAX_FRAME))
        self.zygotes = zygotes
        self.sessions: dict[str, _Sess] = {}
        self.by_fd: dict[int, _Sess] = {}

    # ---------------------------------------------------------------- plumbing
    def reply(self, rid: Any, resp: dict[str, Any]) -> None:
        resp = dict(resp, id=rid)
        try:
            protocol.write_frame(self.wfd, resp)
        except (TypeError, ValueError) as e:  # not JSON-able (e.g. a NaN in a state)
            protocol.write_frame(self.wfd, {"id": rid, "ok": False, "error": f"unencodable answer: {e}"})

    def _drop(self, s: _Sess) -> None:
        """Kill the session's process (it and its jails die) and free its workspace."""
        self.sessions.pop(s.sid, None)
        self.by_fd.pop(s.sock.fileno(), None)
        if s.pidfd is not None:
            try:
                signal.pidfd_send_signal(s.pidfd, signal.SIGKILL)
            except OSError:
                pass
            os.close(s.pidfd)
            s.pidfd = None
        s.sock.close()
        _unmount_session_workspace(s.ws)

    def _send(self, s: _Sess, rid: Any, op: str, deadline: float, msg: dict[str, Any]) -> None:
        try:
            protocol.write_frame(s.sock.fileno(), msg)
        except OSError:
            self._drop(s)
            self.reply(rid, {"ok": False, "lost": True, "error": f"the process of session {s.sid} is gone"})
            return
        s.inflight = (rid, op, deadline, msg)

    # ---------------------------------------------------------------- requests from the pool
    def on_request(self, msg: Any) -> bool:
        """Handle one request; False when the worker must exit."""
        if not isinstance(msg, dict):
            return True
        rid, op = msg.get("id"), msg.get("op")
        now = time.monotonic()
        if op == "exit":
            self.reply(rid, {"ok": True})
            return False
        if op == "ping":
            alive = all(z.alive() for z in self.zygotes.values())
            pids = {sid: s.pid for sid, s in self.sessions.items()}
            self.reply(rid, {"ok": True, "sessions": len(self.sessions), "zygote": alive, "uid": os.getuid(), "pids": pids})
            return True
        sid = str(msg.get("session"))
        if op == "open":
            self.open(rid, sid, msg, now)
            return True
        s = self.sessions.get(sid)
        if op == "close":
            if s is not None:
                if s.inflight is not None:
                    self.reply(s.inflight[0], {"ok": False, "lost": True, "error": "the session was closed"})
                self._drop(s)
            self.reply(rid, {"ok": True})
            return True
        if op not in ("call", "state"):
            self.reply(rid, {"ok": False, "error": f"unknown op {op!r}"})
            return True
        if s is None:
            self.reply(rid, {"ok": False, "lost": True, "error": f"no session {sid} on this worker"})
            return True
        if s.inflight is not None:
            self.reply(rid, {"ok": False, "error": f"session {sid} already has a request in flight"})
            return True
        if op == "state":
            self._send(s, rid, "state", now + float(msg.get("timeout_s") or 20.0), {"op": "state"})
            return True
        lim = msg.get("limits") or {}
        wall = float(lim.get("wall_s") or 5.0)
        fwd = {"op": "call", "name": msg.get("name"), "args": msg.get("args"), "limits": lim, "digest": bool(msg.get("digest"))}
        self._send(s, rid, "call", now + wall + (CODE_GRACE_S if s.isolated else 0.0), fwd)
        return True

    def open(self, rid: Any, sid: str, msg: dict[str, Any], now: float) -> None:
        if sid in self.sessions:
            self.reply(rid, {"ok": False, "error": f"session {sid} is already open on this worker"})
            return
        kind = str(msg.get("kind"))
        ws = os.path.join(WS_ROOT, secrets.token_hex(16))
        try:
            _mount_session_workspace(ws, self.ws_bytes, self.ws_inodes)
        except OSError as e:
            self.reply(rid, {"ok": False, "error": f"cannot create the session's workspace: {e}"})
            return
        try:
            sock = self.zygotes["code" if kind in CODE_KINDS else "backend"].fork_session()
        except OSError as e:
            _unmount_session_workspace(ws)
            self.reply(rid, {"ok": False, "error": f"the worker's zygote is gone: {e}"})
            return
        s = _Sess(sid, sock, protocol.FrameReader(sock.fileno()), ws)
        self.sessions[sid] = s
        self.by_fd[sock.fileno()] = s
        req = {"op": "open", "kind": kind, "config": msg.get("config") or {}, "workspace": ws, "layout": self.layout}
        self._send(s, rid, "open", now + float(msg.get("timeout_s") or 20.0), req)

    # ---------------------------------------------------------------- answers from sessions
    def on_session(self, s: _Sess) -> None:
        try:
            resp = s.reader.read()
        except (protocol.FrameError, OSError):
            self._lost(s, "its process died")
            return
        if not isinstance(resp, dict):
            self._lost(s, "its process sent a malformed answer")
            return
        if "hello" in resp:  # S's first frame: its pid, so W can kill it however busy it is
            try:
                s.pid = int(resp["hello"])
                s.pidfd = os.pidfd_open(s.pid)
            except (OSError, ValueError, TypeError):
                pass
            return
        if s.inflight is None:
            return
        rid, op, _, _ = s.inflight
        s.inflight = None
        if op == "open":
            if resp.get("ok"):
                s.isolated = bool(resp.get("isolated"))
            else:
                self._drop(s)
        elif op == "call" and resp.get("tainted"):
            self._drop(s)  # it ends itself; its partial effects go with it
        self.reply(rid, resp)

    def _lost(self, s: _Sess, why: str) -> None:
        inflight = s.inflight
        self._drop(s)
        if inflight is not None:
            self.reply(inflight[0], {"ok": False, "lost": True, "error": f"session {s.sid}: {why}"})

    def _expire(self, now: float) -> None:
        for s in [s for s in self.sessions.values() if s.inflight is not None and s.inflight[2] <= now]:
            rid, op, _, msg = s.inflight  # type: ignore[misc]
            self._drop(s)
            if op == "call":
                wall = float((msg.get("limits") or {}).get("wall_s") or 0.0)
                res = _call_result(False, f"wall-time limit exceeded ({wall:g} s); the call was killed", timed_out=True)
                self.reply(rid, {"ok": True, "result": res, "tainted": True})
            else:
                self.reply(rid, {"ok": False, "lost": True, "error": f"session {s.sid}: {op} timed out"})

    # ---------------------------------------------------------------- loop
    def serve(self) -> None:
        zfds = {z.fileno() for z in self.zygotes.values()}
        while True:
            while self.reader.pending():
                if not self._request_frame():
                    return
            for sess in list(self.by_fd.values()):  # frames already buffered: select won't tell
                while sess.sid in self.sessions and sess.reader.pending():
                    self.on_session(sess)
            deadlines = [s.inflight[2] for s in self.sessions.values() if s.inflight is not None]
            now = time.monotonic()
            timeout = None if not deadlines else max(0.0, min(deadlines) - now)
            watch = [self.rfd, *zfds, *(fd for fd, s in self.by_fd.items() if s.inflight is not None)]
            try:
                ready, _, _ = select.select(watch, [], [], timeout)
            except InterruptedError:  # pragma: no cover - PEP 475 retries select
                continue
            for fd in ready:
                if fd in zfds:
                    return  # a zygote is gone (it only ever exits when broken): let the pool replace us
                if fd == self.rfd:
                    if not self._request_frame():
                        return
                elif fd in self.by_fd:
                    self.on_session(self.by_fd[fd])
            self._expire(time.monotonic())

    def _request_frame(self) -> bool:
        try:
            msg = self.reader.read()
        except (protocol.FrameError, OSError):
            return False
        return self.on_request(msg)


def _own_namespaces() -> None:
    """Enter a user + mount namespace of the worker's own and mount the workspace root.

    The worker's capabilities exist only inside that namespace (nested in bwrap's), where it
    needs them to mount one tmpfs per session. Code never runs with them: jails build their
    own namespaces and drop every capability.
    """
    uid, gid = os.getuid(), os.getgid()
    lk.check(lk.libc.unshare(lk.CLONE_NEWUSER | lk.CLONE_NEWNS), "unshare")
    lk.write_file("/proc/self/setgroups", "deny")
    lk.write_file("/proc/self/uid_map", f"{uid} {uid} 1")
    lk.write_file("/proc/self/gid_map", f"{gid} {gid} 1")
    lk.mount("tmpfs", WS_ROOT, "tmpfs", lk.MS_NOSUID | lk.MS_NODEV, "size=1m,nr_inodes=1000000,mode=0711")


def _code_preload() -> None:
    for m in jail.PRELOAD:
        try:
            __import__(m)
        except ImportError:
            pass


def _backend_preload() -> None:
    """Import every stateful toolset and what it loads (never run any of it)."""
    _code_preload()
    from toolgym.env.tools import registry

    for kind in registry.KINDS:
        if kind in CODE_KINDS:
            continue
        cls = registry.resolve(kind)
        preload = getattr(cls, "preload", None)
        if callable(preload):
            preload()


def main(spec: dict[str, Any]) -> None:
    # Keep the protocol pipes on private fds; fd 0/1 become /dev/null so nothing a toolset
    # prints can corrupt the protocol.
    rfd = os.dup(0)
    wfd = os.dup(1)
    devnull = os.open("/dev/null", os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    sys.stdout = open(1, "w", closefd=False)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    nproc = int(spec.get("worker_processes") or 0)
    if nproc > 0:
        try:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        except (ValueError, OSError):
            pass
    mem = int(spec.get("worker_memory_bytes") or 0)
    if mem > 0:
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    _own_namespaces()
    jail.build_template(list(spec["jail_binds"]), dict(spec["jail_symlinks"]), list(spec.get("jail_hide", ())))
    prog = lk.build_seccomp_program() if bool(spec.get("seccomp", True)) else None
    seccomp = lk.SeccompFilter(prog) if prog else None
    worker = Worker(spec, rfd, wfd, {})
    # The zygotes fork before any session exists, and forget the launch spec (host paths).
    worker.zygotes["code"] = zygote.Zygote("code", _code_preload, lambda: zygote.scrub_launch_spec(spec),
                                           lambda fd: session.main(fd, seccomp))
    worker.zygotes["backend"] = zygote.Zygote("backend", _backend_preload, lambda: zygote.scrub_launch_spec(spec, drop_site_paths=False),
                                              lambda fd: session.main(fd, None))
    protocol.write_frame(wfd, {"ok": True, "ready": True, "python": sys.version.split()[0], "seccomp": seccomp is not None})
    worker.serve()


# Reads the launch spec (first frame on stdin), loads ``toolgym.env`` as a bare package (its
# ``__init__`` registers the Gymnasium env and would import gymnasium/numpy into every worker
# and, through the zygotes, every session), then runs :func:`main`.
BOOTSTRAP = r"""
import importlib.util, json, os, site, struct, sys, types
def _exact(n):
    b = b""
    while len(b) < n:
        c = os.read(0, n - len(b))
        if not c:
            raise SystemExit("toolgym sandbox worker: no launch spec on stdin")
        b += c
    return b
spec = json.loads(_exact(struct.unpack(">I", _exact(4))[0]))
del _exact
[site.addsitedir(d) for d in spec["site"]]  # (a comprehension: no loop variable left holding a host path)
try:
    import toolgym
except ImportError:
    toolgym = types.ModuleType("toolgym"); toolgym.__path__ = []; sys.modules["toolgym"] = toolgym
s = importlib.util.spec_from_file_location("toolgym.env", os.path.join(spec["env_dir"], "__init__.py"), submodule_search_locations=[spec["env_dir"]])
m = importlib.util.module_from_spec(s)
sys.modules["toolgym.env"] = m
toolgym.env = m
del s, m
import toolgym.env.sandbox.worker as w
w.main(spec)
"""
