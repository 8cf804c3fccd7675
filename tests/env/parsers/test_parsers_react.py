"""react and toolllama (Thought / Action / Action Input) parsing."""

from __future__ import annotations

import pytest

from toolgym.env.parsers import parse, render_calls, render_final_answer, render_give_up
from toolgym.env.types import ToolCall


def kv(pa):
    return [(c.name, c.arguments) for c in pa.calls]


TRACE = (
    "Thought: I need the weather.\n"
    "Action: get_weather\n"
    'Action Input: {"city": "Paris"}\n'
    "Observation: sunny (written by the model, ignored)\n"
    "Thought: I now know the final answer\n"
    "Final Answer: It is sunny in Paris.\nHave a nice day."
)


def test_react_full_trace():
    pa = parse(TRACE, "react")
    assert kv(pa) == [("get_weather", {"city": "Paris"})]
    assert pa.final_answer == "It is sunny in Paris.\nHave a nice day."
    assert pa.thought == "I need the weather.\nI now know the final answer" and pa.ok
    assert pa.calls[0].raw == 'Action: get_weather\nAction Input: {"city": "Paris"}'


def test_react_several_actions_fence_empty_input_and_case():
    text = (
        "Action: a\naction input: ```json\n{\"x\": 1}\n```\n"
        "ACTION: b\nAction Input:\n"
        "  Action : c\n  Action Input : {\"y\": [1, {\"z\": null}]}"
    )
    pa = parse(text, "react")
    assert kv(pa) == [("a", {"x": 1}), ("b", {}), ("c", {"y": [1, {"z": None}]})] and pa.ok


def test_react_chinese_and_multiline_json():
    pa = parse('思考\nAction: 查询天气\nAction Input: {\n  "城市": "北京",\n  "天数": 2\n}', "react")
    assert kv(pa) == [("查询天气", {"城市": "北京", "天数": 2})] and pa.thought == "思考"


def test_react_invalid_json_keeps_fragment():
    text = 'Thought: go\nAction: w\nAction Input: {"city": Paris}\n'
    pa = parse(text, "react")
    assert pa.calls == ()
    (issue,) = pa.issues
    assert issue.kind == "invalid_json" and issue.fragment == '{"city": Paris}'
    assert issue.line == 3 and text[issue.offset] == "P"


@pytest.mark.parametrize(
    "text, kind",
    [
        ("Action: w\n", "missing_field"),
        ("Action: w\nObservation: x", "missing_field"),
        ('Action Input: {"a": 1}', "missing_field"),
        ("Action:\nAction Input: {}", "missing_field"),
        ("Action: w\nAction Input: [1, 2]", "wrong_type"),
        ('Action: w\nAction Input: "Paris"', "wrong_type"),
        ("Action: w\nAction Input: Paris", "invalid_json"),
    ],
)
def test_react_malformed(text, kind):
    pa = parse(text, "react")
    assert pa.calls == () and [i.kind for i in pa.issues] == [kind]
    assert pa.issues[0].fragment


def test_react_trailing_text_after_input():
    pa = parse('Action: w\nAction Input: {"a": 1} and then some', "react")
    assert kv(pa) == [("w", {"a": 1})] and [i.kind for i in pa.issues] == ["trailing_text"]
    assert pa.issues[0].fragment == "and then some"


def test_react_no_structure():
    pa = parse("Just chatting, no format.", "react")
    assert pa.final_answer is None and [i.kind for i in pa.issues] == ["no_structure"]
    assert pa.issues[0].fragment == "Just chatting, no format."
    pa = parse("Thought: hmm", "react")
    assert pa.thought == "hmm" and pa.issues[0].kind == "no_structure"


def test_react_give_up():
    pa = parse(render_give_up("react", reason="no tool can do this"), "react")
    assert pa.give_up and pa.thought == "no tool can do this" and pa.ok


def test_react_render_rules():
    assert render_calls([ToolCall("w", {"c": "x"})], "react", thought="t") == 'Thought: t\nAction: w\nAction Input: {"c": "x"}'
    assert render_final_answer("42", "react", thought="done") == "Thought: done\nFinal Answer: 42"
    with pytest.raises(ValueError):
        render_calls([ToolCall("a", {}), ToolCall("b", {})], "react")
    with pytest.raises(ValueError):
        render_calls([ToolCall("a", {})], "react", thought="ok\nAction: sneaky")
    with pytest.raises(ValueError):
        render_calls([ToolCall("two\nlines", {})], "react")


# --- toolllama --------------------------------------------------------------------------------


def test_toolllama_call():
    text = 'Thought: look it up\nAction: search_for_weather\nAction Input: {"q": "Paris"}'
    pa = parse(text, "toolllama")
    assert kv(pa) == [("search_for_weather", {"q": "Paris"})] and pa.thought == "look it up" and pa.ok


def test_toolllama_finish_give_answer():
    text = 'Thought: done\nAction: Finish\nAction Input: {"return_type": "give_answer", "final_answer": "晴天"}'
    pa = parse(text, "toolllama")
    assert pa.final_answer == "晴天" and pa.calls == () and not pa.give_up and pa.ok


def test_toolllama_give_up_and_restart():
    text = 'Thought: cannot\nAction: Finish\nAction Input: {"return_type": "give_up_and_restart"}'
    pa = parse(text, "toolllama")
    assert pa.give_up and pa.final_answer is None and pa.thought == "cannot" and pa.ok


@pytest.mark.parametrize(
    "payload, kind",
    [
        ('{"return_type": "give_answer"}', "missing_field"),
        ("{}", "missing_field"),
        ('{"return_type": "shrug"}', "invalid_value"),
        ('{"return_type": "give_answer", "final_answer": 42}', "wrong_type"),
    ],
)
def test_toolllama_bad_finish(payload, kind):
    pa = parse(f"Action: Finish\nAction Input: {payload}", "toolllama")
    assert pa.final_answer is None and not pa.give_up and [i.kind for i in pa.issues] == [kind]


def test_toolllama_requires_structure():
    assert parse("Final Answer: 3", "toolllama").issues[0].kind == "no_structure"
    assert parse("plain words", "toolllama").issues[0].kind == "no_structure"
    # Finish is only special in toolllama.
    assert kv(parse("Action: Finish\nAction Input: {}", "react")) == [("Finish", {})]
    with pytest.raises(ValueError):
        render_calls([ToolCall("Finish", {})], "toolllama")


def test_toolllama_several_actions_fence_chinese_and_bad_json():
    text = (
        "Thought: 先查天气\nAction: 查询天气\nAction Input: ```json\n{\"城市\": \"北京\"}\n```\n"
        "Observation: {\"天气\": \"晴\"}\n"
        "Thought: then the bad one\nAction: broken\nAction Input: {\"a\": 1,,}\n"
        "Action: third\nAction Input: {}"
    )
    pa = parse(text, "toolllama")
    assert kv(pa) == [("查询天气", {"城市": "北京"}), ("third", {})]
    assert pa.thought == "先查天气\nthen the bad one"
    (issue,) = pa.issues
    assert issue.kind == "invalid_json" and issue.fragment == '{"a": 1,,}' and issue.line == 9
