"""pythonic (BFCL) calls: parse_python_calls and the "pythonic" template."""

from __future__ import annotations

import pytest

from toolgym.env.parsers import parse, render_calls
from toolgym.env.parsers.pythonic import parse_python_calls, parse_python_calls_lenient
from toolgym.env.types import ToolCall, ToolParseError


def kv(calls):
    return [(c.name, c.arguments) for c in calls]


def test_list_of_calls_with_dotted_name():
    calls = parse_python_calls("[get_weather(city='Paris', days=3), math.hypot(x=4, y=5)]")
    assert kv(calls) == [("get_weather", {"city": "Paris", "days": 3}), ("math.hypot", {"x": 4, "y": 5})]
    assert calls[0].raw == "get_weather(city='Paris', days=3)"


def test_bare_call_and_one_per_line():
    assert kv(parse_python_calls("cd(folder='document')")) == [("cd", {"folder": "document"})]
    text = "cd(folder='document')\nmv(source='a.txt', destination='b')\n"
    assert kv(parse_python_calls(text)) == [("cd", {"folder": "document"}), ("mv", {"source": "a.txt", "destination": "b"})]


def test_literal_values():
    calls = parse_python_calls(
        "f(a=-3, b=2.5e-3, c=True, d=None, e=(1, 2), f=[1, [2, -3.5]], g={'k': {'n': [None, False]}}, h=\"it's\", i='中文')"
    )
    assert calls[0].arguments == {
        "a": -3, "b": 2.5e-3, "c": True, "d": None, "e": [1, 2], "f": [1, [2, -3.5]],
        "g": {"k": {"n": [None, False]}}, "h": "it's", "i": "中文",
    }


def test_unicode_names_and_empty_text():
    assert kv(parse_python_calls("[查询(城市='北京')]")) == [("查询", {"城市": "北京"})]
    assert parse_python_calls("") == []
    assert parse_python_calls("[]") == []


def test_positional_args_rejected_unless_allowed():
    with pytest.raises(ToolParseError) as e:
        parse_python_calls("sort('final_report.pdf')")
    (issue,) = e.value.issues
    assert issue.kind == "positional_arg" and (issue.line, issue.column) == (1, 6)
    assert issue.fragment == "sort('final_report.pdf')"
    calls = parse_python_calls("sort('final_report.pdf')", allow_positional=True)
    assert kv(calls) == [("sort", {"__arg0": "final_report.pdf"})]
    calls = parse_python_calls("f(1, 'x', z=2)", allow_positional=True)
    assert calls[0].arguments == {"__arg0": 1, "__arg1": "x", "z": 2}


@pytest.mark.parametrize(
    "text, kind, line, column",
    [
        ("f(a=x)", "non_literal", 1, 5),
        ("f(a=g())", "non_literal", 1, 5),
        ("f(\n  b=1,\n  a=os.path)", "non_literal", 3, 5),
        ("f(名字='中文', b=k)", "non_literal", 1, 14),
        ("f(a={1, 2})", "wrong_type", 1, 5),
        ("f(a=b'x')", "wrong_type", 1, 5),
        ("f(a=1j)", "wrong_type", 1, 5),
        ("f(a={1: 'x'})", "wrong_type", 1, 5),
        ("f(**kw)", "wrong_type", 1, 5),
        ("x = 1", "not_a_call", 1, 1),
        ("[1, f(a=1)]", "not_a_call", 1, 2),
        ("f(a=1)(b=2)", "wrong_type", 1, 1),
        ("f(a=", "invalid_syntax", 1, 2),
        ("f(a=1) g(b=2)", "invalid_syntax", 1, 8),
    ],
)
def test_errors_point_at_line_and_column(text, kind, line, column):
    with pytest.raises(ToolParseError) as e:
        parse_python_calls(text)
    issue = e.value.issues[0]
    assert issue.kind == kind, issue
    assert (issue.line, issue.column) == (line, column), issue
    assert issue.fragment


def test_lenient_keeps_good_calls():
    calls, issues = parse_python_calls_lenient("[f(a=1), g(b=x), h(c='ok')]")
    assert kv(calls) == [("f", {"a": 1}), ("h", {"c": "ok"})]
    assert [i.kind for i in issues] == ["non_literal"]
    assert issues[0].fragment == "g(b=x)"


def test_never_evaluates():
    with pytest.raises(ToolParseError):
        parse_python_calls("f(a=__import__('os').system('echo pwned'))")


def test_invalid_text():
    with pytest.raises(ToolParseError) as e:
        parse_python_calls("f(a='\ud800')")
    assert e.value.issues[0].kind == "invalid_text"
    with pytest.raises(ToolParseError) as e:
        parse_python_calls("f(a='\x00')")
    assert e.value.issues[0].kind == "invalid_syntax"


# --- template ------------------------------------------------------------------------------------


def test_template_variants():
    pa = parse("[f(a=1), g.h(b='x')]", "pythonic")
    assert kv(pa.calls) == [("f", {"a": 1}), ("g.h", {"b": "x"})] and pa.ok
    pa = parse("I will check.\n[f(a=1)]", "pythonic")
    assert kv(pa.calls) == [("f", {"a": 1})] and pa.thought == "I will check."
    pa = parse("Here:\n```python\n[f(a=1)]\n```", "pythonic")
    assert kv(pa.calls) == [("f", {"a": 1})] and pa.thought == "Here:"
    pa = parse("```\nf(a=1)\ng(b=2)\n```", "pythonic")
    assert kv(pa.calls) == [("f", {"a": 1}), ("g", {"b": 2})]


def test_template_plain_answers():
    for text in ("The weather is sunny.", "See [ref(1)] for details", "Paris (France)", "  spaced  "):
        pa = parse(text, "pythonic")
        assert pa.final_answer == text.strip() and pa.calls == () and pa.ok, text


def test_template_empty_list_and_bad_calls():
    pa = parse("[]", "pythonic")
    assert pa.calls == () and pa.final_answer is None and pa.ok
    pa = parse("[f(a=1), g(b=)]", "pythonic")
    assert pa.calls == () and pa.final_answer is None
    assert pa.issues[0].kind == "invalid_syntax" and pa.issues[0].fragment == "[f(a=1), g(b=)]"


def test_template_offsets_after_chatter():
    pa = parse("Sure.\n[f(a=x)]", "pythonic")
    (issue,) = pa.issues
    assert issue.kind == "non_literal" and (issue.line, issue.column) == (2, 6) and issue.offset == 11


def test_render():
    calls = [ToolCall("f", {"a": 1, "b": "x'y\"z", "c": [1.5, None, {"k": True}]}), ToolCall("m.g", {})]
    text = render_calls(calls, "pythonic")
    assert text == "[f(a=1, b='x\\'y\"z', c=[1.5, None, {'k': True}]), m.g()]"
    assert kv(parse(text, "pythonic").calls) == kv(calls)
    for bad in (ToolCall("a-b", {}), ToolCall("f", {"class": 1}), ToolCall("f", {"a b": 1}), ToolCall("f", {"a": float("nan")})):
        with pytest.raises(ValueError):
            render_calls([bad], "pythonic")


def test_render_give_up_marker_inside_string_argument():
    calls = [ToolCall("f", {"s": "<give_up>x</give_up>"})]
    pa = parse(render_calls(calls, "pythonic"), "pythonic")
    assert kv(pa.calls) == kv(calls) and not pa.give_up


def test_bfcl_multi_turn_ground_truth_strings():
    gt = ["cd(folder='document')", "mkdir(dir_name='temp')", "mv(source='final_report.pdf', destination='temp')"]
    assert [c.name for s in gt for c in parse_python_calls(s)] == ["cd", "mkdir", "mv"]
    assert parse_python_calls("sort('final_report.pdf')", allow_positional=True)[0].arguments == {"__arg0": "final_report.pdf"}
