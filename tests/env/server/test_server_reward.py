"""RewardService over a real gRPC server on loopback: results, status codes, health, reflection."""

from __future__ import annotations

import json

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from toolgym.env.client import ScoreItemError, ToolgymClient
from toolgym.env.reward.engine import score_output
from toolgym.env.server.app import ServerConfig, start_server
from toolgym.env.server.convert import canonical
from toolgym.env.tasks.suite import load_suite
from toolgym.v1 import reward_pb2, reward_pb2_grpc


@pytest.fixture(scope="module")
def suite():
    return load_suite("bfcl")


@pytest.fixture(scope="module")
def server(suite):
    srv = start_server(ServerConfig(port=0, enable_env=False, max_output_chars=10_000, max_batch_items=50), suite=suite)
    yield srv
    srv.stop(0)


@pytest.fixture()
def client(server):
    with ToolgymClient(server.address, timeout=10) as c:
        yield c


def _gt_output(task) -> str:
    calls = []
    for gt in task.ground_truth:
        name, params = next(iter(gt.items()))
        args = {k: v[0] for k, v in params.items() if v and v[0] != ""}
        calls.append({"name": name, "arguments": args})
    return "".join(f"<tool_call>{json.dumps(c)}</tool_call>" for c in calls)


def test_score_matches_in_process_engine(client, suite):
    for task in list(suite.filter(categories=["simple_python", "parallel", "live_multiple"]))[:30]:
        out = _gt_output(task)
        remote = client.score(out, task_id=task.id, template="hermes")
        local = canonical(score_output(task, out, "hermes"))
        assert remote == local
        assert remote.components["task_completion"] == 1.0, remote.feedback


def test_score_batch_equals_score_per_item(client, suite):
    tasks = list(suite.filter(categories=["multiple"]))[:20]
    items = [{"task_id": t.id, "output": _gt_output(t) if i % 2 else "no call", "template": "hermes"} for i, t in enumerate(tasks)]
    batch = client.score_batch(items)
    single = [client.score(**it) for it in items]
    assert batch == single


def test_inline_task(client):
    task = {"id": "inline-1", "category": "simple", "question": [[{"role": "user", "content": "hi"}]],
            "function": [{"name": "f", "description": "", "parameters": {"type": "dict", "properties": {"x": {"type": "integer"}}, "required": ["x"]}}],
            "ground_truth": [{"f": {"x": [1]}}]}
    r = client.score('<tool_call>{"name": "f", "arguments": {"x": 1}}</tool_call>', task=task, template="hermes")
    assert r.valid and r.components["task_completion"] == 1.0


def test_unknown_task_is_not_found_with_hint(client):
    with pytest.raises(grpc.RpcError) as e:
        client.score("x", task_id="simple_python_99999")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert "simple_python_99999" in e.value.details()


def test_malformed_requests_are_invalid_argument(client):
    for kwargs, needle in [
        ({"output": "x"}, "task_id"),
        ({"output": "x", "task_id": "simple_python_0", "template": "klingon"}, "template"),
        ({"output": "x", "task": "{not json"}, "JSON"),
        ({"output": "x", "task_id": "simple_python_0", "reward_config": {"weights": {"luck": 1.0}}}, "luck"),
    ]:
        with pytest.raises(grpc.RpcError) as e:
            client.score(**kwargs)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, kwargs
        assert needle in e.value.details()


def test_oversized_is_resource_exhausted(client):
    with pytest.raises(grpc.RpcError) as e:
        client.score("x" * 10_001, task_id="simple_python_0")
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "--max-output-chars" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        client.score_batch([{"task_id": "simple_python_0", "output": "x"}] * 51)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_multi_turn_offline_is_failed_precondition(client):
    with pytest.raises(grpc.RpcError) as e:
        client.score("x", task_id="multi_turn_base_0")
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_batch_item_errors_do_not_sink_the_batch(client):
    res = client.score_batch([{"task_id": "simple_python_0", "output": "x"}, {"task_id": "nope", "output": "x"}], raise_on_error=False)
    assert not isinstance(res[0], ScoreItemError)
    assert isinstance(res[1], ScoreItemError) and res[1].code == grpc.StatusCode.NOT_FOUND


def test_stream_equals_batch(client, suite):
    tasks = list(suite.filter(categories=["parallel_multiple"]))[:10]
    items = [{"task_id": t.id, "output": _gt_output(t)} for t in tasks]
    assert list(client.score_stream(items)) == client.score_batch(items)


def test_deadline_is_enforced(server):
    import time

    def slow_items():
        yield {"task_id": "simple_python_0", "output": "x"}
        time.sleep(1.5)  # the client stalls: the call's deadline must fire, not hang
        yield {"task_id": "simple_python_0", "output": "x"}

    with ToolgymClient(server.address, timeout=0.5) as c:
        with pytest.raises(grpc.RpcError) as e:
            list(c.score_stream(slow_items()))
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_health_serving(client):
    assert client.health() == "SERVING"
    assert client.health("toolgym.v1.RewardService") == "SERVING"


def test_reflection_lists_services_and_describes_score(server):
    with grpc.insecure_channel(server.address) as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        resp = next(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
        names = {s.name for s in resp.list_services_response.service}
        assert {"toolgym.v1.RewardService", "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= names
        resp = next(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(file_containing_symbol="toolgym.v1.RewardService")])))
        assert resp.file_descriptor_response.file_descriptor_proto


def test_reflection_v1_is_served_too(server):
    """grpcurl and current Node tools ask grpc.reflection.v1 first; v1's own message types (from the
    descriptor the server registers, not v1alpha's classes) round-trip on the v1 method."""
    from google.protobuf import descriptor_pool, message_factory

    pool = descriptor_pool.Default()
    req_cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("grpc.reflection.v1.ServerReflectionRequest"))
    resp_cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("grpc.reflection.v1.ServerReflectionResponse"))
    with grpc.insecure_channel(server.address) as ch:
        call = ch.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                                request_serializer=req_cls.SerializeToString, response_deserializer=resp_cls.FromString)
        reqs = [req_cls(list_services=""), req_cls(file_containing_symbol="toolgym.v1.RewardService"),
                req_cls(file_containing_symbol="grpc.reflection.v1.ServerReflection"), req_cls(file_containing_symbol="no.such.Symbol")]
        listed, described, v1_file, missing = list(call(iter(reqs), timeout=10))
    names = {s.name for s in listed.list_services_response.service}
    assert {"toolgym.v1.RewardService", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"} <= names
    assert described.file_descriptor_response.file_descriptor_proto and v1_file.file_descriptor_response.file_descriptor_proto
    assert missing.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]


def test_health_list_matches_the_shipped_health_proto(server):
    """protos/grpc/health/v1/health.proto declares List; a client generated from it gets answers."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(server.address) as ch:
        resp = health_pb2_grpc.HealthStub(ch).List(health_pb2.HealthListRequest(), timeout=10)
    assert resp.statuses["toolgym.v1.RewardService"].status == health_pb2.HealthCheckResponse.SERVING
    assert resp.statuses[""].status == health_pb2.HealthCheckResponse.SERVING


def test_raw_stub_without_toolgym_client(server):
    # What a client in another language sees: just the proto.
    with grpc.insecure_channel(server.address) as ch:
        r = reward_pb2_grpc.RewardServiceStub(ch).Score(reward_pb2.ScoreRequest(task_id="irrelevance_0", output="I can't."), timeout=5)
        assert r.result.valid and r.result.components["task_completion"] == 1.0


def test_third_party_reflection_client_calls_score(server):
    # grpc_requests knows nothing of toolgym: it discovers the services through reflection alone.
    import grpc_requests
    client = grpc_requests.Client.get_by_endpoint(server.address)
    assert "toolgym.v1.RewardService" in client.service_names
    reply = client.request("toolgym.v1.RewardService", "Score", {"task_id": "irrelevance_0", "output": "No tool fits."})
    assert reply["result"]["valid"] is True
    assert reply["result"]["components"]["task_completion"] == 1.0
    health = client.request("grpc.health.v1.Health", "Check", {"service": ""})
    assert health["status"] == "SERVING"
