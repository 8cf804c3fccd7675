"""The sandbox worker: the process that runs inside bubblewrap and serves tool calls.

Started by :class:`toolgym.env.sandbox.WorkerPool` as
``python -S -s -B -P -c <bootstrap> <spec-json>`` inside bwrap. It speaks length-prefixed
JSON frames (:mod:`toolgym.env.sandbox.protocol`) on its original stdin/stdout and handles
one request at a time:

- ``{"op": "open", "session": id, "kind": k, "config": {...}}`` -> ``{"ok", "names", "isolated"}``
- ``{"op": "call", "session": id, "name": n, "args": {...}, "limits": {...}}`` -> a CallResult
  dict, plus ``"tainted": true`` when an in-process call hit a resource limit (the pool then
  discards this worker and rebuilds its sessions without that call)
- ``{"op": "state", "session": id}`` -> ``{"ok", "state"}``
- ``{"op": "close", "session": id}``, ``{"op": "ping"}``, ``{"op": "exit"}``

Every answer carries ``"ok"``; failures carry ``"error"``. Standard library only, plus the
toolset modules named in :data:`toolgym.env.tools.registry.KINDS`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import resource
import secrets
import signal
import sys
import time
from typing import Any

from toolgym.env.sandbox import jail, protocol
from toolgym.env.sandbox import lockdown as lk

WS_ROOT = jail.WORKSPACE_ROOT


class _CpuLimit(BaseException):
    """Raised (from SIGXCPU) inside an in-process call that ran past its CPU limit."""


def _on_xcpu(signum: int, frame: Any) -> None:
    raise _CpuLimit()


def _vsize() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * resource.getpagesize()


def _cpu_used() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _truncate(text: str, limit: int) -> tuple[str, bool]:
    data = text.encode("utf-8", errors="surrogatepass")
    if len(data) <= limit:
        return text, False
    return data[:limit].decode("utf-8", errors="ignore") + f"\n[output truncated: more than {limit} bytes]", True


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


class Worker:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.sessions: dict[str, tuple[Any, str]] = {}
        self.mem_hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        self.mem_cap = (1 << 62) if self.mem_hard == resource.RLIM_INFINITY else self.mem_hard

    # ---------------------------------------------------------------- ops
    def op_open(self, msg: dict[str, Any]) -> dict[str, Any]:
        from toolgym.env.tools import registry

        sid = str(msg["session"])
        if sid in self.sessions:
            return {"ok": False, "error": f"session {sid} is already open on this worker"}
        ws = os.path.join(WS_ROOT, secrets.token_hex(16))
        _mount_session_workspace(ws, int(self.spec["workspace_bytes"]), int(self.spec["workspace_inodes"]))
        try:
            toolset = registry.create(str(msg["kind"]), msg.get("config") or {}, ws)
            names = [str(n) for n in toolset.names()]
        except BaseException as e:  # noqa: BLE001
            _unmount_session_workspace(ws)
            return {"ok": False, "error": f"cannot open toolset {msg.get('kind')!r}: {type(e).__name__}: {e}"}
        self.sessions[sid] = (toolset, ws)
        return {"ok": True, "names": names, "isolated": bool(getattr(toolset, "isolated_calls", False))}

    def _session(self, msg: dict[str, Any]) -> tuple[Any, str]:
        sid = str(msg.get("session"))
        if sid not in self.sessions:
            raise KeyError(f"no session {sid} on this worker")
        return self.sessions[sid]

    def op_call(self, msg: dict[str, Any]) -> dict[str, Any]:
        resp = self._call(msg)
        if msg.get("digest") and resp.get("ok") and not resp.get("tainted"):
            # A digest of the state after the call lets the env see state changes (for the
            # redundant-call rule) without shipping the whole state back on every call.
            toolset, _ = self._session(msg)
            fingerprint = getattr(toolset, "fingerprint", None)  # full state, private parts included
            if fingerprint is not None:
                resp["result"]["state_digest"] = str(fingerprint())
            else:
                blob = json.dumps(toolset.state(), sort_keys=True, ensure_ascii=True, default=str).encode()
                resp["result"]["state_digest"] = hashlib.blake2b(blob, digest_size=16).hexdigest()
        return resp

    def _call(self, msg: dict[str, Any]) -> dict[str, Any]:
        from toolgym.env.tools.registry import ToolError

        toolset, _ = self._session(msg)
        name = str(msg["name"])
        args = msg.get("args") or {}
        limits = msg["limits"]
        t0 = time.monotonic()
        if not isinstance(args, dict):
            return {"ok": True, "result": {"ok": False, "output": "", "error": "arguments must be a JSON object", "timed_out": False, "truncated": False, "duration_s": 0.0}}
        names = toolset.names()
        if name not in names:
            err = f"unknown tool {name!r}; available: {', '.join(names) or '(none)'}"
            return {"ok": True, "result": {"ok": False, "output": "", "error": err, "timed_out": False, "truncated": False, "duration_s": 0.0}}
        if hasattr(toolset, "call_limited"):
            res = dict(toolset.call_limited(name, args, limits))
            res.setdefault("duration_s", time.monotonic() - t0)
            return {"ok": True, "result": res}
        # In-process backend: CPU via a SIGXCPU soft limit, memory via a soft RLIMIT_AS.
        tainted = timed_out = False
        output, error = "", None
        cpu_soft = int(math.ceil(_cpu_used() + float(limits["cpu_s"])))
        as_soft = min(self.mem_cap, _vsize() + int(limits["memory_bytes"]))
        try:
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_soft, resource.RLIM_INFINITY))
            resource.setrlimit(resource.RLIMIT_AS, (as_soft, self.mem_hard))
            try:
                out = toolset.call(name, args)
            finally:
                resource.setrlimit(resource.RLIMIT_AS, (self.mem_hard, self.mem_hard))
                resource.setrlimit(resource.RLIMIT_CPU, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            output = out if isinstance(out, str) else json.dumps(out, ensure_ascii=False, default=str)
        except ToolError as e:
            error = str(e) or type(e).__name__
        except _CpuLimit:
            tainted = timed_out = True
            error = f"CPU time limit exceeded ({float(limits['cpu_s']):g} s)"
        except MemoryError:
            tainted = True
            error = f"memory limit exceeded ({int(limits['memory_bytes'])} bytes)"
        except RecursionError as e:
            error = f"RecursionError: {e}"
        except Exception as e:  # noqa: BLE001 - a backend bug is an error observation
            error = f"{type(e).__name__}: {e}"
        output, truncated = _truncate(output, int(limits["output_bytes"]))
        if error is not None:
            error, _ = _truncate(error, int(limits["output_bytes"]))
        res = {"ok": error is None, "output": output, "error": error, "timed_out": timed_out, "truncated": truncated, "duration_s": time.monotonic() - t0}
        return {"ok": True, "result": res, "tainted": tainted}

    def op_state(self, msg: dict[str, Any]) -> dict[str, Any]:
        toolset, _ = self._session(msg)
        st = toolset.state()
        json.dumps(st)  # fail here, with a clear error, if it is not JSON-able
        return {"ok": True, "state": st}

    def op_close(self, msg: dict[str, Any]) -> dict[str, Any]:
        sid = str(msg.get("session"))
        item = self.sessions.pop(sid, None)
        if item is not None:
            toolset, ws = item
            close = getattr(toolset, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:  # noqa: BLE001
                    pass
            _unmount_session_workspace(ws)
        return {"ok": True}

    def op_ping(self, msg: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "sessions": len(self.sessions), "zygote": jail.zygote().alive(), "uid": os.getuid()}

    # ---------------------------------------------------------------- loop
    def serve(self, rfd: int, wfd: int) -> None:
        handlers = {"open": self.op_open, "call": self.op_call, "state": self.op_state, "close": self.op_close, "ping": self.op_ping}
        while True:
            try:
                msg = protocol.read_frame(rfd)
            except (protocol.FrameError, OSError):
                return
            op = msg.get("op") if isinstance(msg, dict) else None
            if op == "exit":
                protocol.write_frame(wfd, {"ok": True})
                return
            handler = handlers.get(op)  # type: ignore[arg-type]
            try:
                if handler is None:
                    resp = {"ok": False, "error": f"unknown op {op!r}"}
                else:
                    resp = handler(msg)
            except _CpuLimit:
                resp = {"ok": False, "error": "CPU time limit exceeded", "tainted": True}
            except Exception as e:  # noqa: BLE001
                resp = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            try:
                protocol.write_frame(wfd, resp)
            except (TypeError, ValueError) as e:  # not JSON-able (e.g. a NaN in a state)
                protocol.write_frame(wfd, {"ok": False, "error": f"unencodable answer: {e}"})
            if op == "call" and not jail.zygote().alive():
                return  # the zygote is gone: let the pool replace this worker


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
    signal.signal(signal.SIGXCPU, _on_xcpu)
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
    jail.start_zygote({"tmp_bytes": int(spec["tmp_bytes"]), "tmp_inodes": int(spec["tmp_inodes"])}, bool(spec.get("seccomp", True)))
    worker = Worker(spec)
    protocol.write_frame(wfd, {"ok": True, "ready": True, "python": sys.version.split()[0], "seccomp": jail.zygote().seccomp is not None})
    worker.serve(rfd, wfd)


# Loads ``toolgym.env`` as a bare package (its ``__init__`` registers the Gymnasium env and
# would import gymnasium/numpy into every worker and, through the zygote, every code call),
# then runs :func:`main`.
BOOTSTRAP = r"""
import importlib.util, json, os, site, sys, types
spec = json.loads(sys.argv[1])
for d in spec["site"]:
    site.addsitedir(d)
try:
    import toolgym
except ImportError:
    toolgym = types.ModuleType("toolgym"); toolgym.__path__ = []; sys.modules["toolgym"] = toolgym
s = importlib.util.spec_from_file_location("toolgym.env", os.path.join(spec["env_dir"], "__init__.py"), submodule_search_locations=[spec["env_dir"]])
m = importlib.util.module_from_spec(s)
sys.modules["toolgym.env"] = m
toolgym.env = m
import toolgym.env.sandbox.worker as w
w.main(spec)
"""
