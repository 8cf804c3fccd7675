"""Worker crashes, limits inside the worker process, concurrency, pool lifecycle."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from toolgym.env.sandbox import SandboxConfig, SandboxLimits, SessionError, WorkerPool

BFCL_CONFIG = {
    "involved_classes": ["MathAPI", "GorillaFileSystem"],
    "initial_config": {"GorillaFileSystem": {"root": {"workspace": {"type": "directory", "contents": {}}}}},
}


def _bfcl_available() -> bool:
    try:
        import bfcl_eval  # noqa: F401
        import toolgym.env.tools.bfcl_backends  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture()
def pool():
    p = WorkerPool(SandboxConfig(workers=2))
    yield p
    p.close()


def _py(pool, sid, code, **limits):
    return pool.call(sid, "python", {"code": code}, limits=limits or None)


def _dead(pid: int) -> bool:
    """Gone or a zombie (the pool reaps its workers only when it next touches them)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def _wait_dead(pid: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not _dead(pid):
        time.sleep(0.02)
    assert _dead(pid), f"process {pid} is still running"


def _wait_replaced(pool, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    st = pool.stats()
    while time.monotonic() < deadline and not (st["workers_alive"] == st["workers"] and st["restarts"] >= st["worker_deaths"]):
        time.sleep(0.05)
        st = pool.stats()
    return st


def test_killed_worker_session_is_rebuilt_by_replay(pool):
    sid = pool.open_session("python", {})
    assert _py(pool, sid, "open('data.txt', 'w').write('kept across a crash')").ok
    pid = pool.worker_pid(sid)
    os.kill(pid, signal.SIGKILL)
    _wait_dead(pid)
    r = _py(pool, sid, "print(open('data.txt').read())")
    assert r.ok and r.output == "kept across a crash\n", r
    st = _wait_replaced(pool)  # the replacement starts in the background, blocking no call
    assert st["rebuilds"] == 1 and st["restarts"] == 1 and st["replayed_calls"] == 1 and st["workers_alive"] == 2
    assert pool.worker_pid(sid) != pid


def test_worker_killed_mid_call_the_call_is_retried(pool):
    sid = pool.open_session("python", {})
    assert _py(pool, sid, "open('log.txt', 'w').write('first\\n')").ok
    pid = pool.worker_pid(sid)
    killer = threading.Timer(0.3, os.kill, (pid, signal.SIGKILL))
    killer.start()
    r = _py(pool, sid, "import time\ntime.sleep(0.8)\nopen('log.txt', 'a').write('second\\n')\nprint(open('log.txt').read())")
    killer.join()
    assert r.ok and r.output == "first\nsecond\n\n", r
    st = pool.stats()
    assert st["crashes_in_call"] == 1 and st["rebuilds"] == 1
    assert [e["name"] for e in pool.action_log(sid)] == ["python", "python"]


def test_other_sessions_on_a_dead_worker_rebuild_when_next_used():
    with WorkerPool(SandboxConfig(workers=1)) as pool:
        sessions = [pool.open_session("python", {}) for _ in range(3)]
        for i, sid in enumerate(sessions):
            assert _py(pool, sid, f"open('n.txt', 'w').write('{i}')").ok
        os.kill(pool.worker_pid(sessions[0]), signal.SIGKILL)
        for i, sid in enumerate(sessions):
            assert _py(pool, sid, "print(open('n.txt').read())").output == f"{i}\n"
        assert pool.stats()["rebuilds"] == 3


@pytest.mark.skipif(not _bfcl_available(), reason="bfcl-eval is not installed")
def test_in_process_backend_limits_recycle_only_the_session_without_the_call(pool):
    other = pool.open_session("bfcl_multi_turn", BFCL_CONFIG)
    assert pool.call(other, "mkdir", {"dir_name": "bystander"}).ok
    sid = pool.open_session("bfcl_multi_turn", BFCL_CONFIG)
    assert pool.call(sid, "mkdir", {"dir_name": "kept"}).ok
    before = pool.state(sid)
    rebuilds = pool.stats()["rebuilds"]
    # A C-level computation cannot be interrupted by a signal handler: the wall limit kills the
    # session's own process (not the worker: other sessions there go on untouched).
    r = pool.call(sid, "power", {"base": 10, "exponent": 10**9}, limits={"wall_s": 0.5, "cpu_s": 30})
    assert r.timed_out and not r.ok and "wall-time" in r.error, r
    assert pool.state(sid) == before  # rebuilt without the killed call
    r = pool.call(sid, "ls", {})
    assert r.ok and "kept" in r.output
    st = pool.stats()
    assert st["worker_deaths"] == 0 and st["session_kills"] == 1 and st["rebuilds"] == rebuilds + 1
    assert [e["name"] for e in pool.action_log(sid)] == ["mkdir", "ls"]
    assert "bystander" in pool.call(other, "ls", {}).output and pool.stats()["rebuilds"] == rebuilds + 1


def test_unknown_kind_tool_and_session(pool):
    with pytest.raises(SessionError, match="unknown toolset kind"):
        pool.open_session("no_such_kind", {})
    sid = pool.open_session("python", {})
    r = pool.call(sid, "shell", {"cmd": "ls"})
    assert not r.ok and "unknown tool 'shell'" in r.error
    r = pool.call(sid, "python", {"source": "1"})
    assert not r.ok and "code" in r.error
    pool.close_session(sid)
    with pytest.raises(SessionError):
        pool.call(sid, "python", {"code": "1"})
    pool.close_session(sid)  # closing twice is a no-op
    assert pool.stats()["worker_deaths"] == 0


def test_concurrent_sessions_from_many_threads(pool):
    errors: list[str] = []

    def client(i: int) -> None:
        try:
            sid = pool.open_session("python", {})
            for j in range(4):
                r = _py(pool, sid, f"import os\nopen('f{j}', 'w').write('{i}-{j}')\nprint(sorted(open(f).read() for f in os.listdir('.')))")
                want = sorted(f"{i}-{k}" for k in range(j + 1))
                if not r.ok or r.output != f"{want}\n":
                    errors.append(f"client {i} call {j}: {r}")
            pool.close_session(sid)
        except Exception as e:  # noqa: BLE001
            errors.append(f"client {i}: {e!r}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    st = pool.stats()
    assert st["calls"] == 32 and st["sessions"] == 0 and st["worker_deaths"] == 0


def test_sessions_spread_over_workers(pool):
    sids = [pool.open_session("python", {}) for _ in range(4)]
    pids = [pool.worker_pid(s) for s in sids]
    assert len(set(pids)) == 2 and pids.count(pids[0]) == 2


def test_close_stops_every_worker():
    pool = WorkerPool(SandboxConfig(workers=2))
    pids = pool.stats()["worker_pids"]
    assert len(pids) == 2
    pool.close()
    for pid in pids:
        _wait_dead(pid)
    pool.close()  # idempotent


def test_limits_validation():
    with pytest.raises(ValueError, match="wall_s"):
        SandboxLimits(wall_s=0)
    with pytest.raises(ValueError, match="unknown sandbox limit"):
        SandboxLimits.from_dict({"walltime": 3})
    assert SandboxLimits.from_dict({"wall_s": 2}).wall_s == 2


def test_workers_killed_under_concurrent_load_keep_sessions_consistent():
    """Threads keep calling while workers are killed under them: every call answers, a failed
    call has no effect, each session's state is exactly its successful calls, and the pool
    stays at its size (no descriptor mix-ups between dead and new workers)."""
    import random

    done = threading.Event()
    problems: list[str] = []
    written: dict[int, set[str]] = {}
    with WorkerPool(SandboxConfig(workers=2)) as pool:
        sids = [pool.open_session("python", {}) for _ in range(4)]

        def client(i: int) -> None:
            j = 0
            written[i] = set()
            while not done.is_set():
                r = _py(pool, sids[i], f"open('f{j}', 'w').write('x')")
                if r.ok:
                    written[i].add(f"f{j}")
                elif "worker died" not in (r.error or ""):
                    problems.append(f"client {i} call {j}: {r}")
                j += 1

        def killer() -> None:
            rng = random.Random(0)
            while not done.wait(rng.uniform(0.3, 0.6)):
                pids = pool.stats()["worker_pids"]
                if pids:
                    try:
                        os.kill(rng.choice(pids), signal.SIGKILL)
                    except ProcessLookupError:
                        pass

        threads = [threading.Thread(target=client, args=(i,)) for i in range(4)] + [threading.Thread(target=killer)]
        for t in threads:
            t.start()
        time.sleep(3.0)
        done.set()
        for t in threads:
            t.join(60)
        assert not problems, problems
        st = pool.stats()
        assert st["worker_deaths"] >= 2 and st["rebuilds"] >= 1 and len(st["worker_pids"]) == 2
        for i, sid in enumerate(sids):
            assert set(pool.state(sid)["files"]) == written[i]
