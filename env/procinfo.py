"""Process facts read from /proc: resident memory, open descriptors, child processes.

One reader for the server's stats file and the benchmarks that watch a server process
(RSS and descriptor growth in soaks, sandbox workers' memory).
"""

from __future__ import annotations

import os
from pathlib import Path


def process_stats(pid: int | str = "self") -> dict[str, int]:
    """``{"rss_kib", "open_fds"}`` of a process; 0 for what /proc does not show (gone, not ours)."""
    rss = fds = 0
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                    break
    except OSError:
        pass
    try:
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        pass
    return {"rss_kib": rss, "open_fds": fds}


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, grandchildren, ...), e.g. a server's sandbox workers."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out
