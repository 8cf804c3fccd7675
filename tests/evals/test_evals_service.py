"""EvalService on a real gRPC server (loopback): same numbers as the in-process API and the CLI."""

import json
import subprocess
import sys
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from toolgym.evals.kagentbench import ABILITIES, score
from toolgym.evals.service import EvalClient, add_to_server, records_to_pb
from toolgym.v1 import eval_pb2, eval_pb2_grpc

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def server():
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    add_to_server(srv)
    port = srv.add_insecure_port("127.0.0.1:0")
    srv.start()
    yield f"127.0.0.1:{port}"
    srv.stop(grace=0.5)


def test_unary_stream_and_bidi_equal_api(server, items, preds):
    api = score(items, preds)
    want = {a: getattr(api, a) for a in ABILITIES} | {"overall": api.overall}
    with EvalClient(server) as cl:
        unary = cl.evaluate(items, preds, stream=False, include_items=True)
        streamed = cl.evaluate(items, preds, stream=True)
    for res in (unary, streamed):
        assert {k: res[k] for k in want} == want  # bit-identical doubles
        assert res["counts"]["items"] == len(items)
        assert res["bleu_concluding"] == api.bleu["concluding"]
    assert len(unary["report"]["items"]) == len(items)

    stub = eval_pb2_grpc.EvalServiceStub(grpc.insecure_channel(server))

    def gen():
        yield eval_pb2.ScoreItemsRequest(options=eval_pb2.EvalOptions(skip_bleu=True))
        for r in records_to_pb(items, preds):
            yield eval_pb2.ScoreItemsRequest(record=r)

    replies = list(stub.ScoreItems(gen(), timeout=60))
    per_item = [r.item for r in replies if r.HasField("item")]
    final = [r.result for r in replies if r.HasField("result")]
    assert len(per_item) == len(items) and len(final) == 1
    api_items = {i.id: i.scores for i in api.items}
    for it in per_item:
        for k, v in it.scores.items():
            if k != "bleu":
                assert v == api_items[it.id][k]
    assert final[0].scores.overall == api.overall


def test_strict_and_missing_predictions(server, items, preds):
    p = dict(preds)
    p.pop("zh-conclusion")
    with EvalClient(server) as cl:
        res = cl.evaluate(items, p, strict=True)
    api = score(items, p, strict=True)
    assert res["planning"] == api.planning and res["counts"]["missing"] == 1 and res["strict"] is True


def test_bad_record_is_invalid_argument(server):
    stub = eval_pb2_grpc.EvalServiceStub(grpc.insecure_channel(server))
    with pytest.raises(grpc.RpcError) as ei:
        stub.Evaluate(eval_pb2.EvaluateRequest(records=[eval_pb2.KAgentRecord(item_json="{not json")]), timeout=10)
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_cli_through_server_equals_cli_local(server):
    base = [sys.executable, "-m", "toolgym.evals.cli", "kagentbench", "--data", str(FIXTURES / "kagent_items.jsonl"),
            "--predictions", str(FIXTURES / "kagent_preds.jsonl"), "--json"]
    local = json.loads(subprocess.run(base, capture_output=True, text=True, check=True).stdout)
    remote = json.loads(subprocess.run(base + ["--server", server], capture_output=True, text=True, check=True).stdout)
    for k in (*ABILITIES, "overall", "bleu_concluding", "bleu_profile"):
        assert local[k] == remote[k]


def test_served_by_the_toolgym_server(items, preds):
    """The lead's server registers EvalService through add_to_server: same numbers there too."""
    app = pytest.importorskip("toolgym.env.server.app")
    srv = app.start_server(app.ServerConfig(host="127.0.0.1", port=0, suite="bfcl", enable_env=False))
    try:
        with EvalClient(srv.address) as cl:
            res = cl.evaluate(items, preds)
    finally:
        srv.stop(grace=0.5)
    api = score(items, preds)
    assert res["overall"] == api.overall and res["planning"] == api.planning
