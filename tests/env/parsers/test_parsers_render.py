"""System prompts, observations and renderer argument checks."""

from __future__ import annotations

import json

import pytest

from toolgym.env.parsers import (
    DEFAULT_INSTRUCTIONS,
    MULTI_CALL_TEMPLATES,
    TEMPLATES,
    parse,
    render_calls,
    render_final_answer,
    render_give_up,
    render_observation,
    render_system_prompt,
)
from toolgym.env.types import ToolCall, ToolSpec

TOOLS = [
    ToolSpec("get_weather", "Current weather for a city.", {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    ToolSpec("查询股票", "查询股价", {"type": "object", "properties": {"代码": {"type": "string"}}}),
]


@pytest.mark.parametrize("template", TEMPLATES)
def test_system_prompt_holds_tool_specs_and_instructions(template):
    text = render_system_prompt(TOOLS, template)
    assert text.startswith(DEFAULT_INSTRUCTIONS)
    for t in TOOLS:
        assert t.name in text and json.dumps(t.parameters, ensure_ascii=False) in text
    custom = render_system_prompt(TOOLS, template, instructions="Be brief.")
    assert custom.startswith("Be brief.\n\n") and DEFAULT_INSTRUCTIONS not in custom
    assert not render_system_prompt(TOOLS, template, instructions="").startswith("\n")


@pytest.mark.parametrize(
    "template, expected",
    [
        ("react", "Observation: sunny"),
        ("toolllama", "Observation: sunny"),
        ("hermes", '<tool_response>\n{"name": "get_weather", "content": "sunny"}\n</tool_response>'),
        ("autogpt", "Command get_weather returned: sunny"),
        ("modelscope", '<|startofexec|>```JSON\n{"name": "get_weather", "result": "sunny"}\n```<|endofexec|>'),
        ("openai", '{"role": "tool", "tool_call_id": "call_0", "name": "get_weather", "content": "sunny"}'),
        ("pythonic", '{"name": "get_weather", "result": "sunny"}'),
    ],
)
def test_observations(template, expected):
    assert render_observation([("get_weather", "sunny")], template) == expected
    two = render_observation([("a", "1"), ("b", "2")], template)
    assert "1" in two and "2" in two


@pytest.mark.parametrize("template", TEMPLATES)
def test_render_argument_checks(template):
    with pytest.raises(ValueError):
        render_calls([], template)
    with pytest.raises(ValueError):
        render_calls([ToolCall("", {})], template)
    two = [ToolCall("a", {}), ToolCall("b", {"x": 1})]
    if template in MULTI_CALL_TEMPLATES:
        assert [c.name for c in parse(render_calls(two, template), template).calls] == ["a", "b"]
    else:
        with pytest.raises(ValueError):
            render_calls(two, template)


@pytest.mark.parametrize("template", TEMPLATES)
def test_empty_reason_give_up_and_multiline_answer(template):
    pa = parse(render_give_up(template), template)
    assert pa.give_up and pa.ok
    answer = "Line one.\nLine two: 中文。"
    assert parse(render_final_answer(answer, template), template).final_answer == answer


@pytest.mark.parametrize("fn", [render_final_answer, render_observation])
def test_unknown_template(fn):
    with pytest.raises(ValueError):
        fn("x", "nope") if fn is render_final_answer else fn([("a", "b")], "nope")
    with pytest.raises(ValueError):
        render_system_prompt(TOOLS, "nope")
    with pytest.raises(ValueError):
        render_give_up("nope")
