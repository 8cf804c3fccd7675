"""Template detection, parse(template=None), parse_strict and argument checking."""

from __future__ import annotations

import json

import pytest

from toolgym.env.parsers import TEMPLATES, detect_template, parse, parse_strict, render_calls, render_final_answer, render_give_up
from toolgym.env.types import ToolCall, ToolParseError

CALL = [ToolCall("get_weather", {"city": "Paris"})]


@pytest.mark.parametrize("template", TEMPLATES)
def test_rendered_calls_are_detected(template):
    got = detect_template(render_calls(CALL, template, thought="check the weather"))
    # react and toolllama share their call syntax; either parses the call identically.
    assert got == template or {got, template} == {"react", "toolllama"}


@pytest.mark.parametrize("template", ["react", "toolllama", "autogpt", "openai"])
def test_rendered_answers_and_give_ups_are_detected(template):
    fa = render_final_answer("42", template, thought="done")
    assert detect_template(fa) == template
    assert parse(fa).final_answer == "42"
    assert parse(render_give_up(template, reason="no")).give_up


def test_react_vs_toolllama():
    assert detect_template('Action: w\nAction Input: {}') == "react"
    assert detect_template("Thought: x\nFinal Answer: 3") == "react"
    assert detect_template('Thought: x\nAction: Finish\nAction Input: {"return_type": "give_answer", "final_answer": "3"}') == "toolllama"
    assert detect_template('Action: Finish\nAction Input: {"return_type": "give_up_and_restart"}') == "toolllama"
    # A Final Answer line keeps it ReAct even if a tool is called Finish.
    assert detect_template("Action: Finish\nAction Input: {}\nFinal Answer: ok") == "react"


def test_openai_vs_autogpt():
    assert detect_template(json.dumps({"thoughts": {"text": "t"}, "command": {"name": "s", "args": {}}})) == "autogpt"
    assert detect_template(json.dumps({"tool_calls": [{"type": "function", "function": {"name": "command", "arguments": "{}"}}]})) == "openai"
    assert detect_template(json.dumps({"role": "assistant", "content": "hi"})) == "openai"


def test_earliest_marker_wins():
    hermes = '<tool_call>\n{"name": "note", "arguments": {"text": "Action: x\\nFinal Answer: y"}}\n</tool_call>'
    assert detect_template(hermes) == "hermes"
    react = 'Action: note\nAction Input: {"text": "<tool_call> and <|startofthink|>"}'
    assert detect_template(react) == "react"
    assert [c.name for c in parse(react).calls] == ["note"]


def test_pythonic_and_plain():
    assert detect_template("[f(a=1)]") == "pythonic"
    assert detect_template("cd(folder='x')") == "pythonic"
    for text in ("The answer is 42.", "", "Paris (France) is nice", "<reward>1.0</reward>"):
        assert detect_template(text) is None
        pa = parse(text)
        assert pa.template == "plain" and pa.final_answer == text.strip() and pa.ok


def test_think_prefix_does_not_confuse_detection():
    text = "<think>\nMaybe Action: foo?\n</think>\n\nThe answer is 4."
    assert detect_template(text) is None
    pa = parse(text)
    assert pa.final_answer == "The answer is 4." and pa.thought == "Maybe Action: foo?"
    pa = parse("<think>never closed", "hermes")
    assert pa.thought == "never closed" and pa.final_answer is None and pa.issues[0].kind == "unterminated_tag"


def test_unknown_template_raises():
    with pytest.raises(ValueError, match="openai"):
        parse("x", "nope")
    with pytest.raises(ValueError):
        render_calls(CALL, "nope")


def test_parse_strict():
    assert parse_strict(render_calls(CALL, "hermes")).calls[0].name == "get_weather"
    with pytest.raises(ToolParseError) as e:
        parse_strict("Action: w\nAction Input: {oops}", "react")
    assert e.value.issues[0].kind == "invalid_json" and "react" in str(e.value)


def test_non_str_input_does_not_raise():
    assert parse(b"\xff\xfeplain bytes", "hermes").final_answer.endswith("plain bytes")
    assert parse(None, "openai").final_answer == ""  # type: ignore[arg-type]
