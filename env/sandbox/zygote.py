"""Zygotes: clean processes that fork one session process per session (standard library only).

Why: BFCL's backend classes keep state at module, class and function-default level (e.g.
``TwitterAPI.post_tweet(..., mentions=[])``, a list that ``mention()`` mutates in place). A
long-lived process that runs one session after another carries that state from one episode
into the next. So no session runs in a long-lived process: a worker starts its zygotes once,
before any session exists; each zygote imports what its sessions need (the backend modules,
the code runner) and never runs any of it. Every session is a fresh ``fork`` of one, so it
starts from exactly the state a new process that imported the same modules would have: the
isolation holds for every backend and every kind of leak, not one patched attribute.

A fork costs ~1-3 ms; the session's memory is copy-on-write. The worker hands the zygote one
end of a new socket pair (``SCM_RIGHTS``) and nothing else: the zygote never sees a session's
config, so no session data ever exists in it to be inherited.

Two zygotes per worker: ``code`` (the python tool: only the small :data:`jail.PRELOAD` set, so
each code call's fork stays cheap and installed packages stay out of its memory) and
``backend`` (the stateful toolsets: their modules preloaded).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

from toolgym.env.sandbox import lockdown as lk


def _open_fds() -> list[int]:
    try:
        return [int(x) for x in os.listdir("/proc/self/fd")]
    except OSError:
        return list(range(3, 256))


def _zygote_main(ctl: socket.socket, preload: Callable[[], None], scrub: Callable[[], None],
                 session_main: Callable[[int], None]) -> None:
    lk.prctl(lk.PR_SET_PDEATHSIG, signal.SIGKILL)
    signal.signal(signal.SIGXCPU, signal.SIG_DFL)
    # Session processes are reaped by the kernel: the worker watches them through their
    # sockets and pidfds, and the zygote never waits for anyone.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    devnull = os.open("/dev/null", os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)  # never hold the worker's protocol pipes
    keep = {0, 1, 2, ctl.fileno()}
    for fd in _open_fds():
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass
    scrub()
    preload()
    while True:
        try:
            _, fds, _, _ = socket.recv_fds(ctl, 1, 4)
        except OSError:
            os._exit(0)
        if not fds:
            os._exit(0)  # the worker closed its end
        for extra in fds[1:]:
            os.close(extra)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                ctl.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # S waits for its own jails
                session_main(fds[0])
            except BaseException:  # noqa: BLE001 - a session process must never return into the loop
                code = 1
            finally:
                os._exit(code)
        os.close(fds[0])


class Zygote:
    """Handle (held by the worker) on one zygote process."""

    def __init__(self, name: str, preload: Callable[[], None], scrub: Callable[[], None],
                 session_main: Callable[[int], None]) -> None:
        self.name = name
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        sys.stdout.flush()
        sys.stderr.flush()
        self.pid = os.fork()
        if self.pid == 0:
            try:
                mine.close()
                _zygote_main(theirs, preload, scrub, session_main)
            finally:
                os._exit(0)
        theirs.close()
        self.ctl = mine

    def fileno(self) -> int:
        return self.ctl.fileno()

    def fork_session(self) -> socket.socket:
        """A new session process; returns the worker's end of its socket."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            socket.send_fds(self.ctl, [b"S"], [theirs.fileno()])
        finally:
            theirs.close()
        return mine

    def alive(self) -> bool:
        try:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return False
        return pid == 0


def scrub_launch_spec(spec: dict[str, Any], *, drop_site_paths: bool = True) -> None:
    """Forget the worker's launch spec in a zygote (its host paths must not reach model code).

    The spec dict is shared by every reference the worker holds (its ``__main__``, frames), so
    clearing it in the zygote's copy of memory clears it for all of them there; ``sys.argv``
    and (``drop_site_paths``: the code zygote, whose jails cannot read them anyway) the worker's
    own package dirs on ``sys.path`` go too. The backend zygote keeps them: a backend may import
    lazily.
    """
    site = [str(p) for p in spec.get("site", ())] + [str(spec.get("env_dir", ""))]
    spec.clear()
    sys.argv = ["<sandbox>"]
    if drop_site_paths:
        sys.path[:] = [p for p in sys.path if p not in site]
    main = sys.modules.get("__main__")
    if main is not None and isinstance(getattr(main, "spec", None), dict):
        main.spec = {}
