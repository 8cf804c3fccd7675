"""Bounded steps and bounded memory: a slow, runaway or memory-hungry call costs only its own session.

No wall-time thresholds here (bench/bench_sandbox.py measures the latencies); these check
behaviour: who finishes while whom is still running, how many calls a step budget cuts, which
processes die, and that a forking memory bomb never takes more of the host than its budget.
"""

from __future__ import annotations

import threading
import time

import pytest

from toolgym.env.sandbox import SandboxConfig, SandboxLimits, WorkerPool
from toolgym.env.sandbox import memwatch

BFCL_FS = {"involved_classes": ["GorillaFileSystem", "MathAPI"], "initial_config": {}}


@pytest.fixture(scope="module")
def pool():
    # One worker: every session shares it, the worst case for holding one another up.
    p = WorkerPool(SandboxConfig(workers=1, step_wall_s=1.5))
    yield p
    p.close()


def test_a_slow_session_does_not_hold_up_another_on_the_same_worker(pool):
    slow = pool.open_session("python", {})
    fast = pool.open_session("bfcl_multi_turn", BFCL_FS)
    started = threading.Event()
    slow_results = []

    def four_slow_calls() -> None:
        started.set()
        for _ in range(4):
            slow_results.append(pool.call(slow, "python", {"code": "import time\ntime.sleep(1.0)\nprint('slept')"}))

    t = threading.Thread(target=four_slow_calls)
    t.start()
    started.wait()
    time.sleep(0.2)  # the first slow call is running now
    pwds = [pool.call(fast, "pwd", {}) for _ in range(20)]
    still_running = t.is_alive()
    t.join()
    assert all(r.ok and "/" in r.output for r in pwds)
    assert still_running, "20 pwd steps of another session had to wait for the slow session's calls"
    assert [r.output for r in slow_results] == ["slept\n"] * 4
    assert pool.stats()["worker_deaths"] == 0


def test_a_step_budget_cuts_one_call_and_skips_the_rest(pool):
    sid = pool.open_session("python", {})
    deadline = pool.step_deadline()  # step_wall_s = 1.5 s for all the calls of this step
    results = [pool.call(sid, "python", {"code": "import time\ntime.sleep(0.8)\nprint('done')"}, deadline=deadline) for _ in range(4)]
    assert results[0].ok and results[0].output == "done\n"
    assert results[1].timed_out and "step's wall-time budget" in results[1].error
    assert all(r.not_run and not r.timed_out and not r.ok and "not run" in r.error for r in results[2:])
    assert sum(r.timed_out for r in results) == 1  # reported once, whatever the number of calls
    assert pool.call(sid, "python", {"code": "print(1)"}, deadline=pool.step_deadline()).ok  # the next step starts afresh


def test_a_runaway_backend_call_is_cut_and_costs_only_its_session(pool):
    bystander = pool.open_session("bfcl_multi_turn", BFCL_FS)
    assert pool.call(bystander, "mkdir", {"dir_name": "bystander"}).ok
    sid = pool.open_session("bfcl_multi_turn", BFCL_FS)
    assert pool.call(sid, "mkdir", {"dir_name": "kept"}).ok
    before = pool.stats()
    done = threading.Event()
    other = []

    def bystander_steps() -> None:
        while not done.is_set():
            other.append(pool.call(bystander, "ls", {}))

    t = threading.Thread(target=bystander_steps)
    t.start()
    r = pool.call(sid, "logarithm", {"value": 2, "base": 10, "precision": 10_000_000}, limits={"wall_s": 1.0})
    done.set()
    t.join()
    assert r.timed_out and not r.ok and "wall-time" in r.error
    assert other and all(o.ok and "bystander" in o.output for o in other)  # served meanwhile
    assert "kept" in pool.call(sid, "ls", {}).output  # rebuilt without the cut call
    after = pool.stats()
    assert after["worker_deaths"] == before["worker_deaths"] == 0
    assert after["session_kills"] == before["session_kills"] + 1 and after["rebuilds"] == before["rebuilds"] + 1


def _mem_available() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no MemAvailable in /proc/meminfo")


# Four children, each touching 200 MB as fast as it can: 800 MB if nothing stopped them, against
# a budget of 512 MiB (smaller than the 1 GiB default to keep ten runs fast).
BOMB_BUDGET = 512 << 20
FORK_BOMB = """
import os
kids = []
for _ in range(4):
    pid = os.fork()
    if pid == 0:
        block = b'x' * (200 << 20)
        os._exit(0)
    kids.append(pid)
for pid in kids:
    os.waitpid(pid, 0)
print('survived')
"""


def test_a_forking_memory_bomb_stays_under_the_tree_budget_10_of_10():
    assert SandboxLimits().tree_memory_bytes <= 1 << 30  # the documented default: at most 1 GiB per call
    budget = BOMB_BUDGET
    with WorkerPool(SandboxConfig(workers=1)) as p:
        sid = p.open_session("python", {})
        drops = []
        for _ in range(10):
            base = _mem_available()
            low = [base]
            stop = threading.Event()

            def sample() -> None:
                while not stop.is_set():
                    low[0] = min(low[0], _mem_available())
                    time.sleep(0.001)

            t = threading.Thread(target=sample)
            t.start()
            r = p.call(sid, "python", {"code": FORK_BOMB}, limits={"tree_memory_bytes": budget, "processes": 8, "wall_s": 10})
            stop.set()
            t.join()
            drops.append(base - low[0])
            assert not r.ok and "memory limit exceeded" in r.error and not r.timed_out, r
        assert p.stats()["worker_deaths"] == 0
        assert p.call(sid, "python", {"code": "print('fine')"}).output == "fine\n"
    print("MemAvailable drops (MiB):", [d >> 20 for d in drops])
    over = [d for d in drops if d >= budget]
    assert not over, f"host MemAvailable fell by more than the {budget} byte budget in {len(over)}/10 runs: {drops}"


def test_the_server_wide_watchdog_kills_the_largest_process():
    with WorkerPool(SandboxConfig(workers=1, memory_total_bytes=400 << 20)) as p:
        sid = p.open_session("python", {})
        r = p.call(sid, "python", {"code": "import time\nblock = b'x' * (500 << 20)\ntime.sleep(5)\nprint('kept it')"},
                   limits={"memory_bytes": 700 << 20, "tree_memory_bytes": 2 << 30, "wall_s": 10})
        assert not r.ok and "SIGKILL" in r.error and not r.timed_out, r
        assert p.stats()["memory_kills"] >= 1 and p.stats()["worker_deaths"] == 0
        assert p.call(sid, "python", {"code": "print('fine')"}).output == "fine\n"


def test_tree_rss_counts_every_descendant():
    import os

    pid = os.fork()
    if pid == 0:
        time.sleep(2)
        os._exit(0)
    try:
        assert pid in memwatch.tree(os.getpid())
        assert memwatch.tree_rss(os.getpid()) >= memwatch.rss(os.getpid()) + memwatch.rss(pid) > 0
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
