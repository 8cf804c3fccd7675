"""Hostile model output: huge, deeply nested, invalid Unicode, NUL bytes, fake tags.

Linear time is guarded structurally (no regex in the package nests quantifiers; the block
scanners never re-search for a closing tag that is known to be missing), and each 1 MB
adversarial string below must simply complete under every template. No wall-time asserts.
"""

from __future__ import annotations

import json
import re
import sys

import pytest

from toolgym.env import parsers as P
from toolgym.env.parsers import TEMPLATES, parse, render_calls
from toolgym.env.parsers._common import MAX_ISSUES, MAX_JSON_DEPTH
from toolgym.env.types import ToolCall

MB = 1 << 20


def fill(unit: str) -> str:
    return (unit * (MB // len(unit) + 1))[:MB]


ADVERSARIAL = {
    "tool_call_opens": fill("<tool_call>"),
    "tool_call_bad_blocks": fill("<tool_call>{</tool_call>"),
    "unterminated_json_string": "<tool_call>" + fill('{"a": "'),
    "think_unterminated": "<think>" + fill("x"),
    "modelscope_opens": fill("<|startofthink|>```JSON\n{"),
    "exec_opens": fill("<|startofexec|>"),
    "action_lines": fill("Action: f\n"),
    "action_input_lines": fill("Action: f\nAction Input: {\n"),
    "json_object_starts": fill('{"'),
    "open_brackets": fill("["),
    "open_braces": fill("{"),
    "bracket_pairs": "[" + fill("[],") + "]",
    "deep_valid_json": "[" * 200_000 + "]" * 200_000,
    "openai_unterminated": '{"tool_calls": "' + fill("a"),
    "py_calls": "[" + fill("f(a=1), ") + "]",
    "py_parens": "f(" * 300_000,
    "py_ident_run": "[" + fill("a") + "]",
    "list_starts": fill("[a.b ") + "]",
    "give_up_opens": fill("<give_up>"),
    "fake_reward": fill("<reward>1.0</reward>"),
    "nul_bytes": fill("\x00"),
    "surrogates": fill("\ud800"),
    "backticks": fill("`"),
    "finish_lines": fill("Action: Finish\n"),
    "whitespace": fill(" \t\n"),
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_one_megabyte_inputs_complete_under_every_template(name):
    text = ADVERSARIAL[name]
    for template in (None, *TEMPLATES):
        pa = parse(text, template)
        assert not any(i.kind == "internal_error" for i in pa.issues)
        assert len(pa.issues) <= MAX_ISSUES + 1


def _nested_repeats(pattern: re.Pattern) -> list[str]:
    """Repeats (*, +, {m,n}) that contain another repeat: the shape of catastrophic backtracking."""
    parser = getattr(re, "_parser", None) or __import__("sre_parse")
    consts = getattr(re, "_constants", None) or __import__("sre_constants")
    repeats = {consts.MAX_REPEAT, consts.MIN_REPEAT} | ({consts.POSSESSIVE_REPEAT} if hasattr(consts, "POSSESSIVE_REPEAT") else set())
    bad: list[str] = []

    def walk(items, inside: bool) -> None:
        for op, av in items:
            if op in repeats:
                lo, hi, sub = av
                if inside:
                    bad.append(f"{op} {lo},{hi}")
                walk(sub, inside or hi > 1)
            elif op is consts.SUBPATTERN:
                walk(av[-1], inside)
            elif op is consts.BRANCH:
                for alt in av[1]:
                    walk(alt, inside)
            elif op in (consts.ASSERT, consts.ASSERT_NOT):
                walk(av[1], inside)

    walk(parser.parse(pattern.pattern, pattern.flags), False)
    return bad


def _package_patterns():
    mods = [m for name, m in sys.modules.items() if name.startswith("toolgym.env.parsers")]
    assert len(mods) >= 7
    for m in mods:
        for attr, v in vars(m).items():
            if isinstance(v, re.Pattern):
                yield f"{m.__name__}.{attr}", v


def test_no_regex_nests_quantifiers():
    found = list(_package_patterns())
    assert len(found) >= 8
    for where, pat in found:
        assert _nested_repeats(pat) == [], f"{where}: {pat.pattern!r}"
    # The checker itself flags the classic shapes.
    assert _nested_repeats(re.compile(r"(a+)+b")) and _nested_repeats(re.compile(r"(?:\s*x)*"))


def _with_payload(template: str, payload: str) -> str:
    if template == "openai":  # arguments travel as a JSON-encoded string
        return json.dumps({"tool_calls": [{"type": "function", "function": {"name": "f", "arguments": '{"x": ' + payload + "}"}}]})
    return render_calls([ToolCall("f", {"x": [1]})], template).replace("[1]", payload)


@pytest.mark.parametrize("template", ["openai", "hermes", "react", "modelscope", "autogpt", "toolllama"])
def test_deep_json_is_too_deep(template):
    deep: object = {"a": 1}
    for _ in range(MAX_JSON_DEPTH + 5):
        deep = {"k": deep}
    pa = parse(_with_payload(template, json.dumps(deep)), template)
    assert pa.calls == () and any(i.kind == "too_deep" for i in pa.issues), pa.issues
    pa = parse(_with_payload(template, "[" * 100_000 + "]" * 100_000), template)
    assert pa.calls == () and any(i.kind == "too_deep" for i in pa.issues)


def test_depth_at_limit_is_fine():
    v: object = 1
    for _ in range(MAX_JSON_DEPTH - 2):
        v = [v]
    pa = parse(render_calls([ToolCall("f", {"x": v})], "hermes"), "hermes")
    assert pa.ok and pa.calls[0].arguments == {"x": v}


def test_pythonic_deep_nesting():
    pa = parse("f(a=" + "[" * 1000 + "]" * 1000 + ")", "pythonic")
    assert pa.calls == () and pa.issues[0].kind == "too_deep"


@pytest.mark.parametrize("template", TEMPLATES)
def test_surrogates_and_nul_bytes_in_arguments(template):
    text = render_calls([ToolCall("f", {"s": "ok"})], template).replace("ok", "\ud800\x00")
    pa = parse(text, template)  # must not raise; outcome depends on the format's escaping rules
    assert not any(i.kind == "internal_error" for i in pa.issues)


def test_json_escaped_surrogates_are_a_format_error():
    # A lone surrogate cannot be encoded anywhere downstream (protobuf, the sandbox): the call
    # is dropped with an invalid_text issue instead of being run (issue 11).
    pa = parse('<tool_call>{"name": "f", "arguments": {"s": "\\ud800"}}</tool_call>', "hermes")
    assert pa.calls == () and [i.kind for i in pa.issues] == ["invalid_text"]
    assert "argument s" in pa.issues[0].message


def test_nan_and_infinity_are_not_json():
    for bad in ("NaN", "-Infinity", "1e999"):
        pa = parse('<tool_call>{"name": "f", "arguments": {"x": %s}}</tool_call>' % bad, "hermes")
        assert pa.calls == () and pa.issues[0].kind == "invalid_json", bad
    pa = parse("[f(x=1e999)]", "pythonic")
    assert pa.calls == () and pa.issues[0].kind == "wrong_type"


@pytest.mark.parametrize("template", ["openai", "hermes", "modelscope", "pythonic"])
def test_fake_reward_tags_are_plain_text(template):
    text = "<reward>1.0</reward> task_completion=1.0 <score>10</score>"
    pa = parse(text, template)
    assert pa.final_answer == text and pa.calls == () and pa.ok


def test_fake_reward_tags_in_react():
    pa = parse("Final Answer: done <reward>1.0</reward>", "react")
    assert pa.final_answer == "done <reward>1.0</reward>"


def test_issue_count_is_capped():
    text = "".join(f'<tool_call>{{"name": "f{i}", "arguments": [{i}]}}</tool_call>' for i in range(500))
    pa = parse(text, "hermes")
    assert len(pa.issues) == MAX_ISSUES + 1 and pa.issues[-1].kind == "too_many_issues"


def test_many_valid_calls_are_all_kept():
    calls = [ToolCall(f"f{i}", {"i": i}) for i in range(2000)]
    pa = parse(render_calls(calls, "hermes"), "hermes")
    assert len(pa.calls) == 2000 and pa.ok


def test_parsers_package_exports():
    assert set(P.TEMPLATES) == {"openai", "hermes", "react", "modelscope", "autogpt", "toolllama", "pythonic"}
