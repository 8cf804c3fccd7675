"""Model text in: whatever the model writes, a parsed action is safe to encode (issue 11)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolgym.env.parsers import TEMPLATES, parse, render_calls
from toolgym.env.textsafe import clean_json, clean_text, first_unencodable, unencodable_path
from toolgym.env.types import ToolCall, ToolSpec

TOOLS = [ToolSpec("f", "", {"type": "object", "properties": {"s": {"type": "string"}, "n": {"type": "integer"}}})]

# Any code point, lone surrogates included, mixed with each template's markers and escapes.
_chars = st.characters(min_codepoint=0, max_codepoint=0x10FFFF)
_bits = st.sampled_from([
    "<tool_call>", "</tool_call>", '{"name": "f", "arguments": {"s": "', '"}}', "\\ud800", "\\udfff", "\\u0000",
    "Action: f\nAction Input: {\"s\": \"", "[f(s='", "')]", "f('", "<think>", "</think>", "<|startofthink|>",
    '{"tool_calls": [{"function": {"name": "f", "arguments": "{\\"s\\": \\"', '{"command": {"name": "f", "args": {"s": "',
    "\ud800", "\udc00", "\x00", "中文",
])
_text = st.one_of(st.text(_chars, max_size=120), st.lists(st.one_of(_bits, st.text(_chars, max_size=4)), max_size=24).map("".join))


def _encodes(pa) -> None:
    for c in pa.calls:
        c.name.encode("utf-8")
        assert unencodable_path(c.arguments) is None
    for s in (pa.thought, pa.final_answer, pa.template):
        if s is not None:
            s.encode("utf-8")
    for i in pa.issues:
        i.message.encode("utf-8"), i.fragment.encode("utf-8"), str(i).encode("utf-8")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_text)
def test_every_template_returns_encodable_actions(text):
    for template in (None, *TEMPLATES):
        pa = parse(text, template, TOOLS)
        assert all(i.kind != "internal_error" for i in pa.issues), pa.issues
        _encodes(pa)
        if first_unencodable(text) >= 0:
            assert pa.calls == () and [i.kind for i in pa.issues] == ["invalid_text"]


@pytest.mark.parametrize("template", TEMPLATES)
def test_escaped_surrogate_drops_only_that_call(template):
    good = render_calls([ToolCall("f", {"s": "ok"})], template)
    poison = render_calls([ToolCall("f", {"s": "POISON"})], template).replace("POISON", "\\ud800")
    text = good + "\n" + poison if template == "hermes" else poison
    if template == "pythonic":
        text = "[f(s='ok'), f(s='\\ud800')]"
    pa = parse(text, template, TOOLS)
    _encodes(pa)
    assert "invalid_text" in [i.kind for i in pa.issues], pa
    if template in ("hermes", "pythonic"):
        assert [c.arguments for c in pa.calls] == [{"s": "ok"}]


def test_raw_surrogate_says_where():
    pa = parse('<tool_call>{"name": "f", "arguments": {"s": "\ud800"}}</tool_call>', "hermes")
    (issue,) = pa.issues
    assert issue.kind == "invalid_text" and "U+D800" in issue.message and issue.offset == 45
    assert "\ufffd" in issue.fragment


def test_clean_helpers():
    assert clean_text("a\ud800b") == "a\ufffdb"
    assert clean_json({"k\udc00": ["x", "\ud800"], "n": 1}) == {"k\ufffd": ["x", "\ufffd"], "n": 1}
    assert unencodable_path({"a": [1, {"b": "\ud800"}]}) == "a[1].b"
    assert first_unencodable("abc") == -1


# --- <think> anywhere but the start (issue 11 item 9) ------------------------------------------

@pytest.mark.parametrize("template", TEMPLATES)
def test_calls_after_a_misplaced_think_do_not_run(template):
    call = render_calls([ToolCall("f", {"s": "x"})], template)
    for text in (f"Let me see. <think>{call}</think>", f"{call}\n<think>maybe not</think>", f"<think>ok</think>{call}<think>"):
        pa = parse(text, template, TOOLS)
        assert pa.calls == () and [i.kind for i in pa.issues] == ["misplaced_think"], (text, pa)
        assert pa.final_answer is None


@pytest.mark.parametrize("template", TEMPLATES)
def test_leading_think_still_fine_and_tags_in_arguments_round_trip(template):
    call = ToolCall("f", {"s": "a <think> b"})
    pa = parse("<think>plan</think>" + render_calls([call], template), template, TOOLS)
    assert pa.ok and pa.thought == "plan" and [c.arguments for c in pa.calls] == [call.arguments]
