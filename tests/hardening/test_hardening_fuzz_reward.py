"""Fuzzing RewardService (Score, ScoreBatch, ScoreStream) through a real server process.

Each hypothesis example combines atoms of the shared corpus (hypothesis-drawn model outputs in
every template, hostile strings, reward_config overrides with NaN/inf/huge values, inline task
JSON) into a batch of requests sent concurrently over one channel, so ≥ 10,000 cases per RPC
fit in CI time. Every case must get the status its defect calls for (the oracle follows the
order reward.proto documents), an actionable message, and — on success — a result whose numbers
are finite and in range. The server must never crash or hang (checked after the module).
"""

from __future__ import annotations

import time

import grpc
import pytest
from hardening_support import (ALLOWED_ERRORS, HUGE, apply_config, check_error, check_score_pb, config_ok, fuzz_settings,
                               record_cases)
from hypothesis import given
from hypothesis import strategies as st

from toolgym.env.parsers import TEMPLATES
from toolgym.v1 import reward_pb2, reward_pb2_grpc

MAX_CHARS = 20_000  # the fuzz server's --max-output-chars
MAX_BATCH = 64  # its --max-batch-items
BATCH = 50
EXAMPLES = 200  # x BATCH = 10,000 cases per RPC
OK = grpc.StatusCode.OK
FUZZ = fuzz_settings(EXAMPLES)

SAMPLE_IDS = ["simple_python_0", "simple_python_7", "multiple_3", "parallel_5", "parallel_multiple_2", "irrelevance_4",
              "live_simple_10-3-6", "live_multiple_10-4-2", "live_irrelevance_10-1-0", "live_relevance_1-1-0", "toolgym_python_0",
              "toolgym_python_9", "multi_turn_base_0", "multi_turn_miss_func_3"]


@pytest.fixture(scope="module")
def stub(fuzz_server):
    ch = grpc.insecure_channel(fuzz_server.address, options=[("grpc.max_send_message_length", 8 << 20)])
    yield reward_pb2_grpc.RewardServiceStub(ch)
    ch.close()
    assert fuzz_server.alive(), fuzz_server.log()[-3000:]


@pytest.fixture(scope="module")
def kinds(suite):
    return {t.id: t.kind for t in suite}


_strategies: dict[int, st.SearchStrategy] = {}


def score_requests(corpus) -> st.SearchStrategy:
    """(ScoreRequest, meta) pairs built from the corpus (cached per corpus)."""
    if id(corpus) in _strategies:
        return _strategies[id(corpus)]
    ref = st.one_of(st.tuples(st.just("id"), st.sampled_from(SAMPLE_IDS)), st.tuples(st.just("id"), st.sampled_from(corpus.texts)),
                    st.tuples(st.just("json"), st.sampled_from(corpus.task_json)), st.just(("none", "")))

    @st.composite
    def one(draw):
        kind, value = draw(ref)
        req = reward_pb2.ScoreRequest(output=draw(st.sampled_from(corpus.outputs)),
                                      template=draw(st.one_of(st.just(""), st.sampled_from(TEMPLATES), st.sampled_from(corpus.texts))),
                                      request_id=draw(st.sampled_from(corpus.texts)))
        if kind == "id":
            req.task_id = value
        elif kind == "json":
            req.task_json = value
        cfg = draw(st.one_of(st.none(), st.sampled_from(corpus.configs)))
        if cfg is not None:
            apply_config(req.reward_config, cfg)
        return req, {"ref": (kind, value), "config": cfg}

    _strategies[id(corpus)] = one()
    return _strategies[id(corpus)]


def expected(req: reward_pb2.ScoreRequest, meta: dict, kinds: dict[str, str]) -> set[grpc.StatusCode]:
    """The status a request must get, in the order the servicer checks (reward.proto)."""
    if len(req.output) > MAX_CHARS:
        return {grpc.StatusCode.RESOURCE_EXHAUSTED}
    if req.template and req.template not in TEMPLATES:
        return {grpc.StatusCode.INVALID_ARGUMENT}
    kind, ref = meta["ref"]
    if kind == "none" or not ref:
        return {grpc.StatusCode.INVALID_ARGUMENT}
    if kind == "json":  # which inline tasks are valid is the task loader's business
        return {OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION}
    if ref not in kinds:
        return {grpc.StatusCode.NOT_FOUND}
    if not config_ok(meta["config"]):
        return {grpc.StatusCode.INVALID_ARGUMENT}
    return {grpc.StatusCode.FAILED_PRECONDITION} if kinds[ref] == "multi_turn" else {OK}


def _code(number: int) -> grpc.StatusCode:
    return next(c for c in grpc.StatusCode if c.value[0] == number)


def _check_item(resp: reward_pb2.ScoreResponse, req: reward_pb2.ScoreRequest, want: set[grpc.StatusCode]) -> None:
    assert resp.request_id == req.request_id
    if resp.HasField("error"):
        code = _code(resp.error.code)
        assert code in want and code in ALLOWED_ERRORS and len(resp.error.message) >= 15, (code, resp.error.message, want)
    else:
        assert OK in want, want
        check_score_pb(resp.result)


@FUZZ
@given(data=st.data())
def test_fuzz_score(stub, corpus, kinds, data):
    batch = [data.draw(score_requests(corpus)) for _ in range(BATCH)]
    t = time.perf_counter()
    futs = [(stub.Score.future(req, timeout=60), req, meta) for req, meta in batch]
    for fut, req, meta in futs:
        want = expected(req, meta, kinds)
        try:
            resp = fut.result()
        except grpc.RpcError as e:
            code = check_error(e)
            assert code in want, (code, e.details(), want, meta)
            continue
        _check_item(resp, req, want)
    record_cases("RewardService/Score", len(batch), time.perf_counter() - t)


@FUZZ
@given(data=st.data())
def test_fuzz_score_batch(stub, corpus, kinds, data):
    batches = []
    for _ in range(BATCH):
        n = data.draw(st.sampled_from([0, 1, 1, 2, 3, MAX_BATCH + 1]))
        batches.append([data.draw(score_requests(corpus)) for _ in range(min(n, 3))] * (1 if n <= 3 else 22))
    t = time.perf_counter()
    futs = [(stub.ScoreBatch.future(reward_pb2.ScoreBatchRequest(items=[r for r, _ in items]), timeout=60), items) for items in batches]
    for fut, items in futs:
        try:
            resp = fut.result()
        except grpc.RpcError as e:  # only a batch past --max-batch-items fails as a whole
            assert check_error(e) == grpc.StatusCode.RESOURCE_EXHAUSTED and len(items) > MAX_BATCH and "ScoreStream" in e.details()
            continue
        assert len(items) <= MAX_BATCH and len(resp.results) == len(items)
        for r, (req, meta) in zip(resp.results, items):
            _check_item(r, req, expected(req, meta, kinds))
    record_cases("RewardService/ScoreBatch", len(batches), time.perf_counter() - t)


@FUZZ
@given(data=st.data())
def test_fuzz_score_stream(stub, corpus, kinds, data):
    batch = [data.draw(score_requests(corpus)) for _ in range(BATCH)]
    t = time.perf_counter()
    replies = list(stub.ScoreStream(iter([r for r, _ in batch]), timeout=120))
    assert len(replies) == len(batch)  # one reply per request, in order
    for r, (req, meta) in zip(replies, batch):
        _check_item(r, req, expected(req, meta, kinds))
    record_cases("RewardService/ScoreStream", len(batch), time.perf_counter() - t)


def test_huge_outputs_are_refused_before_parsing(stub):
    for text in HUGE:
        with pytest.raises(grpc.RpcError) as e:
            stub.Score(reward_pb2.ScoreRequest(task_id="simple_python_0", output=text), timeout=30)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "--max-output-chars" in e.value.details()
