"""Resident memory of a whole process tree, read from /proc (standard library only).

Per-process rlimits cannot bound a tree: a call that forks eight children, each under its own
RLIMIT_AS, may hold eight times the limit. The kernel's answer is a memory cgroup, but these
hosts give us cgroup v1 with no delegation to the sandbox's uid (checked: a Firecracker VM,
``/sys/fs/cgroup`` is a v1 tmpfs and the unified hierarchy has no controllers), so the sandbox
samples the tree instead: :func:`tree_rss` walks ``/proc/<pid>/task/<tid>/children`` from a
root and adds up ``statm``'s resident pages. A walk over a call's few processes costs tens of
microseconds, so the supervisor can sample every few milliseconds and kill the tree as soon
as it crosses its budget (code jails: :mod:`toolgym.env.sandbox.jail`; all workers together:
:class:`ServerWatch` in the pool).

Resident pages shared copy-on-write with a parent are counted once per process: the sum is an
over-estimate, which errs on the safe side.
"""

from __future__ import annotations

import os
import resource
import signal
import threading
from collections.abc import Callable, Iterable

PAGE = resource.getpagesize()


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (all its threads'); [] if it is gone."""
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                out.extend(int(x) for x in f.read().split())
        except (OSError, ValueError):
            continue
    return out


def tree(root: int) -> list[int]:
    """``root`` and every descendant still running."""
    seen: list[int] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.append(pid)
        todo.extend(children(pid))
    return seen


def rss(pid: int) -> int:
    """Resident bytes of one process (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return 0


def pss(pid: int) -> int:
    """Proportional resident bytes of one process (shared pages split among their sharers);
    falls back to :func:`rss` where ``smaps_rollup`` is missing. Costlier than :func:`rss`."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return rss(pid)


def tree_rss(root: int) -> int:
    """Resident bytes of ``root``'s whole tree (an over-estimate: see the module docstring)."""
    return sum(rss(p) for p in tree(root))


def host_mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 8 << 30


class ServerWatch:
    """A thread that keeps the resident memory of all workers' trees under ``budget`` bytes.

    Every ``interval_s`` it sums :func:`pss` over the trees of ``roots()`` (the workers' host pids:
    proportional, because hundreds of session processes share their zygote's pages, which a sum of
    RSS would count hundreds of times); when the sum is over budget it SIGKILLs the single largest
    process of those trees (a code call's
    process, a session process or, rarely, a worker: each of those is recovered from by the
    layer above it) and calls ``on_kill(pid, rss)``. It is the per-server backstop; the tight
    per-call bound is the jail's own watchdog.
    """

    def __init__(self, roots: Callable[[], Iterable[int]], budget: int, interval_s: float = 0.2,
                 on_kill: Callable[[int, int], None] | None = None) -> None:
        self.roots = roots
        self.budget = int(budget)
        self.interval_s = float(interval_s)
        self.on_kill = on_kill
        self.kills = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sandbox-memwatch", daemon=True)

    def start(self) -> ServerWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def check(self) -> int:
        """One sample; kills the largest process if over budget. Returns the total seen."""
        sizes = {p: pss(p) for r in list(self.roots()) for p in tree(r)}
        total = sum(sizes.values())
        if total > self.budget and sizes:
            pid = max(sizes, key=sizes.__getitem__)
            try:
                os.kill(pid, signal.SIGKILL)
                self.kills += 1
                if self.on_kill is not None:
                    self.on_kill(pid, sizes[pid])
            except (ProcessLookupError, PermissionError):
                pass
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
            except Exception:  # noqa: BLE001 - a watchdog must keep running
                continue
