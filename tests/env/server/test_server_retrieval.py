"""Retrieval over the wire on a real server on loopback (issue 16 items 5-6): ``RetrieveTools``, a
search episode over gRPC and the gateway, ``Score`` with ``RetrievalOptions``, and the statuses of
bad options."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import grpc
import pytest

from gym_helpers import gt_single_turn_action
from toolgym.env.client import ToolgymClient
from toolgym.env.server.app import ServerConfig, start_server


@pytest.fixture(scope="module")
def srv(bfcl_suite):
    s = start_server(ServerConfig(host="127.0.0.1", port=0, http_port=0, max_sessions=8), suite=bfcl_suite)
    yield s
    s.stop(0)


@pytest.fixture()
def client(srv):
    with ToolgymClient(srv.address, timeout=60) as c:
        yield c


def _search(query: str, k: int = 5) -> str:
    return "<tool_call>" + json.dumps({"name": "search_tools", "arguments": {"query": query, "k": k}}) + "</tool_call>"


def test_retrieve_tools_finds_the_tool_one_entry_per_name(client):
    hits = client.retrieve_tools("calculate the area of a triangle given base and height", k=10)
    assert len(hits) == 10 and len({h.name for h in hits}) == 10
    assert "calculate_triangle_area" in [h.name for h in hits[:5]]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].spec["name"] == hits[0].name and "parameters" in hits[0].spec and "#" in hits[0].id


@pytest.mark.parametrize("kw, code, words", [
    ({"query": "", "k": 5}, grpc.StatusCode.INVALID_ARGUMENT, "query is empty"),
    ({"query": "x", "k": 1000}, grpc.StatusCode.INVALID_ARGUMENT, "k must be in 1..100"),
    ({"query": "x", "k": 5, "retriever": "tfidf"}, grpc.StatusCode.INVALID_ARGUMENT, "unknown retriever"),
])
def test_retrieve_tools_bad_requests(client, kw, code, words):
    with pytest.raises(grpc.RpcError) as e:
        client.retrieve_tools(**kw)
    assert e.value.code() == code and words in e.value.details()


def test_finetuned_retriever_missing_is_failed_precondition_naming_the_command(client, tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLGYM_CACHE_DIR", str(tmp_path))  # no model built here
    with pytest.raises(grpc.RpcError) as e:
        client.retrieve_tools("move a file", retriever="finetuned")
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "toolgym train retriever" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        client.reset("simple_python_0", retrieval={"tool_pool": "full_catalogue", "retrieval": "search", "retriever": "finetuned"})
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_search_episode_over_grpc_scores_one(client, bfcl_suite):
    task = bfcl_suite.get("simple_python_0")
    r = client.reset(task.id, template="hermes", retrieval={"tool_pool": "full_catalogue", "retrieval": "search"})
    assert [t["name"] for t in r.info["tools"]] == ["search_tools"] and r.info["retrieval"]["mode"] == "search"
    s = client.step(r.session_id, _search("area of a triangle with base and height"), step_index=0)
    assert not s.terminated and "calculate_triangle_area" in s.observation
    s = client.step(r.session_id, gt_single_turn_action(task), step_index=1)
    assert s.terminated and s.reward == pytest.approx(1.0) and s.info["components"]["retrieval"] == 1.0


@pytest.mark.parametrize("retrieval, words", [
    ({"tool_pool": "everything"}, "tool_pool must be"),
    ({"retrieval": "guess"}, "retrieval must be one of"),
    ({"tool_pool": "full_catalogue", "retrieval": "pre_retrieved", "retrieval_k": 99}, "retrieval_k must be"),
])
def test_bad_retrieval_options_are_invalid_argument(client, retrieval, words):
    with pytest.raises(grpc.RpcError) as e:
        client.reset("simple_python_0", retrieval=retrieval)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and words in e.value.details()


def test_score_with_retrieval_options(client, bfcl_suite):
    task = bfcl_suite.get("simple_python_0")
    out = gt_single_turn_action(task)
    plain = client.score(out, task_id=task.id, template="hermes")
    assert "retrieval" not in plain.components
    pre = client.score(out, task_id=task.id, template="hermes",
                       retrieval={"tool_pool": "full_catalogue", "retrieval": "pre_retrieved", "retrieval_k": 5})
    assert pre.total == pytest.approx(1.0) and pre.components["retrieval"] == 1.0
    # k=1 on a query whose best match is another triangle tool: the right one was not offered.
    miss = client.score(out, task_id=task.id, template="hermes",
                        retrieval={"tool_pool": "full_catalogue", "retrieval": "pre_retrieved", "retrieval_k": 1})
    env = client.reset(task.id, template="hermes", retrieval={"tool_pool": "full_catalogue", "retrieval": "pre_retrieved",
                                                               "retrieval_k": 1})
    offered = [t["name"] for t in env.info["tools"]]
    step = client.step(env.session_id, out, step_index=0)
    assert miss.components == step.info["components"] and miss.total == pytest.approx(step.reward)  # Score and Step alike
    assert (miss.components["retrieval"] == 1.0) == ("calculate_triangle_area" in offered)
    with pytest.raises(grpc.RpcError) as e:
        client.score(out, task_id=task.id, retrieval={"tool_pool": "full_catalogue", "retrieval": "search"})
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "Reset/Step" in e.value.details()


def _post(srv, path, data):
    req = urllib.request.Request(srv.http.url + path, data=json.dumps(data).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_gateway_tools_search_and_retrieval_reset(srv, bfcl_suite):
    status, body = _post(srv, "/tools/search", {"query": "move a file into another directory", "k": 5})
    assert status == 200 and len(body["tools"]) == 5 and body["retriever"] == "bm25" and body["catalogue_size"] >= 1800
    assert "mv" in [t["name"] for t in body["tools"]]
    status, body = _post(srv, "/tools/search", {"query": "x", "kk": 5})
    assert status == 422 and body["data"]["code"] == "VALIDATION_ERROR"
    status, body = _post(srv, "/reset", {"task_id": "simple_python_0", "template": "hermes",
                                         "retrieval": {"tool_pool": "k_distractors:10", "mode": "search"}})
    assert status == 200
    sid = body["observation"]["metadata"]["session_id"]
    status, body = _post(srv, "/step", {"session_id": sid, "action": _search("triangle area from base and height")})
    assert status == 200 and "calculate_triangle_area" in body["observation"]["text"] and not body["done"]
    status, body = _post(srv, "/step", {"session_id": sid, "action": gt_single_turn_action(bfcl_suite.get("simple_python_0"))})
    assert status == 200 and body["done"] and body["reward"] == pytest.approx(1.0)
