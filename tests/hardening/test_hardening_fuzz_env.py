"""Fuzzing EnvService (ListTasks, Reset, Step, Close, Sessions) through a real server process.

Cases combine corpus atoms (hypothesis-drawn outputs in every template, hostile strings,
reward_config overrides, inline task JSON) with live sessions of every kind — single-step BFCL,
stateful multi-turn (real backends in the sandbox, called with the right tool names and
arguments of the wrong types) and python-tool tasks. A client-side model of each session
predicts every Step's status (retry, conflict, ahead, finished, unknown); each reply must match
it, carry an actionable message, and — on success — finite rewards and strict JSON.
"""

from __future__ import annotations

import json
import math
import time

import grpc
import pytest
from hardening_support import (ALLOWED_ERRORS, apply_config, check_error, check_score_pb, config_ok, fuzz_settings, record_cases,
                               strict_json)
from hypothesis import given
from hypothesis import strategies as st

from toolgym.env.parsers import TEMPLATES, render_calls
from toolgym.env.server.app import ServerConfig
from toolgym.env.types import ToolCall
from toolgym.v1 import env_pb2, env_pb2_grpc

MAX_CHARS = 20_000
OK = grpc.StatusCode.OK
NF, FP, IA, RE = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT,
                  grpc.StatusCode.RESOURCE_EXHAUSTED)
KINDS = ["ast", "irrelevance", "relevance", "multi_turn", "final_answer"]
LIGHT_CATEGORIES = ["simple_python", "multiple", "parallel", "parallel_multiple", "live_simple", "live_multiple", "irrelevance",
                    "live_irrelevance", "live_relevance"]
SINGLE_IDS = ["simple_python_0", "multiple_3", "parallel_5", "irrelevance_4", "live_simple_10-3-6", "live_relevance_1-1-0", "live_irrelevance_10-1-0"]
STATEFUL_IDS = ["multi_turn_base_0", "multi_turn_base_5", "multi_turn_miss_param_2", "multi_turn_miss_func_1"]


def fuzz(examples: int):
    return fuzz_settings(examples)


@pytest.fixture(scope="module")
def env(fuzz_server):
    ch = grpc.insecure_channel(fuzz_server.address, options=[("grpc.max_send_message_length", 8 << 20)])
    yield env_pb2_grpc.EnvServiceStub(ch)
    ch.close()
    assert fuzz_server.alive(), fuzz_server.log()[-3000:]


@pytest.fixture(scope="module")
def catalog(suite):
    return {"kinds": {t.id: t.kind for t in suite}, "categories": set(suite.categories())}


def _code(number: int) -> grpc.StatusCode:
    return next(c for c in grpc.StatusCode if c.value[0] == number)


def _result(fut) -> tuple[grpc.StatusCode, object]:
    try:
        return OK, fut.result()
    except grpc.RpcError as e:
        return check_error(e), e


# ---------------------------------------------------------------------------- ListTasks
@fuzz(200)
@given(data=st.data())
def test_fuzz_list_tasks(env, corpus, catalog, data):
    names = st.one_of(st.sampled_from(sorted(catalog["categories"])), st.sampled_from(corpus.texts))
    ints = st.one_of(st.integers(0, 20), st.integers(-(2**31), 2**31 - 1), st.sampled_from([0, -1, 2**31 - 1]))
    reqs = []
    for _ in range(50):
        reqs.append(env_pb2.ListTasksRequest(
            categories=data.draw(st.lists(names, max_size=2)), kinds=data.draw(st.lists(st.one_of(st.sampled_from(KINDS), st.sampled_from(corpus.texts)), max_size=2)),
            limit=data.draw(st.one_of(st.integers(1, 20), ints)), offset=data.draw(ints)))
    t = time.perf_counter()
    for req, fut in [(r, env.ListTasks.future(r, timeout=60)) for r in reqs]:
        code, resp = _result(fut)
        if req.limit < 0 or req.offset < 0:
            want = {IA}
        elif set(req.categories) - catalog["categories"] or set(req.kinds) - set(KINDS):
            want = {NF}
        else:
            want = {OK}
        assert code in want, (code, req, want)
        if code is OK:
            assert resp.total >= len(resp.tasks) and (not req.limit or len(resp.tasks) <= req.limit)
            assert all((not req.categories or t.category in req.categories) and (not req.kinds or t.kind in req.kinds) for t in resp.tasks)
    record_cases("EnvService/ListTasks", len(reqs), time.perf_counter() - t)


# ---------------------------------------------------------------------------- Reset / Close
@st.composite
def reset_requests(draw, corpus):
    req = env_pb2.ResetRequest(template=draw(st.one_of(st.just(""), st.sampled_from(TEMPLATES), st.sampled_from(corpus.texts))),
                               randomize_template=draw(st.booleans()),
                               max_steps=draw(st.one_of(st.just(0), st.integers(-5, 50), st.sampled_from([-(2**31), 2**31 - 1, MAX_STEPS_LIMIT, MAX_STEPS_LIMIT + 1]))))
    ref = draw(st.integers(0, 4))
    if ref == 0:
        req.task_id = draw(st.sampled_from(SINGLE_IDS))
    elif ref == 1:
        req.task_id = draw(st.sampled_from(corpus.texts))
    elif ref == 2:
        req.task_json = draw(st.sampled_from(corpus.task_json))
    else:
        req.categories.extend(draw(st.lists(st.one_of(st.sampled_from(LIGHT_CATEGORIES), st.sampled_from(corpus.texts)), max_size=2)))
    if draw(st.booleans()):
        req.seed = draw(st.integers(-(2**63), 2**63 - 1))
    cfg = draw(st.one_of(st.none(), st.sampled_from(corpus.configs)))
    if cfg is not None:
        apply_config(req.reward_config, cfg)
    return req, cfg


MAX_STEPS_LIMIT = ServerConfig().max_steps_limit  # the fuzzed servers run with the default


def expected_reset(req: env_pb2.ResetRequest, cfg, catalog) -> set[grpc.StatusCode]:
    if req.template and req.template not in TEMPLATES:
        return {IA}
    if not config_ok(cfg):
        return {IA}
    if req.max_steps < 0 or req.max_steps > MAX_STEPS_LIMIT or (req.HasField("seed") and req.seed < 0):
        return {IA}
    if req.task_json:
        return {OK, IA}
    if req.task_id:
        return {OK} if req.task_id in catalog["kinds"] else {NF}
    return {NF} if set(req.categories) - catalog["categories"] else {OK}


def _check_reset(resp: env_pb2.ResetResponse) -> None:
    info = strict_json(resp.info_json)
    assert resp.session_id and resp.observation and info["template"] in TEMPLATES


@fuzz(200)
@given(data=st.data())
def test_fuzz_reset_and_close(env, corpus, catalog, data):
    reqs = [data.draw(reset_requests(corpus)) for _ in range(50)]
    junk_pool = [data.draw(st.sampled_from(corpus.texts)) for _ in range(50)]  # drawn before any session opens
    t = time.perf_counter()
    opened = []
    for (req, cfg), fut in [(rc, env.Reset.future(rc[0], timeout=60)) for rc in reqs]:
        code, resp = _result(fut)
        assert code in expected_reset(req, cfg, catalog), (code, getattr(resp, "details", lambda: "")(), req)
        if code is OK:
            _check_reset(resp)
            opened.append(resp.session_id)
    record_cases("EnvService/Reset", len(reqs), time.perf_counter() - t)
    # Close: every opened session once (OK), again (NOT_FOUND), junk ids (NOT_FOUND / INVALID_ARGUMENT).
    junk = junk_pool[: 50 - len(opened)]
    closes = [(sid, {OK}) for sid in opened] + [(sid, {NF}) for sid in opened[:5]] + [(j, {IA} if not j else {NF}) for j in junk]
    t = time.perf_counter()
    for sid, want in closes:  # sequential: the second close of a session must come after the first
        code, resp = _result(env.Close.future(env_pb2.CloseRequest(session_id=sid), timeout=60))
        assert code in want, (code, sid, want)
        if code is OK:
            assert resp.closed
    record_cases("EnvService/Close", len(closes), time.perf_counter() - t)


# ---------------------------------------------------------------------------- Step
class SessionModel:
    """What a session must answer: applied steps, their actions, whether the episode is over."""

    def __init__(self, sid: str, info: dict):
        self.sid, self.info = sid, info
        self.actions: list[str] = []
        self.replies: list[env_pb2.StepResponse] = []
        self.done = False

    def expect(self, action: str, index: int | None) -> set[grpc.StatusCode]:
        n = len(self.actions)
        if len(action) > MAX_CHARS:
            return {RE}
        if index is not None and index < n:
            return {OK} if self.actions[index] == action else {FP}
        if index is not None and index > n:
            return {FP}
        return {FP} if self.done else {OK}

    def apply(self, action: str, index: int | None, resp: env_pb2.StepResponse) -> None:
        assert math.isfinite(resp.reward)
        info = strict_json(resp.info_json)
        if index is not None and index < len(self.actions):
            assert resp == self.replies[index]  # a retry gets the recorded reply, nothing re-executed
            return
        assert resp.step_index == len(self.actions)
        self.actions.append(action)
        self.replies.append(resp)
        if resp.terminated or resp.truncated:
            self.done = True
            check_score_pb(resp.score)
            assert info["valid"] == resp.score.valid and math.isfinite(info["total"])


def _wrong_type_call(draw, corpus, info: dict) -> str:
    """A call to one of the session's real tools, real parameter names, values of any JSON type."""
    tools = info.get("tools") or []
    if not tools:
        return draw(st.sampled_from(corpus.outputs))
    tool = draw(st.sampled_from(tools))
    params = list((tool.get("parameters") or {}).get("properties") or {}) or ["x"]
    args = {p: json.loads(draw(st.sampled_from(corpus.json_docs[:400]))) for p in draw(st.lists(st.sampled_from(params), max_size=3, unique=True))}
    return render_calls([ToolCall(tool["name"], args)], info["template"])


def _open(env, n_single: int, n_stateful: int, python: bool) -> list[SessionModel]:
    reqs = [env_pb2.ResetRequest(task_id=SINGLE_IDS[i % len(SINGLE_IDS)], template=TEMPLATES[i % len(TEMPLATES)]) for i in range(n_single)]
    reqs += [env_pb2.ResetRequest(task_id=STATEFUL_IDS[i % len(STATEFUL_IDS)], template="hermes", max_steps=12) for i in range(n_stateful)]
    if python:
        reqs.append(env_pb2.ResetRequest(task_id="toolgym_python_3", template="hermes", max_steps=6))
    out = []
    for f in [env.Reset.future(r, timeout=120) for r in reqs]:
        resp = f.result()
        out.append(SessionModel(resp.session_id, strict_json(resp.info_json)))
    return out


@fuzz(110)
@given(data=st.data())
def test_fuzz_step(env, corpus, data):
    python = data.draw(st.integers(0, 9)) == 0
    sessions = _open(env, 6, 2, python)
    try:  # a draw can abort the example (hypothesis overrun): the sessions are closed either way
        _step_rounds(env, corpus, data, sessions)
    finally:
        for s in sessions:
            env.Close(env_pb2.CloseRequest(session_id=s.sid), timeout=60)


def _step_rounds(env, corpus, data, sessions: list[SessionModel]) -> None:
    steps = 0
    t = time.perf_counter()
    for _round in range(12):  # one step per live session per round, sessions in parallel
        batch = []
        for s in sessions:
            mode = data.draw(st.integers(0, 9))
            if mode <= 3 and s.info.get("kind") in ("multi_turn", "final_answer"):
                action = _wrong_type_call(data.draw, corpus, s.info)
            else:
                action = data.draw(st.sampled_from(corpus.outputs))
            n = len(s.actions)
            index = data.draw(st.sampled_from([None, n, n, n + 1, max(0, n - 1), 2**62, -1]))
            if index == max(0, n - 1) and n and data.draw(st.booleans()):
                action = s.actions[index]  # a true retry of the last step
            sid = s.sid if mode != 9 else data.draw(st.sampled_from(corpus.texts)) + "x"
            req = env_pb2.StepRequest(session_id=sid, action=action)
            if index is not None:
                req.step_index = index
            batch.append((s, req, index, env.Step.future(req, timeout=120)))
        for s, req, index, fut in batch:
            code, resp = _result(fut)
            if req.session_id != s.sid:
                want = {NF, IA} if index is not None and index < 0 else {NF}  # either check may come first
            elif index is not None and index < 0:  # a negative step_index is refused before anything runs
                want = {IA} if len(req.action) <= MAX_CHARS else {IA, RE}
            else:
                want = s.expect(req.action, index)
            if req.session_id != s.sid and len(req.action) > MAX_CHARS:
                want = {RE}
            assert code in want, (code, getattr(resp, "details", lambda: "")(), want, s.info.get("task_id"), index, len(s.actions))
            if code is OK:
                s.apply(req.action, index, resp)
            steps += 1
    record_cases("EnvService/Step", steps, time.perf_counter() - t)


# ---------------------------------------------------------------------------- Sessions (bidi stream)
@fuzz(100)
@given(data=st.data())
def test_fuzz_sessions_stream(env, corpus, catalog, data):
    sessions = {s.sid: s for s in _open(env, 8, 1, False)}
    try:  # a draw can abort the example (hypothesis overrun): the sessions are closed either way
        _stream_round(env, corpus, catalog, data, sessions)
    finally:
        for sid in sessions:
            env.Close(env_pb2.CloseRequest(session_id=sid), timeout=60)


def _stream_round(env, corpus, catalog, data, sessions: dict[str, SessionModel]) -> None:
    sids = list(sessions)
    msgs, plan = [], {}
    for i in range(100):
        tag = f"m{i}"
        op = data.draw(st.integers(0, 9))
        if op <= 5:  # steps on live sessions, applied in arrival order per session
            sid = data.draw(st.sampled_from(sids))
            action = data.draw(st.sampled_from(corpus.outputs))
            req = env_pb2.SessionRequest(tag=tag, step=env_pb2.StepRequest(session_id=sid, action=action))
            plan[tag] = ("step", sid, action)
        elif op == 6:
            r, cfg = data.draw(reset_requests(corpus))
            req = env_pb2.SessionRequest(tag=tag, reset=r)
            plan[tag] = ("reset", expected_reset(r, cfg, catalog))
        elif op == 7:
            junk = data.draw(st.sampled_from(corpus.texts))
            req = env_pb2.SessionRequest(tag=tag, close=env_pb2.CloseRequest(session_id=junk))
            plan[tag] = ("other", {IA} if not junk else {NF})
        elif op == 8:
            req = env_pb2.SessionRequest(tag=tag)  # no operation at all
            plan[tag] = ("other", {IA})
        else:
            req = env_pb2.SessionRequest(tag=tag, step=env_pb2.StepRequest(session_id="nope-" + tag, action="x"))
            plan[tag] = ("other", {NF})
        msgs.append(req)
    t = time.perf_counter()
    replies = {r.tag: r for r in env.Sessions(iter(msgs), timeout=300)}
    assert set(replies) == set(plan), "every request gets exactly one reply"
    for req in msgs:  # replay the model in arrival order (the server keeps per-session order)
        r, p = replies[req.tag], plan[req.tag]
        code = _code(r.error.code) if r.HasField("error") else OK
        if code is not OK:
            assert code in ALLOWED_ERRORS and len(r.error.message) >= 15, (code, r.error.message)
        if p[0] == "step":
            s = sessions[p[1]]
            assert code in s.expect(p[2], None), (code, r.error.message)
            if code is OK:
                s.apply(p[2], None, r.step)
        elif p[0] == "reset":
            assert code in p[1], (code, r.error.message, p)
            if code is OK:
                _check_reset(r.reset)
                # The stream owned it and closed it when it ended, before its status reached us.
                closed, _ = _result(env.Close.future(env_pb2.CloseRequest(session_id=r.reset.session_id), timeout=60))
                assert closed is NF, (closed, "a session reset on a stream outlived the stream")
        else:
            assert code in p[1], (code, r.error.message)
    record_cases("EnvService/Sessions", len(msgs), time.perf_counter() - t)


def test_no_session_leaked_by_the_fuzz(env, fuzz_server):
    """Everything the fuzz opened it closed: the server's own count (--stats-file) is back to zero."""
    stats = fuzz_server.fresh_stats()
    assert stats["sessions_open"] == 0, stats
    assert stats["sandbox"]["sessions"] == 0, stats
