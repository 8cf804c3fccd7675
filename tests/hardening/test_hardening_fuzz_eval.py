"""Fuzzing EvalService (Evaluate, EvaluateStream, ScoreItems), health checking and reflection.

KAgentBench records start from the schema fixtures of tests/evals and get fields replaced by
corpus values of the wrong type (a list where an object belongs, numbers for text, deep JSON,
hostile strings), predictions in and out of the ``{template: text}`` shape, and JSON that does
not parse. A record may be refused (INVALID_ARGUMENT, naming what is wrong) or scored (finite
scores on 0–100, a strict-JSON report); the server must never answer UNKNOWN/INTERNAL or hang.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from hardening_support import ALLOWED_ERRORS, check_error, fuzz_settings, record_cases, strict_json
from hypothesis import given
from hypothesis import strategies as st

from toolgym.v1 import eval_pb2, eval_pb2_grpc

FIXTURES = Path(__file__).parents[1] / "evals" / "fixtures"
FUZZ = fuzz_settings(200)
OK = grpc.StatusCode.OK
TEMPLATE_NAMES = ["ReACT", "AutoGPT", "ToolLlama", "ModelScope", "KuaiAgent"]


@pytest.fixture(scope="module")
def channel(fuzz_server):
    ch = grpc.insecure_channel(fuzz_server.address, options=[("grpc.max_send_message_length", 8 << 20)])
    yield ch
    ch.close()
    assert fuzz_server.alive(), fuzz_server.log()[-3000:]


@pytest.fixture(scope="module")
def kagent():
    items = [json.loads(line) for line in (FIXTURES / "kagent_items.jsonl").read_text().splitlines() if line.strip()]
    preds = {d["id"]: d["model_predict"] for d in map(json.loads, (FIXTURES / "kagent_preds.jsonl").read_text().splitlines()) if d}
    return items, preds


def _values(corpus):
    return st.one_of(st.sampled_from(corpus.json_docs[:400]).map(json.loads), st.sampled_from(corpus.texts),
                     st.sampled_from([None, 0, -1, 1e308, [], {}, [[]], {"a": None}]))


@st.composite
def records(draw, corpus, kagent):
    items, preds = kagent
    item = dict(draw(st.sampled_from(items)))
    mp = preds.get(item["id"])
    for _ in range(draw(st.integers(0, 3))):  # break fields: wrong types, missing keys, nested junk
        key = draw(st.sampled_from(sorted(item) + ["type", "golden_result_list", "funcs", "extra"]))
        if draw(st.integers(0, 4)) == 0:
            item.pop(key, None)
        else:
            item[key] = draw(_values(corpus))
    if draw(st.integers(0, 5)) == 0:
        item["type"] = draw(st.sampled_from(["plantooluse", "reflextion", "conclusion", "profile", "unknown", ""]))
    mode = draw(st.integers(0, 6))
    if mode == 0:
        mp = draw(_values(corpus))
    elif mode == 1 and isinstance(mp, dict):
        mp = {**mp, draw(st.sampled_from(TEMPLATE_NAMES)): draw(st.sampled_from(corpus.outputs))}
    elif mode == 2:
        mp = {draw(st.sampled_from(TEMPLATE_NAMES + ["Nope"])): draw(_values(corpus))}
    item_json = json.dumps(item, ensure_ascii=False)
    pred_json = json.dumps(mp, ensure_ascii=False)
    if draw(st.integers(0, 9)) == 0:  # not JSON at all, not an object, or nested past the recursion limit
        item_json = draw(st.sampled_from(corpus.texts + ["[1, 2]", '{"no_id": 1}', "[" * 500, "[" * 3000]))
    if draw(st.integers(0, 9)) == 0:
        pred_json = draw(st.sampled_from(corpus.texts + ["{", "[" * 500, "[" * 3000]))
    return eval_pb2.KAgentRecord(item_json=item_json, model_predict_json=pred_json, has_prediction=draw(st.booleans()))


def options(draw) -> eval_pb2.EvalOptions:
    # BLEU is the slow part of scoring; it runs on a share of the cases.
    return eval_pb2.EvalOptions(strict=draw(st.booleans()), skip_bleu=draw(st.integers(0, 4)) != 0,
                                include_items=draw(st.booleans()), name=draw(st.sampled_from(["", "run", "\u202e"])))


def check_result(res: eval_pb2.KAgentResult) -> None:
    for f in ("planning", "tool_use", "reflection", "concluding", "profile", "overall", "bleu_concluding", "bleu_profile"):
        if res.scores.HasField(f):
            v = getattr(res.scores, f)
            assert math.isfinite(v) and -1e-9 <= v <= 100 + 1e-9, (f, v)
    assert isinstance(strict_json(res.report_json), dict)


@FUZZ
@given(data=st.data())
def test_fuzz_evaluate(channel, corpus, kagent, data):
    stub = eval_pb2_grpc.EvalServiceStub(channel)
    reqs = [eval_pb2.EvaluateRequest(options=options(data.draw), records=[data.draw(records(corpus, kagent)) for _ in range(data.draw(st.integers(0, 2)))])
            for _ in range(50)]
    t = time.perf_counter()
    for fut in [stub.Evaluate.future(r, timeout=120) for r in reqs]:
        try:
            check_result(fut.result().result)
        except grpc.RpcError as e:
            check_error(e, {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED})
    record_cases("EvalService/Evaluate", len(reqs), time.perf_counter() - t)


@FUZZ
@given(data=st.data())
def test_fuzz_evaluate_stream(channel, corpus, kagent, data):
    stub = eval_pb2_grpc.EvalServiceStub(channel)
    msgs = []
    for _ in range(50):
        k = data.draw(st.integers(0, 9))
        msgs.append(eval_pb2.EvaluateStreamRequest(options=options(data.draw)) if k == 0 else
                    eval_pb2.EvaluateStreamRequest() if k == 1 else eval_pb2.EvaluateStreamRequest(record=data.draw(records(corpus, kagent))))
    t = time.perf_counter()
    try:
        check_result(stub.EvaluateStream(iter(msgs), timeout=120).result)
    except grpc.RpcError as e:
        check_error(e, {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED})
    record_cases("EvalService/EvaluateStream", len(msgs), time.perf_counter() - t)


@FUZZ
@given(data=st.data())
def test_fuzz_score_items(channel, corpus, kagent, data):
    stub = eval_pb2_grpc.EvalServiceStub(channel)
    msgs = [eval_pb2.ScoreItemsRequest(options=options(data.draw))] + [
        eval_pb2.ScoreItemsRequest(record=data.draw(records(corpus, kagent))) for _ in range(49)]
    t = time.perf_counter()
    got = 0
    try:
        for r in stub.ScoreItems(iter(msgs), timeout=120):
            got += 1
            if r.HasField("item"):
                assert all(math.isfinite(v) for v in r.item.scores.values()), r.item
            else:
                check_result(r.result)
    except grpc.RpcError as e:
        check_error(e, {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED})
    else:
        assert got == len(msgs)  # one score per record, then the report
    record_cases("EvalService/ScoreItems", len(msgs), time.perf_counter() - t)


# ---------------------------------------------------------------------------- health and reflection
SERVICES = ["", "toolgym.v1.RewardService", "toolgym.v1.EnvService", "toolgym.v1.EvalService", "grpc.health.v1.Health"]


@FUZZ
@given(data=st.data())
def test_fuzz_health_check(channel, corpus, data):
    stub = health_pb2_grpc.HealthStub(channel)
    names = [data.draw(st.one_of(st.sampled_from(SERVICES), st.sampled_from(corpus.texts))) for _ in range(50)]
    t = time.perf_counter()
    for name, fut in [(n, stub.Check.future(health_pb2.HealthCheckRequest(service=n), timeout=30)) for n in names]:
        try:
            assert fut.result().status == health_pb2.HealthCheckResponse.SERVING and name in SERVICES[:4]
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND and name not in SERVICES[:4], (name, e.code())
    record_cases("Health/Check", len(names), time.perf_counter() - t)


def test_fuzz_health_watch(channel, corpus):
    """Watch streams never end on their own: each case reads the first status and cancels."""
    stub = health_pb2_grpc.HealthStub(channel)
    t = time.perf_counter()
    names = (SERVICES + corpus.texts[:45]) * 200  # 10,000 watches
    for name in names:
        call = stub.Watch(health_pb2.HealthCheckRequest(service=name), timeout=30)
        first = next(call)
        want = health_pb2.HealthCheckResponse.SERVING if name in SERVICES[:4] else health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
        assert first.status == want, (name, first)
        call.cancel()
    record_cases("Health/Watch", len(names), time.perf_counter() - t)


@FUZZ
@given(data=st.data())
def test_fuzz_reflection(channel, corpus, data):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    text = st.one_of(st.sampled_from(corpus.texts), st.sampled_from(["toolgym/v1/reward.proto", "toolgym.v1.RewardService", "grpc.health.v1.Health"]))
    msgs = []
    for _ in range(50):
        k = data.draw(st.integers(0, 5))
        msgs.append(reflection_pb2.ServerReflectionRequest(host=data.draw(st.sampled_from(corpus.texts)), **(
            {"list_services": data.draw(text)} if k == 0 else {"file_by_filename": data.draw(text)} if k == 1 else
            {"file_containing_symbol": data.draw(text)} if k == 2 else
            {"file_containing_extension": reflection_pb2.ExtensionRequest(containing_type=data.draw(text), extension_number=data.draw(st.integers(-(2**31), 2**31 - 1)))}
            if k == 3 else {"all_extension_numbers_of_type": data.draw(text)} if k == 4 else {})))
    t = time.perf_counter()
    replies = list(stub.ServerReflectionInfo(iter(msgs), timeout=60))
    assert len(replies) == len(msgs)
    for r in replies:
        if r.HasField("error_response"):
            assert r.error_response.error_code in (grpc.StatusCode.NOT_FOUND.value[0], grpc.StatusCode.INVALID_ARGUMENT.value[0],
                                                   grpc.StatusCode.UNIMPLEMENTED.value[0]), r.error_response
    record_cases("Reflection/ServerReflectionInfo", len(msgs), time.perf_counter() - t)


def test_eval_errors_name_the_problem(channel):
    stub = eval_pb2_grpc.EvalServiceStub(channel)
    for rec, needle in [(eval_pb2.KAgentRecord(item_json="{"), "item_json"), (eval_pb2.KAgentRecord(item_json="[1]"), "id"),
                        (eval_pb2.KAgentRecord(item_json='{"id": 1}', model_predict_json="{", has_prediction=True), "model_predict_json")]:
        with pytest.raises(grpc.RpcError) as e:
            stub.Evaluate(eval_pb2.EvaluateRequest(records=[rec]), timeout=30)
        assert e.value.code() in ALLOWED_ERRORS and needle in e.value.details()


def test_eval_wrong_typed_lists_are_invalid_argument(channel, kagent):
    items, preds = kagent
    by_id = {it["id"]: it for it in items}
    cases = [("en-plan-hand", "golden_result_list"), ("zh-conclusion-hand", "golden_result_list"), ("zh-plan-weather", "funcs")]
    stub = eval_pb2_grpc.EvalServiceStub(channel)
    for iid, field in cases:
        item = {**by_id[iid], field: 1.5}
        rec = eval_pb2.KAgentRecord(item_json=json.dumps(item), model_predict_json=json.dumps(preds.get(iid, {})), has_prediction=True)
        with pytest.raises(grpc.RpcError) as e:
            stub.Evaluate(eval_pb2.EvaluateRequest(records=[rec]), timeout=30)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field in e.value.details(), (iid, e.value.code(), e.value.details())


@pytest.mark.parametrize("field", ["item_json", "model_predict_json"])
def test_eval_too_deep_json_is_invalid_argument(channel, field):
    rec = eval_pb2.KAgentRecord(item_json='{"id": "x", "type": "profile"}', model_predict_json='"p"', has_prediction=True)
    setattr(rec, field, "[" * 100_000)
    with pytest.raises(grpc.RpcError) as e:
        eval_pb2_grpc.EvalServiceStub(channel).Evaluate(eval_pb2.EvaluateRequest(records=[rec]), timeout=30)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field in e.value.details(), e.value.details()
