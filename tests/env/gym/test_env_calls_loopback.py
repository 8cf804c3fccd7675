"""Positional calls, malformed calls, hidden tools and poisoned text on a real server on loopback
(issue 10 items 4-6, issue 11 item 1): the same behaviour as the in-process env."""

from __future__ import annotations

import json

import pytest

from toolgym.env.client import ToolgymClient


@pytest.fixture()
def client(env_server):
    with ToolgymClient(env_server.address, timeout=60) as c:
        yield c


def test_positional_call_maps_by_declared_order(client):
    r = client.reset("multi_turn_base_0", template="pythonic")
    s = client.step(r.session_id, "[mkdir('from_positional')]", step_index=0)
    assert "parse_issues" not in s.info and "error" not in s.observation.lower()
    s = client.step(r.session_id, "[ls()]", step_index=1)
    assert "from_positional" in s.observation
    s = client.step(r.session_id, "[mkdir('a', 'b')]", step_index=2)
    assert not s.terminated and "too many positional arguments in call to mkdir" in s.observation and "dir_name" in s.observation
    s = client.step(r.session_id, "[mkdir('a', dir_name='b')]", step_index=3)
    assert "parameter 'dir_name' of mkdir is given twice" in s.observation
    client.close_session(r.session_id)


def test_malformed_call_is_an_error_observation(client):
    r = client.reset("multi_turn_base_0", template="hermes")
    s = client.step(r.session_id, '<tool_call>{"name": "ls", "arguments": {"a": tru}}</tool_call>', step_index=0)
    assert not s.terminated and s.info["turn"] == 0
    assert "Format error" in s.observation and "[hermes parser] invalid_json at line 1" in s.observation
    assert s.info["parse_issues"]
    s = client.step(r.session_id, '<tool_call>{"name": "ls", "arguments": {}}</tool_call>', step_index=1)
    assert "current_directory_content" in s.observation
    client.close_session(r.session_id)


def test_hidden_tools_stay_hidden(client):
    r = client.reset("multi_turn_miss_func_0", template="hermes")
    assert {t["name"] for t in r.info["tools"]}.isdisjoint({"sort", "cp"})
    s = client.step(r.session_id, '<tool_call>{"name": "nonexistent_tool_xyz", "arguments": {}}</tool_call>', step_index=0)
    text = s.observation + json.dumps(s.info)
    assert "unknown tool 'nonexistent_tool_xyz'" in s.observation and "ls" in s.observation
    assert "'sort'" not in text and ", sort" not in text and ", cp" not in text and "cp," not in text
    s = client.step(r.session_id, '<tool_call>{"name": "cp", "arguments": {"source": "x", "destination": "y"}}</tool_call>', step_index=1)
    assert "cp: cannot copy" in s.observation and s.info["unoffered_calls"] == ["cp"]
    client.close_session(r.session_id)


def test_escaped_surrogate_is_a_recorded_format_error_over_grpc(client):
    r = client.reset("multi_turn_base_0", template="hermes")
    s = client.step(r.session_id, '<tool_call>{"name": "mkdir", "arguments": {"dir_name": "\\ud800"}}</tool_call>', step_index=0)
    assert not s.terminated and s.step_index == 0 and "invalid_text" in s.observation
    again = client.step(r.session_id, '<tool_call>{"name": "mkdir", "arguments": {"dir_name": "\\ud800"}}</tool_call>', step_index=0)
    assert again == s  # recorded: a retry gets the same reply, nothing runs twice
    s = client.step(r.session_id, '<tool_call>{"name": "ls", "arguments": {}}</tool_call>', step_index=1)
    assert s.step_index == 1 and "document" in s.observation
    client.close_session(r.session_id)


def test_on_parse_error_is_set_per_reset_over_grpc(client):
    r = client.reset("multi_turn_base_0", template="hermes", on_parse_error="end_turn")
    s = client.step(r.session_id, "<tool_call>{broken</tool_call>", step_index=0)
    assert s.info["turn"] == 1 and s.observation.startswith("Format error") and "User:" in s.observation
    client.close_session(r.session_id)
    r = client.reset("multi_turn_base_0", template="hermes")  # empty = observe, the default
    s = client.step(r.session_id, "<tool_call>{broken</tool_call>", step_index=0)
    assert s.info["turn"] == 0
    client.close_session(r.session_id)
    with pytest.raises(Exception, match="on_parse_error must be one of") as e:
        client.reset("multi_turn_base_0", on_parse_error="retry")
    assert e.value.code().name == "INVALID_ARGUMENT"


def test_shaping_is_set_per_reset_over_grpc(client):
    wrong = '<tool_call>{"name": "echo", "arguments": {"content": "x"}}</tool_call>'
    plain = client.reset("multi_turn_base_0", template="hermes")
    shaped = client.reset("multi_turn_base_0", template="hermes", shaping=1.0)
    a = client.step(plain.session_id, wrong, step_index=0)
    b = client.step(shaped.session_id, wrong, step_index=0)
    assert a.reward == 0.0 and b.reward < 0.0  # the wrong-tool penalty, paid at once
    for sid in (plain.session_id, shaped.session_id):
        client.close_session(sid)
    for bad in (-1.0, float("nan"), 11.0):
        with pytest.raises(Exception, match="shaping must be a finite number") as e:
            client.reset("multi_turn_base_0", shaping=bad)
        assert e.value.code().name == "INVALID_ARGUMENT"
