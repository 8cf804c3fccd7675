"""autogpt (JSON thoughts + command) parsing."""

from __future__ import annotations

import json

import pytest

from toolgym.env.parsers import parse, render_calls
from toolgym.env.types import ToolCall

T = "autogpt"


def kv(pa):
    return [(c.name, c.arguments) for c in pa.calls]


def obj(name, args, text="thinking"):
    return {"thoughts": {"text": text, "reasoning": "r", "plan": "- p", "criticism": "c", "speak": "s"}, "command": {"name": name, "args": args}}


def test_pretty_printed_command():
    pa = parse(json.dumps(obj("web_search", {"query": "杭州天气"}), ensure_ascii=False, indent=4), T)
    assert kv(pa) == [("web_search", {"query": "杭州天气"})] and pa.thought == "thinking" and pa.ok


def test_fenced_with_chatter():
    text = "Here is my response:\n```json\n" + json.dumps(obj("s", {"q": 1})) + "\n```\nThanks"
    pa = parse(text, T)
    assert kv(pa) == [("s", {"q": 1})]
    assert pa.thought == "thinking\nHere is my response:\nThanks"


@pytest.mark.parametrize("name, args", [("finish", {"response": "42"}), ("task_complete", {"reason": "42"}), ("Finish", {"answer": "42"})])
def test_finish_commands(name, args):
    pa = parse(json.dumps(obj(name, args)), T)
    assert pa.final_answer == "42" and pa.calls == () and pa.ok


def test_give_up():
    pa = parse(json.dumps({"thoughts": {"text": ""}, "command": {"name": "give_up", "args": {"reason": "no tool"}}}), T)
    assert pa.give_up and pa.thought == "no tool" and pa.ok


@pytest.mark.parametrize(
    "value, kind",
    [
        ({"thoughts": {"text": "x"}}, "missing_field"),
        ({"command": "web_search"}, "wrong_type"),
        ({"command": {"name": "s", "args": ["q"]}}, "wrong_type"),
        ({"command": {"args": {}}}, "missing_field"),
        ({"command": {"name": "finish", "args": {}}}, "missing_field"),
        ({"command": {"name": "finish", "args": {"response": 1}}}, "wrong_type"),
    ],
)
def test_malformed(value, kind):
    pa = parse(json.dumps(value), T)
    assert pa.calls == () and pa.final_answer is None and [i.kind for i in pa.issues] == [kind]


def test_invalid_json_and_no_structure():
    text = '{"thoughts": {"text": "x"}, "command": {"name": "s", "args": {"q": "unterminated}}'
    pa = parse(text, T)
    assert pa.calls == () and pa.issues[0].kind == "invalid_json" and pa.issues[0].fragment == text
    pa = parse("I will search the web.", T)
    assert pa.final_answer is None and pa.issues[0].kind == "no_structure"


def test_two_objects_and_render_rules():
    text = json.dumps(obj("a", {})) + "\n" + json.dumps(obj("b", {"x": 1}))
    assert kv(parse(text, T)) == [("a", {}), ("b", {"x": 1})]
    for reserved in ("finish", "task_complete", "give_up"):
        with pytest.raises(ValueError):
            render_calls([ToolCall(reserved, {})], T)
    with pytest.raises(ValueError):
        render_calls([ToolCall("a", {}), ToolCall("b", {})], T)
