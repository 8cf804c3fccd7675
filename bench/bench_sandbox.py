"""Sandbox call latency: cold (start a bwrap worker, then call) vs warm (a pre-forked worker).

Prints, side by side with their ratio:

- cold: a new sandboxed worker (launcher + bwrap + Python + worker start-up) plus one call,
  i.e. what every call would cost without long-lived workers; also a bare ``bwrap python -c pass``;
- warm in-process call: a BFCL backend call on a live worker (pipe round trip + dispatch);
- warm ``python`` tool call: fork a fresh jail from the session's process, run a tiny snippet (p50, p99);
- slow neighbour: another session's ``pwd`` step (a BFCL file-system call) on the *same* worker,
  p50/p99/max, while one session runs four 5 s python calls in one step, against the same
  steps with that session idle (issue 11: p99 must stay under 200 ms).

    python bench/bench_sandbox.py [--cold 10] [--warm 300] [--neighbour-s 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from toolgym.env.sandbox import SandboxConfig, WorkerPool
from toolgym.env.sandbox import bwrap as bw

SNIPPET = "x = sum(i * i for i in range(100))\nprint(x)"
BFCL_CONFIG = {"involved_classes": ["MathAPI"], "initial_config": {}}


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def ms(x: float) -> str:
    return f"{x * 1000:8.2f} ms"


def bare_bwrap(n: int) -> list[float]:
    """Start bwrap + ``python -S -c pass`` with the worker's sandbox settings, n times."""
    plan = bw.plan_worker(SandboxConfig(workers=1))
    argv = list(plan.argv)
    if plan.staged:  # the command is inside the launcher's JSON spec
        spec = json.loads(argv[-1])
        cut = spec["argv"].index("--")
        spec["argv"] = spec["argv"][: cut + 2] + ["-S", "-c", "pass"]
        argv[-1] = json.dumps(spec)
    else:
        cut = argv.index("--")
        argv = argv[: cut + 2] + ["-S", "-c", "pass"]
    kw = {"user": plan.user, "group": plan.group, "extra_groups": []} if plan.user is not None else {}
    out = []
    for _ in range(n):
        info_r, info_w = os.pipe()  # bwrap's --info-fd, as in bwrap.spawn
        cmd = [a.replace(bw.INFO_FD, str(info_w)) for a in argv]
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, pass_fds=(info_w,), **kw)
        out.append(time.perf_counter() - t)
        os.close(info_r)
        os.close(info_w)
    return out


def cold_calls(n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        with WorkerPool(SandboxConfig(workers=1)) as pool:
            sid = pool.open_session("python", {})
            r = pool.call(sid, "python", {"code": SNIPPET})
            out.append(time.perf_counter() - t)
        assert r.ok, r
    return out


def warm_calls(n: int) -> dict[str, list[float]]:
    res: dict[str, list[float]] = {}
    with WorkerPool(SandboxConfig(workers=1)) as pool:
        sid = pool.open_session("python", {})
        for _ in range(10):
            pool.call(sid, "python", {"code": SNIPPET})
        py = []
        for _ in range(n):
            t = time.perf_counter()
            r = pool.call(sid, "python", {"code": SNIPPET})
            py.append(time.perf_counter() - t)
            assert r.ok and r.output == "328350\n", r
        res["python"] = py
        try:
            bid = pool.open_session("bfcl_multi_turn", BFCL_CONFIG)
        except Exception as e:  # noqa: BLE001 - bfcl-eval not installed: skip that line
            print(f"(in-process backend skipped: {e})", file=sys.stderr)
        else:
            for _ in range(20):
                pool.call(bid, "add", {"a": 1, "b": 2})
            inproc = []
            for _ in range(n):
                t = time.perf_counter()
                r = pool.call(bid, "add", {"a": 1, "b": 2})
                inproc.append(time.perf_counter() - t)
                assert r.ok, r
            res["in_process"] = inproc
    return res


def slow_neighbour(sleep_s: float, calls: int = 4) -> dict[str, list[float]]:
    """``pwd`` latencies of one session, idle neighbour vs a neighbour in ``calls`` slow calls."""
    fs = {"involved_classes": ["GorillaFileSystem"], "initial_config": {}}
    res: dict[str, list[float]] = {}
    # One worker: both sessions share it (the worst case); a step budget wide enough for all four.
    with WorkerPool(SandboxConfig(workers=1, step_wall_s=calls * (sleep_s + 2))) as pool:
        slow = pool.open_session("python", {})
        fast = pool.open_session("bfcl_multi_turn", fs)

        def pwds(until: float) -> list[float]:
            out = []
            while time.monotonic() < until:
                t = time.perf_counter()
                r = pool.call(fast, "pwd", {})
                out.append(time.perf_counter() - t)
                assert r.ok, r
                time.sleep(0.01)
            return out

        res["idle"] = pwds(time.monotonic() + 3.0)
        import threading

        def step() -> None:
            deadline = pool.step_deadline()
            for _ in range(calls):
                r = pool.call(slow, "python", {"code": f"import time\ntime.sleep({sleep_s})"}, limits={"wall_s": sleep_s + 1}, deadline=deadline)
                assert r.ok, r

        t = threading.Thread(target=step)
        t0 = time.monotonic()
        t.start()
        busy = []
        while t.is_alive():
            busy += pwds(min(time.monotonic() + 0.5, t0 + calls * (sleep_s + 2)))
        t.join()
        res["busy"] = busy
        res["slow_step_s"] = [time.monotonic() - t0]
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cold", type=int, default=10, help="cold starts to time")
    ap.add_argument("--warm", type=int, default=300, help="warm calls to time")
    ap.add_argument("--neighbour-s", type=float, default=5.0, help="seconds of each of the slow neighbour's four calls (0: skip)")
    ap.add_argument("--json", action="store_true", help="also print one JSON line with every number")
    a = ap.parse_args(argv)

    bare = bare_bwrap(a.cold)
    cold = cold_calls(a.cold)
    warm = warm_calls(a.warm)
    cold50, bare50 = statistics.median(cold), statistics.median(bare)
    py50, py99 = pct(warm["python"], 0.5), pct(warm["python"], 0.99)
    print(f"cold: new sandboxed worker + python call   p50 {ms(cold50)}   (bare bwrap + `python -S -c pass`: p50 {ms(bare50)})")
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        print(f"(note: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs: timings include waiting for a CPU)")
    print(f"warm: python tool call (fresh jail)        p50 {ms(py50)}   p99 {ms(py99)}   cold/warm {cold50 / py50:6.1f}x   (min {ms(min(warm['python']))})")
    summary = {"cold_p50_s": cold50, "bare_bwrap_p50_s": bare50, "python_p50_s": py50, "python_p99_s": py99, "python_min_s": min(warm["python"])}
    if "in_process" in warm:
        ip50, ip99 = pct(warm["in_process"], 0.5), pct(warm["in_process"], 0.99)
        print(f"warm: in-process backend call (BFCL add)   p50 {ms(ip50)}   p99 {ms(ip99)}   cold/warm {cold50 / ip50:6.1f}x")
        summary.update(in_process_p50_s=ip50, in_process_p99_s=ip99)
    if a.neighbour_s > 0:
        nb = slow_neighbour(a.neighbour_s)
        idle50, idle99 = pct(nb["idle"], 0.5), pct(nb["idle"], 0.99)
        busy50, busy99 = pct(nb["busy"], 0.5), pct(nb["busy"], 0.99)
        print(f"pwd step, neighbour idle                   p50 {ms(idle50)}   p99 {ms(idle99)}   (n={len(nb['idle'])})")
        print(f"pwd step, neighbour in 4 x {a.neighbour_s:g} s calls     p50 {ms(busy50)}   p99 {ms(busy99)}   max {ms(max(nb['busy']))}   "
              f"p99 busy/idle {busy99 / idle99:5.2f}x   (n={len(nb['busy'])}, same worker; the slow step took {nb['slow_step_s'][0]:.1f} s)")
        summary.update(pwd_idle_p50_s=idle50, pwd_idle_p99_s=idle99, pwd_busy_p50_s=busy50, pwd_busy_p99_s=busy99, pwd_busy_max_s=max(nb["busy"]))
    if a.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
