"""Two replicas on loopback behind gRPC's client-side ``round_robin``; sessions pinned to their replica.

Pinning: each replica has a ``replica_id``; session ids are ``"<replica>.<hex>"`` and Reset's info
names the replica's address. Stateless calls and Resets go round-robin over a channel to both;
ToolgymClient sends each session's Step/Close on a channel to the replica that holds it. A Step
that reaches the wrong replica (a client that does not pin) is NOT_FOUND naming the right one.
"""

from __future__ import annotations

import collections

import grpc
import pytest

from toolgym.env.client import ToolgymClient
from toolgym.env.server.app import ServerConfig, start_server
from toolgym.v1 import env_pb2, env_pb2_grpc


@pytest.fixture(scope="module")
def replicas(suite):
    rs = [start_server(ServerConfig(port=0, replica_id=f"r{i}", sandbox_workers=1), suite=suite) for i in (1, 2)]
    yield rs
    for r in rs:
        r.stop(0)


def _target(replicas) -> str:
    return "ipv4:" + ",".join(r.address for r in replicas)


def test_round_robin_spreads_sessions_and_pins_their_steps(replicas):
    with ToolgymClient(_target(replicas), timeout=60) as c:
        c.wait_ready()
        sessions = [c.reset(f"multi_turn_base_{i}", template="hermes", max_steps=10) for i in range(12)]
        by_replica = collections.Counter(s.session_id.split(".", 1)[0] for s in sessions)
        assert set(by_replica) == {"r1", "r2"}, by_replica  # round_robin used both
        assert [len(r.env.sessions) for r in replicas] == [by_replica["r1"], by_replica["r2"]]
        for s in sessions:
            assert s.info["replica"]["address"] in {r.address for r in replicas}
            for i, action in enumerate(['<tool_call>{"name": "ls", "arguments": {}}</tool_call>',
                                        '<tool_call>{"name": "pwd", "arguments": {}}</tool_call>', "Done."]):
                out = c.step(s.session_id, action, step_index=i)  # every step reaches the session's replica
                assert out.step_index == i
        for s in sessions:
            assert c.close_session(s.session_id)
        assert c.score("x", task_id="simple_python_0").valid  # stateless calls go round-robin too
    assert [len(r.env.sessions) for r in replicas] == [0, 0]


def test_a_step_on_the_wrong_replica_is_not_found_and_says_where(replicas):
    with ToolgymClient(replicas[0].address, timeout=30) as one:
        sid = one.reset("simple_python_0").session_id
    with grpc.insecure_channel(replicas[1].address) as ch:
        with pytest.raises(grpc.RpcError) as e:
            env_pb2_grpc.EnvServiceStub(ch).Step(env_pb2.StepRequest(session_id=sid, action="x"), timeout=30)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert "replica 'r1'" in e.value.details() and "replica 'r2'" in e.value.details()
    with ToolgymClient(replicas[0].address, timeout=30) as one:
        assert one.close_session(sid)


def test_a_sessions_stream_is_pinned_by_construction(replicas):
    with ToolgymClient(_target(replicas), timeout=60) as c:
        resets = [env_pb2.SessionRequest(tag=f"r{i}", reset=env_pb2.ResetRequest(task_id="irrelevance_1")) for i in range(6)]
        for _ in range(2):  # two streams: each lives on one replica with all of its sessions
            out = {r.tag: r for r in c.sessions_stream(resets, timeout=60)}
            assert len({r.reset.session_id.split(".", 1)[0] for r in out.values()}) == 1
            closes = [env_pb2.SessionRequest(tag=f"c{i}", close=env_pb2.CloseRequest(session_id=out[f"r{i}"].reset.session_id)) for i in range(6)]
            # the client learned each session's replica from the stream's Reset replies: Close is pinned,
            # and reaches a replica that already closed them when their stream ended
            for req in closes:
                with pytest.raises(grpc.RpcError) as e:
                    c.close_session(req.close.session_id)
                assert e.value.code() == grpc.StatusCode.NOT_FOUND and "another replica" not in e.value.details()
