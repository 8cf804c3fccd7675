"""EnvService over real gRPC: sessions, status codes, idle expiry, caps, idempotent steps, streams."""

from __future__ import annotations

import json
import time

import grpc
import pytest

from toolgym.env.client import ToolgymClient
from toolgym.env.server.app import ServerConfig, start_server
from toolgym.v1 import env_pb2


@pytest.fixture()
def client(env_server):
    with ToolgymClient(env_server.address, timeout=30) as c:
        yield c


def test_list_tasks_filters_and_pages(client):
    got = client.list_tasks(categories=["simple_python"], limit=5, offset=10)
    assert len(got) == 5 and all(t.category == "simple_python" and t.kind == "ast" for t in got)
    mt = client.list_tasks(kinds=["multi_turn"], limit=3)
    assert all(t.num_turns > 1 for t in mt)


def test_reset_step_close_roundtrip(client):
    r = client.reset("multi_turn_base_0", template="hermes")
    assert r.info["task_id"] == "multi_turn_base_0" and r.info["tools"]
    assert any(t["name"] in r.observation for t in r.info["tools"])
    s = client.step(r.session_id, '<tool_call>{"name": "ls", "arguments": {}}</tool_call>', step_index=0)
    assert not s.terminated and "ls" in json.dumps(s.info) and s.observation
    assert client.close_session(r.session_id)
    with pytest.raises(grpc.RpcError) as e:
        client.step(r.session_id, "x")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND and "Reset" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        client.close_session(r.session_id)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_step_retry_is_idempotent(client):
    r = client.reset("multi_turn_base_0", template="hermes")
    a = client.step(r.session_id, '<tool_call>{"name": "mkdir", "arguments": {"dir_name": "x"}}</tool_call>', step_index=0)
    again = client.step(r.session_id, '<tool_call>{"name": "mkdir", "arguments": {"dir_name": "x"}}</tool_call>', step_index=0)
    assert again == a  # the recorded reply: mkdir did not run twice (a second run would error)
    with pytest.raises(grpc.RpcError) as e:
        client.step(r.session_id, "x", step_index=5)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "send 1" in e.value.details()
    client.close_session(r.session_id)


def test_step_after_episode_end_is_failed_precondition(client):
    r = client.reset("irrelevance_0")
    s = client.step(r.session_id, "No tool fits.")
    assert s.terminated and s.score is not None and s.score.valid
    with pytest.raises(grpc.RpcError) as e:
        client.step(r.session_id, "again")
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_reset_errors(client):
    cases = [({"task_id": "nope_1"}, grpc.StatusCode.NOT_FOUND),
             ({"categories": ["no_such_category"]}, grpc.StatusCode.NOT_FOUND),
             ({"task_id": "simple_python_0", "template": "klingon"}, grpc.StatusCode.INVALID_ARGUMENT),
             ({"task_id": "simple_python_0", "reward_config": {"penalties": {"timeout": 3}}}, grpc.StatusCode.INVALID_ARGUMENT),
             ({"task_id": "simple_python_0", "max_steps": -1}, grpc.StatusCode.INVALID_ARGUMENT),
             ({"task_id": "simple_python_0", "max_steps": 2**31 - 1}, grpc.StatusCode.INVALID_ARGUMENT)]
    for kw, code in cases:
        with pytest.raises(grpc.RpcError) as e:
            client.reset(**kw)
        assert e.value.code() == code, kw
    assert "--max-steps-limit" in e.value.details() and "1000" in e.value.details()  # says how to fix it
    r = client.reset(task_id="simple_python_0", max_steps=1000)  # the limit itself is accepted
    assert client.close_session(r.session_id)


def test_session_cap_and_idle_ttl(bfcl_suite):
    srv = start_server(ServerConfig(port=0, max_sessions=3, session_ttl_s=0.5), suite=bfcl_suite)
    try:
        with ToolgymClient(srv.address, timeout=10) as c:
            ids = [c.reset("simple_python_0").session_id for _ in range(3)]
            with pytest.raises(grpc.RpcError) as e:
                c.reset("simple_python_0")
            assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "--max-sessions" in e.value.details()
            time.sleep(2.0)  # > ttl (0.5 s) + reaper period: every idle session is gone
            for sid in ids:
                with pytest.raises(grpc.RpcError) as e:
                    c.step(sid, "x")
                assert e.value.code() == grpc.StatusCode.NOT_FOUND and "expired" in e.value.details()
            c.reset("simple_python_0")  # capacity is back after expiry
    finally:
        srv.stop(0)


def test_bidi_stream_multiplexes_sessions(client):
    import queue

    q: queue.Queue = queue.Queue()
    for i in range(8):
        q.put(env_pb2.SessionRequest(tag=f"r{i}", reset=env_pb2.ResetRequest(task_id="irrelevance_1")))
    out = {}
    # Sessions reset on a stream live as long as the stream: step them on the same one.
    for r in client.sessions_stream(iter(q.get, None), timeout=30):
        out[r.tag] = r
        if r.tag.startswith("r"):
            q.put(env_pb2.SessionRequest(tag="s" + r.tag[1:], step=env_pb2.StepRequest(session_id=r.reset.session_id, action="No tool fits.")))
            if sum(t.startswith("r") for t in out) == 8:
                q.put(env_pb2.SessionRequest(tag="bad", step=env_pb2.StepRequest(session_id="missing", action="x")))
        if len(out) == 17:
            q.put(None)
    assert all(out[f"s{i}"].step.terminated and out[f"s{i}"].step.score.valid for i in range(8))
    assert out["bad"].error.code == grpc.StatusCode.NOT_FOUND.value[0]


def test_tool_specs_keep_their_declared_parameter_order(env_server, bfcl_suite):
    """info_json's tool specs list parameters as the task declares them (not sorted): positional
    calls map by that order, and a client in another language reads it off the JSON text."""
    from toolgym.v1 import env_pb2_grpc

    declared = {t.name: list((t.parameters or {}).get("properties") or {}) for t in bfcl_suite.get("multi_turn_base_0").tools}
    assert any(names != sorted(names) for names in declared.values())  # the task has an unsorted one to check
    with grpc.insecure_channel(env_server.address) as ch:
        stub = env_pb2_grpc.EnvServiceStub(ch)
        r = stub.Reset(env_pb2.ResetRequest(task_id="multi_turn_base_0", template="hermes"), timeout=30)
        got = {t["name"]: list(t["parameters"]["properties"]) for t in json.loads(r.info_json)["tools"]}
        # A retried step (the recorded reply) is identical byte for byte.
        a = stub.Step(env_pb2.StepRequest(session_id=r.session_id, action="[ls()]", step_index=0), timeout=30)
        b = stub.Step(env_pb2.StepRequest(session_id=r.session_id, action="[ls()]", step_index=0), timeout=30)
        stub.Close(env_pb2.CloseRequest(session_id=r.session_id), timeout=30)
    assert got == {k: v for k, v in declared.items() if k in got} and got
    assert a.info_json == b.info_json
