"""Raw protobuf wire bytes against every RPC: what no well-behaved client library would send.

Around a valid serialized request: a string field holding invalid UTF-8 (the bytes a ``bytes``
field of the same number would carry — e.g. a model output cut mid-character), unknown field
numbers of every wire type, known numbers with the wrong wire type, truncation, length prefixes
past the end, start-groups never closed, overlong varints, and plain random bytes.

A message protobuf cannot decode must be INVALID_ARGUMENT with a message that names the request
type and the likely cause (the server's Guard, not gRPC's bare "Exception deserializing
request!"); one it can decode is an ordinary request and gets an ordinary status. The server
answers every case, never with INTERNAL/UNKNOWN, and keeps serving.
"""

from __future__ import annotations

import time

import grpc
import pytest
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2
from hardening_support import ALLOWED_ERRORS, INVALID_UTF8, check_error, fuzz_settings, malformed_wire, record_cases, wire_field
from hypothesis import given
from hypothesis import strategies as st

from toolgym.v1 import env_pb2, eval_pb2, reward_pb2

OK = grpc.StatusCode.OK
EXAMPLES, PER_EXAMPLE = 40, 25  # 1,000 raw cases per RPC

_score = reward_pb2.ScoreRequest(task_id="simple_python_0", output='<tool_call>{"name": "f", "arguments": {}}</tool_call>', template="hermes")
# (method, request streaming, valid request bytes, numbers of its top-level string fields)
METHODS = [
    ("/toolgym.v1.RewardService/Score", False, _score.SerializeToString(), (1, 2, 3, 4, 6)),
    ("/toolgym.v1.RewardService/ScoreBatch", False, reward_pb2.ScoreBatchRequest(items=[_score]).SerializeToString(), (1,)),
    ("/toolgym.v1.RewardService/ScoreStream", True, _score.SerializeToString(), (1, 2, 3, 4, 6)),
    ("/toolgym.v1.EnvService/ListTasks", False, env_pb2.ListTasksRequest(categories=["simple_python"], limit=2).SerializeToString(), (1, 2)),
    # template "klingon": a Reset that decodes is refused, so the fuzz opens no session
    ("/toolgym.v1.EnvService/Reset", False, env_pb2.ResetRequest(task_id="simple_python_0", template="klingon").SerializeToString(), (1, 3, 5, 8)),
    ("/toolgym.v1.EnvService/Step", False, env_pb2.StepRequest(session_id="nope", action="x").SerializeToString(), (1, 2)),
    ("/toolgym.v1.EnvService/Close", False, env_pb2.CloseRequest(session_id="nope").SerializeToString(), (1,)),
    ("/toolgym.v1.EnvService/Sessions", True,
     env_pb2.SessionRequest(tag="t", step=env_pb2.StepRequest(session_id="nope", action="x")).SerializeToString(), (1,)),
    ("/toolgym.v1.EvalService/Evaluate", False, eval_pb2.EvaluateRequest(options=eval_pb2.EvalOptions(name="n")).SerializeToString(), ()),
    ("/toolgym.v1.EvalService/EvaluateStream", True, eval_pb2.EvaluateStreamRequest(options=eval_pb2.EvalOptions()).SerializeToString(), ()),
    ("/toolgym.v1.EvalService/ScoreItems", True, eval_pb2.ScoreItemsRequest(options=eval_pb2.EvalOptions()).SerializeToString(), ()),
    ("/grpc.health.v1.Health/Check", False, health_pb2.HealthCheckRequest(service="").SerializeToString(), (1,)),
    ("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", True,
     reflection_pb2.ServerReflectionRequest(list_services="").SerializeToString(), (1, 3, 4, 7)),
]
STREAM_RESPONSE = {"/toolgym.v1.RewardService/ScoreStream", "/toolgym.v1.EnvService/Sessions", "/toolgym.v1.EvalService/ScoreItems",
                   "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"}


@pytest.fixture(scope="module")
def channel(fuzz_server):
    ch = grpc.insecure_channel(fuzz_server.address)
    yield ch
    ch.close()
    assert fuzz_server.alive(), fuzz_server.log()[-3000:]


def _callable(channel: grpc.Channel, method: str, streaming: bool):
    if streaming:
        return (channel.stream_stream if method in STREAM_RESPONSE else channel.stream_unary)(method)
    return channel.unary_unary(method)  # raw bytes in, raw bytes out: no (de)serializer


def _check(e: grpc.RpcError, method: str) -> None:
    if method == "/grpc.health.v1.Health/Check" and e.code() == grpc.StatusCode.NOT_FOUND:
        return  # the standard health protocol's "unknown service" carries no text (grpcio-health-checking)
    code = check_error(e, ALLOWED_ERRORS)
    if code is grpc.StatusCode.INVALID_ARGUMENT and "could not decode" in e.details():
        assert method in e.details()  # names the RPC whose request it could not read


@pytest.mark.parametrize("method,streaming,valid,strings", METHODS, ids=[m[0].rsplit("/", 2)[-2].split(".")[-1] + "." + m[0].rsplit("/", 1)[1] for m in METHODS])
def test_fuzz_raw_wire(channel, method, streaming, valid, strings):
    call = _callable(channel, method, streaming)
    done = [0, 0.0]

    @fuzz_settings(EXAMPLES)
    @given(st.lists(malformed_wire(valid, strings), min_size=PER_EXAMPLE, max_size=PER_EXAMPLE))
    def run(cases: list[bytes]) -> None:
        t = time.perf_counter()
        if streaming:
            for i in range(0, len(cases), 5):  # five messages per stream: the bad one may come after good ones
                try:
                    out = call(iter(cases[i:i + 5]), timeout=60)
                    if method in STREAM_RESPONSE:
                        list(out)
                except grpc.RpcError as e:
                    _check(e, method)
        else:
            for fut in [call.future(c, timeout=60) for c in cases]:
                try:
                    fut.result()
                except grpc.RpcError as e:
                    _check(e, method)
        done[0] += len(cases)
        done[1] += time.perf_counter() - t

    run()
    record_cases(method.lstrip("/").replace("toolgym.v1.", "").replace("grpc.", "") + " (raw wire)", done[0], done[1])


@pytest.mark.parametrize("bad", INVALID_UTF8)
def test_invalid_utf8_model_output_is_invalid_argument(channel, bad):
    """A model output that is not UTF-8 (bytes sent where protobuf wants a string): INVALID_ARGUMENT, actionable."""
    raw = wire_field(1, 2, b"simple_python_0") + wire_field(3, 2, b"<tool_call>" + bad + b"</tool_call>")
    with pytest.raises(grpc.RpcError) as e:
        channel.unary_unary("/toolgym.v1.RewardService/Score")(raw, timeout=30)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "UTF-8" in e.value.details() and "errors='replace'" in e.value.details() and "ScoreRequest" in e.value.details()
    step = wire_field(1, 2, b"some-session") + wire_field(2, 2, bad)
    with pytest.raises(grpc.RpcError) as e:
        channel.unary_unary("/toolgym.v1.EnvService/Step")(step, timeout=30)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "StepRequest" in e.value.details()
    # ...and the very next well-formed request is served.
    ok = channel.unary_unary("/toolgym.v1.RewardService/Score")(_score.SerializeToString(), timeout=30)
    assert reward_pb2.ScoreResponse.FromString(ok).result.valid
