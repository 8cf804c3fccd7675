"""Protocol edges on a real `toolgym serve` on loopback under --max-sessions: streams free their
sessions when they end, contradictory or negative requests are INVALID_ARGUMENT, unknown ids
name the nearest ones, and sessions belong to the client that reset them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import pytest

from toolgym.env.client import ToolgymClient
from toolgym.v1 import env_pb2, env_pb2_grpc

MAX_SESSIONS = 4
ALICE, BOB = "alice-token-0123456789abcdef", "bob-token-0123456789abcdef01"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    d = Path(tempfile.mkdtemp(prefix="toolgym-edges-"))
    (d / "tokens").write_text(f"alice {ALICE}\nbob {BOB}\n")
    port = _free_port()
    log = open(d / "server.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "toolgym.env.cli.main", "serve", "--port", str(port), "--max-sessions", str(MAX_SESSIONS),
                             "--sandbox-workers", "1", "--auth-token-file", str(d / "tokens")], stdout=log, stderr=subprocess.STDOUT)
    addr = f"127.0.0.1:{port}"
    try:
        with ToolgymClient(addr, timeout=5, token=ALICE) as c:
            deadline = time.monotonic() + 120
            while True:
                assert proc.poll() is None, (d / "server.log").read_text()[-3000:]
                try:
                    if c.health() == "SERVING":
                        break
                except grpc.RpcError:
                    pass
                assert time.monotonic() < deadline, "server did not reach SERVING"
                time.sleep(0.3)
        yield addr, d / "server.log"
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


DROPPER = r"""
import sys, time, grpc
from toolgym.v1 import env_pb2, env_pb2_grpc
n = int(sys.argv[2])
md = (("authorization", "Bearer " + sys.argv[3]),)
stub = env_pb2_grpc.EnvServiceStub(grpc.insecure_channel(sys.argv[1]))
def reqs():
    for i in range(n):
        yield env_pb2.SessionRequest(tag=f"r{i}", reset=env_pb2.ResetRequest(task_id=f"multi_turn_base_{i}", template="hermes"))
    while True:  # mid-episode: the stream stays open until this process is killed
        time.sleep(3600)
sids = []
for r in stub.Sessions(reqs(), metadata=md):
    assert r.HasField("reset"), r
    sids.append(r.reset.session_id)
    if len(sids) == n:
        s = stub.Step(env_pb2.StepRequest(session_id=sids[0], action='<tool_call>{"name": "ls", "arguments": {}}</tool_call>', step_index=0), metadata=md)
        print("holding", flush=True)
"""


def test_dropped_stream_frees_its_sessions_at_once(server):
    addr, log = server
    p = subprocess.Popen([sys.executable, "-c", DROPPER, addr, str(MAX_SESSIONS), ALICE], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "holding"  # every slot is held by the stream, one episode mid-way
        with ToolgymClient(addr, timeout=10, token=ALICE) as c:
            with pytest.raises(grpc.RpcError) as e:
                c.reset("simple_python_0")
            assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            p.kill()  # the TCP connection drops with the process
            p.wait()
            t0 = time.monotonic()
            opened = []
            while len(opened) < MAX_SESSIONS and time.monotonic() - t0 < 1.0:
                try:
                    opened.append(c.reset("simple_python_0").session_id)
                except grpc.RpcError as err:
                    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                    time.sleep(0.02)
            assert len(opened) == MAX_SESSIONS, f"only {len(opened)} of {MAX_SESSIONS} sessions could be opened within 1 s of the drop"
            for sid in opened:
                assert c.close_session(sid)
    finally:
        p.kill()
    assert "closed 4 open session(s)" in log.read_text()  # the log line that counts them


def test_stream_sessions_close_when_the_stream_finishes(server):
    addr, _ = server
    with ToolgymClient(addr, timeout=30, token=ALICE) as c:
        out = list(c.sessions_stream([env_pb2.SessionRequest(tag="r", reset=env_pb2.ResetRequest(task_id="irrelevance_1"))], timeout=30))
        sid = out[0].reset.session_id
        deadline = time.monotonic() + 5
        while True:  # the close runs as the RPC ends, just after the last reply
            try:
                c.step(sid, "x")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.NOT_FOUND
                break
            assert time.monotonic() < deadline, "the stream's session is still open after the stream ended"


def test_invalid_arguments_say_what_to_fix(server):
    addr, _ = server
    with grpc.insecure_channel(addr) as ch:
        stub = env_pb2_grpc.EnvServiceStub(ch)
        md = (("authorization", f"Bearer {ALICE}"),)
        with pytest.raises(grpc.RpcError) as e:
            stub.Reset(env_pb2.ResetRequest(task_id="simple_python_0", task_json='{"id": "x"}'), metadata=md, timeout=30)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "exactly one" in e.value.details()
        r = stub.Reset(env_pb2.ResetRequest(task_id="multi_turn_base_0"), metadata=md, timeout=30)
        with pytest.raises(grpc.RpcError) as e:
            stub.Step(env_pb2.StepRequest(session_id=r.session_id, action="x", step_index=-1), metadata=md, timeout=30)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "step_index must be >= 0" in e.value.details()
        with pytest.raises(grpc.RpcError) as e:
            stub.Reset(env_pb2.ResetRequest(task_id="simple_pyton_12"), metadata=md, timeout=30)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND and "nearest ids" in e.value.details() and "simple_python_12" in e.value.details()
        stub.Close(env_pb2.CloseRequest(session_id=r.session_id), metadata=md, timeout=30)


def test_sessions_belong_to_their_client(server):
    addr, _ = server
    with ToolgymClient(addr, timeout=30, token=ALICE) as alice, ToolgymClient(addr, timeout=30, token=BOB) as bob:
        sid = alice.reset("multi_turn_base_0").session_id
        for call in (lambda: bob.step(sid, '<tool_call>{"name": "ls", "arguments": {}}</tool_call>', step_index=0),
                     lambda: bob.close_session(sid)):
            with pytest.raises(grpc.RpcError) as e:
                call()
            assert e.value.code() == grpc.StatusCode.NOT_FOUND and "belong to the client" in e.value.details()
        assert not alice.step(sid, '<tool_call>{"name": "ls", "arguments": {}}</tool_call>', step_index=0).terminated
        assert alice.close_session(sid)
