"""openai (chat tool_calls JSON) parsing."""

from __future__ import annotations

import json

from toolgym.env.parsers import parse, render_calls, render_final_answer
from toolgym.env.types import ToolCall

T = "openai"


def kv(pa):
    return [(c.name, c.arguments) for c in pa.calls]


def item(name, args, encode=True):
    return {"id": "call_1", "type": "function", "function": {"name": name, "arguments": json.dumps(args) if encode else args}}


def test_tool_calls_object():
    text = json.dumps({"tool_calls": [item("w", {"city": "Paris"}), item("t", {"tz": "CET"}, encode=False)]})
    pa = parse(text, T)
    assert pa.ok and kv(pa) == [("w", {"city": "Paris"}), ("t", {"tz": "CET"})]


def test_bare_list_single_item_and_legacy_function_call():
    assert kv(parse(json.dumps([item("a", {}), item("b", {"x": 1})]), T)) == [("a", {}), ("b", {"x": 1})]
    assert kv(parse(json.dumps(item("a", {"k": [1]})), T)) == [("a", {"k": [1]})]
    assert kv(parse(json.dumps({"name": "a", "arguments": {"k": 1}}), T)) == [("a", {"k": 1})]
    msg = {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": '{"q": "x"}'}}
    assert kv(parse(json.dumps(msg), T)) == [("f", {"q": "x"})]


def test_message_content_is_thought_or_answer():
    msg = {"role": "assistant", "content": "Checking.", "tool_calls": [item("w", {"city": "Rome"})]}
    pa = parse(json.dumps(msg), T)
    assert kv(pa) == [("w", {"city": "Rome"})] and pa.thought == "Checking." and pa.final_answer is None
    pa = parse(json.dumps({"role": "assistant", "content": "It is sunny."}), T)
    assert pa.final_answer == "It is sunny." and pa.calls == () and pa.ok


def test_chat_completion_response():
    resp = {"id": "x", "choices": [{"index": 0, "message": {"role": "assistant", "tool_calls": [item("w", {"c": 1})]}}]}
    assert kv(parse(json.dumps(resp), T)) == [("w", {"c": 1})]


def test_fence_chatter_and_unicode():
    body = json.dumps({"tool_calls": [item("查询", {"城市": "北京"})]}, ensure_ascii=False, indent=2)
    pa = parse(f"Sure, calling it now:\n```json\n{body}\n```", T)
    assert kv(pa) == [("查询", {"城市": "北京"})]
    pa = parse(f"```json\n{body}\n```", T)
    assert kv(pa) == [("查询", {"城市": "北京"})] and pa.ok and pa.thought is None


def test_undecodable_arguments_string_is_an_issue_with_the_full_string():
    bad = '{"city": "Paris"'
    text = json.dumps({"tool_calls": [item("ok", {"a": 1}), {"type": "function", "function": {"name": "w", "arguments": bad}}]})
    pa = parse(text, T)
    assert kv(pa) == [("ok", {"a": 1})]
    (issue,) = pa.issues
    assert issue.kind == "invalid_json" and issue.fragment == bad


def test_non_object_arguments_and_missing_name():
    text = json.dumps({"tool_calls": [{"type": "function", "function": {"name": "w", "arguments": "[1, 2]"}}, {"type": "function", "function": {"arguments": "{}"}}]})
    pa = parse(text, T)
    assert pa.calls == () and [i.kind for i in pa.issues] == ["wrong_type", "missing_field"]


def test_broken_json_with_tool_calls_is_an_issue():
    text = '{"tool_calls": [{"type": "function", "function": {"name": "w", "arguments": "{}"}}'
    pa = parse(text, T)
    assert pa.calls == () and pa.final_answer is None
    assert pa.issues[0].kind == "invalid_json" and pa.issues[0].fragment == text


def test_trailing_text_is_reported_but_call_kept():
    pa = parse(json.dumps({"tool_calls": [item("w", {})]}) + "\nHope that helps!", T)
    assert kv(pa) == [("w", {})] and [i.kind for i in pa.issues] == ["trailing_text"]


def test_plain_text_answers():
    for text in ("The answer is 42.", "[citation needed] is a tag", '{"a": 1}', "  padded  "):
        pa = parse(text, T)
        assert pa.ok and pa.final_answer == text.strip() and pa.calls == (), text


def test_render_shapes():
    text = render_calls([ToolCall("w", {"city": "Paris"})], T)
    obj = json.loads(text)
    assert obj["tool_calls"][0]["function"] == {"name": "w", "arguments": '{"city": "Paris"}'}
    assert render_final_answer("Hi.", T) == "Hi."
    assert json.loads(render_final_answer("{not plain}", T)) == {"role": "assistant", "content": "{not plain}"}
