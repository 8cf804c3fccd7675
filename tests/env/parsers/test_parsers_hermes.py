"""hermes (Hermes/Qwen <tool_call>) parsing."""

from __future__ import annotations

from toolgym.env.parsers import parse, render_calls
from toolgym.env.types import ToolCall

T = "hermes"


def kv(pa):
    return [(c.name, c.arguments) for c in pa.calls]


def test_single_call():
    text = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    pa = parse(text, T)
    assert pa.ok and kv(pa) == [("get_weather", {"city": "Paris"})]
    assert pa.calls[0].raw == text and pa.final_answer is None and pa.thought is None


def test_several_calls_and_thought_outside():
    text = (
        "I need both cities.\n"
        '<tool_call>\n{"name": "w", "arguments": {"city": "Paris"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "w", "arguments": {"city": "Rome"}}\n</tool_call>\nDone.'
    )
    pa = parse(text, T)
    assert kv(pa) == [("w", {"city": "Paris"}), ("w", {"city": "Rome"})]
    assert pa.thought == "I need both cities.\nDone." and pa.final_answer is None and pa.ok


def test_list_in_block_string_arguments_and_aliases():
    text = '<tool_call>[{"name": "a", "arguments": "{\\"x\\": 1}"}, {"name": "b", "parameters": {"y": 2}}, {"name": "c"}]</tool_call>'
    pa = parse(text, T)
    assert pa.ok and kv(pa) == [("a", {"x": 1}), ("b", {"y": 2}), ("c", {})]


def test_code_fence_and_think_block():
    text = '<think>\nweather first\n</think>\n\n<tool_call>\n```json\n{"name": "w", "arguments": {"city": "北京"}}\n```\n</tool_call>'
    pa = parse(text, T)
    assert pa.ok and kv(pa) == [("w", {"city": "北京"})] and pa.thought == "weather first"


def test_unicode_names():
    pa = parse('<tool_call>{"name": "查询天气", "arguments": {"城市": "上海", "天数": 3}}</tool_call>', T)
    assert kv(pa) == [("查询天气", {"城市": "上海", "天数": 3})]


def test_invalid_json_keeps_fragment_and_position():
    body = '{"name": "w", "arguments": {"city": "Paris",}}'
    text = f"Let me look.\n<tool_call>\n{body}\n</tool_call>"
    pa = parse(text, T)
    assert pa.calls == ()
    (issue,) = pa.issues
    assert issue.kind == "invalid_json" and issue.fragment == f"\n{body}\n"
    assert issue.line == 3 and text[issue.offset] == "}"


def test_bad_calls_are_left_out_but_good_ones_kept():
    text = (
        '<tool_call>{"name": "ok", "arguments": {}}</tool_call>'
        '<tool_call>{"arguments": {"a": 1}}</tool_call>'
        '<tool_call>{"name": "lst", "arguments": [1, 2]}</tool_call>'
        '<tool_call>{"name": "str", "arguments": "{not json"}</tool_call>'
        '<tool_call>{"name": 5, "arguments": {}}</tool_call>'
        '<tool_call>"just a string"</tool_call>'
    )
    pa = parse(text, T)
    assert kv(pa) == [("ok", {})]
    assert [i.kind for i in pa.issues] == ["missing_field", "wrong_type", "invalid_json", "wrong_type", "wrong_type"]
    assert pa.issues[2].fragment == "{not json"  # the full arguments string


def test_unterminated_tag():
    pa = parse('<tool_call>\n{"name": "w", "arguments": {"city": "Paris"}}\n', T)
    assert kv(pa) == [("w", {"city": "Paris"})]
    assert [i.kind for i in pa.issues] == ["unterminated_tag"]
    pa = parse('<tool_call>\n{"name": "w", "argu', T)
    assert pa.calls == () and [i.kind for i in pa.issues] == ["unterminated_tag", "invalid_json"]


def test_stray_closing_tag():
    pa = parse('oops </tool_call>', T)
    assert pa.calls == () and pa.final_answer is None and pa.issues[0].kind == "unexpected_tag"


def test_plain_text_is_final_answer():
    pa = parse("  The answer is 42. <reward>1.0</reward>\n", T)
    assert pa.ok and pa.final_answer == "The answer is 42. <reward>1.0</reward>" and pa.calls == ()


def test_render_escapes_closing_tag_in_arguments():
    calls = [ToolCall("f", {"s": "</tool_call><tool_call>", "t": "<give_up>"})]
    text = render_calls(calls, T)
    assert text.count("</tool_call>") == 1
    pa = parse(text, T)
    assert kv(pa) == [("f", {"s": "</tool_call><tool_call>", "t": "<give_up>"})] and pa.ok and not pa.give_up
