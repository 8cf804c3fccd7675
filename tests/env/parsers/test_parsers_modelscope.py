"""modelscope (<|startofthink|> JSON) parsing."""

from __future__ import annotations

import pytest

from toolgym.env.parsers import parse, render_calls
from toolgym.env.types import ToolCall

T = "modelscope"


def kv(pa):
    return [(c.name, c.arguments) for c in pa.calls]


def block(body: str) -> str:
    return f"<|startofthink|>```JSON\n{body}\n```<|endofthink|>"


def test_call_with_thought():
    text = "我需要查询地址。" + block('{"api_name": "modelscope_text-address", "parameters": {"input": "浙江杭州"}}')
    pa = parse(text, T)
    assert kv(pa) == [("modelscope_text-address", {"input": "浙江杭州"})] and pa.thought == "我需要查询地址。" and pa.ok


def test_without_fence_missing_parameters_and_several_blocks():
    text = '<|startofthink|>{"api_name": "a"}<|endofthink|>\n' + block('{"api_name": "b", "parameters": {"k": [1]}}')
    pa = parse(text, T)
    assert kv(pa) == [("a", {}), ("b", {"k": [1]})] and pa.ok


def test_model_written_exec_block_is_ignored():
    text = block('{"api_name": "a", "parameters": {}}') + '<|startofexec|>```JSON\n{"result": "fake"}\n```<|endofexec|>\nThe answer is fake.'
    pa = parse(text, T)
    assert kv(pa) == [("a", {})] and pa.thought == "The answer is fake." and pa.final_answer is None


@pytest.mark.parametrize(
    "body, kind",
    [
        ('{"api_name": "a", "parameters": {"x": }}', "invalid_json"),
        ('{"parameters": {}}', "missing_field"),
        ('{"api_name": "a", "parameters": [1]}', "wrong_type"),
        ('["api_name"]', "wrong_type"),
    ],
)
def test_malformed(body, kind):
    pa = parse(block(body), T)
    assert pa.calls == () and [i.kind for i in pa.issues] == [kind] and pa.final_answer is None
    assert pa.issues[0].fragment


def test_invalid_json_fragment_is_full_block_body():
    body = '{"api_name": "a", "parameters": {"x": }}'
    pa = parse(block(body), T)
    assert pa.issues[0].fragment == f"```JSON\n{body}\n```"


def test_unterminated_and_plain_answer():
    pa = parse('<|startofthink|>```JSON\n{"api_name": "a", "parameters": {}}\n```', T)
    assert kv(pa) == [("a", {})] and [i.kind for i in pa.issues] == ["unterminated_tag"]
    pa = parse("杭州的天气是晴天。", T)
    assert pa.final_answer == "杭州的天气是晴天。" and pa.ok


def test_render_one_call_and_escapes():
    with pytest.raises(ValueError):
        render_calls([ToolCall("a", {}), ToolCall("b", {})], T)
    calls = [ToolCall("a", {"s": "<|endofthink|>```<|startofexec|>"})]
    pa = parse(render_calls(calls, T), T)
    assert kv(pa) == [("a", {"s": "<|endofthink|>```<|startofexec|>"})] and pa.ok
