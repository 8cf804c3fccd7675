"""Property tests: render → parse round-trips for every template."""

from __future__ import annotations


import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolgym.env.parsers import (
    MULTI_CALL_TEMPLATES,
    TEMPLATES,
    detect_template,
    parse,
    render_calls,
    render_final_answer,
    render_give_up,
)
from toolgym.env.parsers.pythonic import is_dotted_name, is_identifier
from toolgym.env.types import ToolCall

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

# --- names -----------------------------------------------------------------------------------

_ascii_ident = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
_unicode_ident = st.text(
    alphabet=st.characters(categories=("Lu", "Ll", "Lo"), max_codepoint=0x2FFFF), min_size=1, max_size=8
).map(lambda s: s + "_x")
_segment = st.one_of(_ascii_ident, _unicode_ident)
_dotted = st.lists(_segment, min_size=1, max_size=3).map(".".join)

RESERVED = {"finish", "task_complete", "give_up"}


def _name_ok(template: str, name: str) -> bool:
    if name.lower() in RESERVED:
        return False
    if template == "pythonic":
        return is_dotted_name(name)
    return True


# --- JSON values -------------------------------------------------------------------------------

_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
_json = st.recursive(
    _scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=8,
)
_py_key = st.one_of(_ascii_ident, _unicode_ident).filter(lambda k: is_identifier(k))
_any_key = st.text(min_size=1, max_size=12)


@st.composite
def calls_for(draw, template: str):
    n = draw(st.integers(1, 3)) if template in MULTI_CALL_TEMPLATES else 1
    out = []
    for _ in range(n):
        name = draw(_dotted.filter(lambda s: _name_ok(template, s)))
        keys = _py_key if template == "pythonic" else _any_key
        args = draw(st.dictionaries(keys, _json, max_size=5))
        out.append(ToolCall(name=name, arguments=args))
    return out


def _key(calls):
    return [(c.name, c.arguments) for c in calls]


@pytest.mark.parametrize("template", TEMPLATES)
@SETTINGS
@given(data=st.data())
def test_calls_round_trip(template, data):
    calls = data.draw(calls_for(template))
    text = render_calls(calls, template)
    pa = parse(text, template)
    assert pa.issues == (), pa.issues
    assert _key(pa.calls) == _key(calls)
    assert pa.final_answer is None and not pa.give_up
    # Detection finds the same calls (react and toolllama share their call syntax).
    auto = parse(text)
    assert _key(auto.calls) == _key(calls)
    assert auto.template == template or {auto.template, template} == {"react", "toolllama"}


# --- answers ---------------------------------------------------------------------------------

_MARKERS = ("<tool_call>", "</tool_call>", "<|startofthink|>", "<|endofthink|>", "<|startofexec|>", "<give_up>", "<think>", "```")


def _plain_answer(a: str) -> bool:
    return bool(a) and a == a.strip() and not any(m in a for m in _MARKERS) and detect_template(a) is None


_answers = st.text(min_size=1, max_size=80).filter(_plain_answer)
_thoughts = st.text(alphabet=st.characters(categories=("L", "N", "Zs", "P")), min_size=1, max_size=40).map(str.strip).filter(_plain_answer)


@pytest.mark.parametrize("template", TEMPLATES)
@SETTINGS
@given(answer=_answers)
def test_final_answer_round_trip(template, answer):
    pa = parse(render_final_answer(answer, template), template)
    assert pa.final_answer == answer
    assert pa.calls == () and pa.issues == () and not pa.give_up


@pytest.mark.parametrize("template", TEMPLATES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(answer=_answers, thought=_thoughts)
def test_final_answer_with_thought_round_trip(template, answer, thought):
    pa = parse(render_final_answer(answer, template, thought=thought), template)
    assert pa.final_answer == answer
    assert pa.thought == thought
    assert pa.issues == ()


@pytest.mark.parametrize("template", TEMPLATES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(data=st.data(), thought=_thoughts)
def test_calls_with_thought_round_trip(template, data, thought):
    calls = data.draw(calls_for(template))
    pa = parse(render_calls(calls, template, thought=thought), template)
    assert pa.issues == ()
    assert _key(pa.calls) == _key(calls)
    assert pa.thought == thought


@pytest.mark.parametrize("template", TEMPLATES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(reason=_thoughts)
def test_give_up_round_trip(template, reason):
    text = render_give_up(template, reason=reason)
    pa = parse(text, template)
    assert pa.give_up and pa.issues == () and pa.calls == () and pa.final_answer is None
    assert pa.thought == reason
    assert parse(text).give_up


# --- arbitrary text never breaks the parser ----------------------------------------------------

_noise = st.one_of(
    st.text(max_size=200),
    st.lists(
        st.sampled_from(
            [
                "<tool_call>", "</tool_call>", "{", "}", "[", "]", '"name"', '"arguments"', ":", ",", "\n", "Action:",
                "Action Input:", "Thought:", "Final Answer:", "Observation:", "<|startofthink|>", "<|endofthink|>",
                "```JSON\n", "```", '"api_name"', '"parameters"', '"command"', '"args"', '"tool_calls"', "f(", ")",
                "a=1", "'x'", "<think>", "</think>", "<give_up>", "Finish", '"return_type"', "\x00", "\ud800", "中文",
                "<reward>1.0</reward>", '"give_answer"', "null", "1e999", "NaN",
            ]
        ),
        max_size=40,
    ).map("".join),
)


@SETTINGS
@given(text=_noise)
def test_parse_never_raises(text):
    for template in (None, *TEMPLATES):
        pa = parse(text, template)
        assert all(i.kind != "internal_error" for i in pa.issues), pa.issues
        for c in pa.calls:
            assert isinstance(c.name, str) and isinstance(c.arguments, dict)
        for i in pa.issues:
            assert -1 <= i.offset <= len(text)
