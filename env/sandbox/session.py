"""The session process S: one toolset instance, in a process forked for it from a clean zygote.

Runs inside a sandbox worker (standard library only, plus the toolset modules). It reads
frames from its socket to the worker and answers each (one at a time; the worker sends the
next only after the answer):

- ``{"op": "open", "kind", "config", "workspace", "layout"}`` -> ``{"ok", "names", "isolated", "pid"}``
- ``{"op": "call", "name", "args", "limits", "digest"?}`` -> ``{"ok": True, "result": CallResult
  dict, "tainted"?}``; ``tainted`` means an in-process call hit a CPU or memory limit: its
  partial effects may be in this process, so the worker kills it and the session is rebuilt
  without that call
- ``{"op": "state"}`` -> ``{"ok", "state"}``

In-process limits are per process here, so they are exact: CPU by a SIGXCPU soft limit, memory
by a soft RLIMIT_AS over the current size. Wall time is the worker's: it kills this process.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import resource
import signal
import time
from typing import Any

from toolgym.env.sandbox import lockdown as lk
from toolgym.env.sandbox import protocol


class CpuLimit(BaseException):
    """Raised (from SIGXCPU) inside an in-process call that ran past its CPU limit."""


def _on_xcpu(signum: int, frame: Any) -> None:
    raise CpuLimit()


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


def _result(ok: bool, output: str = "", error: str | None = None, duration: float = 0.0, **extra: Any) -> dict[str, Any]:
    return {"ok": ok, "output": output, "error": error, "timed_out": False, "truncated": False, "duration_s": duration, **extra}


class SessionProcess:
    def __init__(self, seccomp: lk.SeccompFilter | None) -> None:
        self.seccomp = seccomp
        self.toolset: Any = None
        self.mem_hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        self.mem_cap = (1 << 62) if self.mem_hard == resource.RLIM_INFINITY else self.mem_hard

    def op_open(self, msg: dict[str, Any]) -> dict[str, Any]:
        from toolgym.env.sandbox import jail
        from toolgym.env.tools import registry

        jail.configure(msg.get("layout") or {"tmp_bytes": 1 << 24, "tmp_inodes": 4096}, self.seccomp)
        try:
            self.toolset = registry.create(str(msg["kind"]), msg.get("config") or {}, str(msg["workspace"]))
            names = [str(n) for n in self.toolset.names()]
        except BaseException as e:  # noqa: BLE001
            return {"ok": False, "error": f"cannot open toolset {msg.get('kind')!r}: {type(e).__name__}: {e}"}
        return {"ok": True, "names": names, "isolated": bool(getattr(self.toolset, "isolated_calls", False)), "pid": os.getpid()}

    def op_call(self, msg: dict[str, Any]) -> dict[str, Any]:
        resp = self._call(msg)
        if msg.get("digest") and resp.get("ok") and not resp.get("tainted"):
            # A digest of the state after the call lets the env see state changes (for the
            # redundant-call rule) without shipping the whole state back on every call.
            fingerprint = getattr(self.toolset, "fingerprint", None)  # full state, private parts included
            if fingerprint is not None:
                resp["result"]["state_digest"] = str(fingerprint())
            else:
                blob = json.dumps(self.toolset.state(), sort_keys=True, ensure_ascii=True, default=str).encode()
                resp["result"]["state_digest"] = hashlib.blake2b(blob, digest_size=16).hexdigest()
        return resp

    def _call(self, msg: dict[str, Any]) -> dict[str, Any]:
        from toolgym.env.tools.registry import ToolError

        toolset = self.toolset
        name = str(msg["name"])
        args = msg.get("args") or {}
        limits = msg["limits"]
        t0 = time.monotonic()
        if not isinstance(args, dict):
            return {"ok": True, "result": _result(False, error="arguments must be a JSON object")}
        names = toolset.names()
        if name not in names:
            return {"ok": True, "result": _result(False, error=f"unknown tool {name!r}; available: {', '.join(names) or '(none)'}")}
        if hasattr(toolset, "call_limited"):
            res = dict(toolset.call_limited(name, args, limits))
            res.setdefault("duration_s", time.monotonic() - t0)
            return {"ok": True, "result": res}
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
        except CpuLimit:
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
        res = _result(error is None, output, error, time.monotonic() - t0, timed_out=timed_out, truncated=truncated)
        return {"ok": True, "result": res, "tainted": tainted}

    def op_state(self, msg: dict[str, Any]) -> dict[str, Any]:
        st = self.toolset.state()
        json.dumps(st)  # fail here, with a clear error, if it is not JSON-able
        return {"ok": True, "state": st}

    def serve(self, fd: int) -> None:
        handlers = {"open": self.op_open, "call": self.op_call, "state": self.op_state}
        while True:
            try:
                msg = protocol.read_frame(fd)
            except (protocol.FrameError, OSError):
                return
            op = msg.get("op") if isinstance(msg, dict) else None
            handler = handlers.get(op)  # type: ignore[arg-type]
            tainted = False
            try:
                if handler is None:
                    resp = {"ok": False, "error": f"unknown op {op!r}"}
                elif op != "open" and self.toolset is None:
                    resp = {"ok": False, "error": "the session is not open"}
                else:
                    resp = handler(msg)
            except CpuLimit:
                resp, tainted = {"ok": False, "error": "CPU time limit exceeded", "tainted": True}, True
            except MemoryError:
                resp, tainted = {"ok": False, "error": "memory limit exceeded", "tainted": True}, True
            except Exception as e:  # noqa: BLE001
                resp = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            try:
                protocol.write_frame(fd, resp)
            except (TypeError, ValueError) as e:  # not JSON-able (e.g. a NaN in a state)
                protocol.write_frame(fd, {"ok": False, "error": f"unencodable answer: {e}"})
            if tainted or resp.get("tainted"):
                return  # partial effects of the call may live here: end, the session is rebuilt


def main(fd: int, seccomp: lk.SeccompFilter | None) -> None:
    """Entry point in a freshly forked session process (the zygote's child)."""
    lk.prctl(lk.PR_SET_PDEATHSIG, signal.SIGKILL)
    signal.signal(signal.SIGXCPU, _on_xcpu)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    protocol.write_frame(fd, {"hello": os.getpid()})  # lets the worker kill this process at any time
    SessionProcess(seccomp).serve(fd)
