"""Faults, in CI and short: sandbox workers killed under load, a tool stalled past its limit, a
Step whose reply is lost, SIGTERM mid-run with a restart (clients retrying on UNAVAILABLE), and
clients that die or freeze mid-stream (half-open connections).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import grpc
import pytest
from hardening_support import ServerProc, free_port

from toolgym.env.client import RetryPolicy, ToolgymClient
from toolgym.env.server.app import ServerConfig, start_server


def call(name: str, **args) -> str:
    return f'<tool_call>{json.dumps({"name": name, "arguments": args})}</tool_call>'


MULTI_SCRIPT = [call("ls"), call("mkdir", dir_name="fault_dir"), call("cd", folder="fault_dir"), call("touch", file_name="a.txt"),
                call("ls"), "That is done.", call("pwd"), call("ls", a=True), "Finished this part.", call("cd", folder=".."), "All done."]


def run_episode(client: ToolgymClient, task_id: str) -> list[tuple]:
    r = client.reset(task_id, template="hermes", max_steps=len(MULTI_SCRIPT))
    trace = []
    try:
        for i, action in enumerate(MULTI_SCRIPT):
            s = client.step(r.session_id, action, step_index=i)
            trace.append((s.observation, s.reward, s.terminated, s.truncated))
            if s.terminated or s.truncated:
                trace.append(("score", s.score.total, tuple(sorted(s.score.components.items())), tuple(sorted(s.score.penalties.items()))))
                break
    finally:
        client.close_session(r.session_id)
    return trace


@pytest.fixture(scope="module")
def server(suite):
    srv = start_server(ServerConfig(port=0, sandbox_workers=2, tool_wall_s=1.0), suite=suite)
    yield srv
    srv.stop(0)


TASKS = ["multi_turn_base_0", "multi_turn_base_1", "multi_turn_base_3", "multi_turn_miss_param_0", "multi_turn_base_4", "multi_turn_base_2"]


def test_killing_sandbox_workers_under_load_loses_nothing(server):
    """Sessions are rebuilt from their action logs: every episode equals its fault-free run."""
    with ToolgymClient(server.address, timeout=120) as c:
        reference = {t: run_episode(c, t) for t in TASKS}
        before = server.stats()["sandbox"]
        stop = threading.Event()
        killed = [0]

        def killer() -> None:
            rng = random.Random(3)
            while killed[0] < 8 and not stop.wait(0.25):
                pids = server.stats()["sandbox"].get("worker_pids") or []
                if pids:
                    try:
                        os.kill(rng.choice(pids), signal.SIGKILL)
                        killed[0] += 1
                    except ProcessLookupError:
                        pass
            time.sleep(0.5)
            stop.set()  # eight workers killed mid-load: let the episodes in flight finish

        results: dict[str, list] = {t: [] for t in TASKS}
        errors: list[BaseException] = []

        def client_loop(t: str) -> None:
            try:
                while not stop.is_set():
                    results[t].append(run_episode(c, t))
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)
                stop.set()

        k = threading.Thread(target=killer)
        k.start()
        loops = [threading.Thread(target=client_loop, args=(t,)) for t in TASKS]
        for th in loops:
            th.start()
        k.join(120)
        stop.set()
        for th in loops:
            th.join(300)
    assert not errors, errors
    for t in TASKS:
        for run in results[t]:
            assert run == reference[t], t  # same observations, rewards and scores as without faults
    after = server.stats()["sandbox"]
    assert killed[0] == 8 and sum(map(len, results.values())) >= 12 and after["worker_deaths"] > before["worker_deaths"] and after["rebuilds"] > before["rebuilds"]
    assert after["workers_alive"] == 2 and after["replay_mismatches"] == 0 and after["sessions"] == 0


def test_stalled_tool_is_cut_at_its_limit_and_penalised(server):
    with ToolgymClient(server.address, timeout=60) as c:
        r = c.reset("toolgym_python_0", template="hermes", max_steps=4)
        done = {}

        def stall() -> None:
            t = time.monotonic()
            done["step"] = c.step(r.session_id, call("python", code="while True: pass"), step_index=0)
            done["s"] = time.monotonic() - t

        th = threading.Thread(target=stall)
        th.start()
        time.sleep(0.3)
        t = time.monotonic()  # the server is fine meanwhile: other calls are answered at once
        assert c.health() == "SERVING" and c.score("x", task_id="simple_python_0").valid
        assert time.monotonic() - t < 1.0
        th.join(30)
        assert done["s"] < 1.0 + 2.0 + 2.0  # wall limit + the pool's grace + slack
        assert "wall-time limit" in done["step"].observation or "time" in done["step"].observation.lower()
        s = c.step(r.session_id, call("python", code="print(6 * 7)"), step_index=1)  # the session goes on
        assert "42" in s.observation
        final = c.step(r.session_id, "Final Answer: 338350", step_index=2)
        assert final.terminated and final.score.valid and final.score.penalties.get("timeout", 0) < 0
        c.close_session(r.session_id)


def test_lost_step_reply_is_not_applied_twice(server):
    """The reply of a slow Step is lost (client deadline); the retry with the same step_index gets the
    recorded reply and the action ran once — the workspace file it appends to has one line."""
    code = "import time; open('log.txt', 'a').write('x\\n'); time.sleep(0.6); print('lines=%d' % len(open('log.txt').read().splitlines()))"
    with ToolgymClient(server.address, timeout=60) as c:
        r = c.reset("toolgym_python_0", template="hermes", max_steps=5)
        with pytest.raises(grpc.RpcError) as e:
            c.step(r.session_id, call("python", code=code), step_index=0, timeout=0.2)
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        retry = c.step(r.session_id, call("python", code=code), step_index=0)  # waits for the first to finish
        assert retry.step_index == 0 and "lines=1" in retry.observation
        check = c.step(r.session_id, call("python", code="print('lines=%d' % len(open('log.txt').read().splitlines()))"), step_index=1)
        assert "lines=1" in check.observation
        with pytest.raises(grpc.RpcError) as e:  # same index, different action: refused, not silently answered
            c.step(r.session_id, "Final Answer: 1", step_index=1)
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "different action" in e.value.details()
        c.close_session(r.session_id)


# ---------------------------------------------------------------------------- SIGTERM and restart
def test_sigterm_drains_and_retrying_clients_resume_after_restart():
    port = free_port()
    srv = ServerProc(port=port, args=["--drain-grace-s", "15", "--sandbox-workers", "1"]).start()
    retry = RetryPolicy(max_attempts=100, initial_backoff_s=0.05, max_backoff_s=0.5, max_elapsed_s=90)
    stop = threading.Event()
    stats = {"episodes": 0, "after_restart": 0, "not_found": 0, "errors": []}
    restarted = threading.Event()

    def worker(i: int) -> None:
        with ToolgymClient(srv.address, timeout=30, retry=retry) as c:
            while not stop.is_set():
                try:
                    r = c.reset(f"simple_python_{i}", template="hermes")
                    c.step(r.session_id, call("calculate_triangle_area", base=10, height=5))
                    c.close_session(r.session_id)
                    stats["episodes"] += 1
                    stats["after_restart"] += restarted.is_set()
                except grpc.RpcError as e:
                    if e.code() == grpc.StatusCode.NOT_FOUND:  # a session of the old process: start a new episode
                        stats["not_found"] += 1
                    else:
                        stats["errors"].append(f"{e.code()}: {e.details()}")
                        return

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for th in workers:
        th.start()
    try:
        time.sleep(2)
        with ToolgymClient(srv.address, timeout=60) as c:
            r = c.reset("toolgym_python_0", template="hermes")
            inflight = {}
            th = threading.Thread(target=lambda: inflight.setdefault("step", c.step(
                r.session_id, call("python", code="import time; time.sleep(2); print('drained')"))))
            th.start()
            time.sleep(0.7)
            t = time.monotonic()
            srv.signal(signal.SIGTERM)
            th.join(30)
            assert "drained" in inflight["step"].observation  # the in-flight step finished during the drain
        assert srv.proc.wait(30) == 0
        srv.stop()
        down = time.monotonic() - t
        srv = ServerProc(port=port, args=["--sandbox-workers", "1"]).start()  # same address, fresh process
        restarted.set()
        time.sleep(3)
    finally:
        stop.set()
        for th in workers:
            th.join(60)
        srv.stop()
    assert not stats["errors"], stats["errors"]
    assert stats["after_restart"] >= 4, stats  # every retrying client resumed on the new process
    assert down < 20


def test_clients_without_retry_see_unavailable():
    port = free_port()
    with ToolgymClient(f"127.0.0.1:{port}", timeout=5) as c:
        with pytest.raises(grpc.RpcError) as e:
            c.health()
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE


# ---------------------------------------------------------------------------- half-open streams
STREAM_CLIENT = r"""
import sys, time, grpc
from toolgym.v1 import env_pb2, env_pb2_grpc
stub = env_pb2_grpc.EnvServiceStub(grpc.insecure_channel(sys.argv[1]))
def reqs():
    for i in range(3):
        yield env_pb2.SessionRequest(tag=f"r{i}", reset=env_pb2.ResetRequest(task_id=f"multi_turn_base_{i}", template="hermes"))
    while True:
        time.sleep(0.05)
        yield env_pb2.SessionRequest(tag="p", close=env_pb2.CloseRequest(session_id="none"))
for r in stub.Sessions(reqs()):
    if r.tag.startswith("r"):
        print("reset", flush=True)
"""


def test_dead_and_frozen_stream_clients_free_everything():
    """SIGKILL (socket closed) and SIGSTOP (socket open, peer silent: keepalive must notice) mid-stream:
    both streams end server-side, and the sessions they opened close with them."""
    srv = ServerProc(args=["--keepalive-s", "1", "--keepalive-timeout-s", "1", "--session-ttl-s", "3", "--sandbox-workers", "1"]).start()
    procs = []
    try:
        for sig in (signal.SIGKILL, signal.SIGSTOP):
            p = subprocess.Popen([sys.executable, "-c", STREAM_CLIENT, srv.address], stdout=subprocess.PIPE, text=True)
            procs.append(p)
            for _ in range(3):
                assert p.stdout.readline().strip() == "reset"  # three sessions open, stream busy
            assert srv.fresh_stats()["rpc"]["streams"] == 1
            p.send_signal(sig)
            deadline = time.monotonic() + 20
            while srv.fresh_stats()["rpc"]["streams"] and time.monotonic() < deadline:
                time.sleep(0.2)
            assert srv.fresh_stats()["rpc"]["streams"] == 0, f"stream of a {sig.name}ed client still open"
        deadline = time.monotonic() + 20
        while srv.fresh_stats()["sessions_open"] and time.monotonic() < deadline:
            time.sleep(0.3)
        st = srv.fresh_stats()
        assert st["sessions_open"] == 0 and st["sessions_closed_stream_end"] == 6 and st["sandbox"]["sessions"] == 0, st
        assert st["rpc"]["inflight"] == 0
    finally:
        for p in procs:
            p.kill()
            p.wait()
        srv.stop()
