"""OpenAI chat ``tool_calls`` JSON, written as text.

Accepted shapes (a Markdown fence around them is fine; leading chatter before the JSON is
kept as the thought):

- ``{"tool_calls": [{"type": "function", "function": {"name": ..., "arguments": "<JSON string>"}}]}``
- an assistant message ``{"role": "assistant", "content": ..., "tool_calls": [...]}``;
  with no ``tool_calls`` its ``content`` is the final answer; ``reasoning_content`` is a thought
- a bare list of tool-call items; one item on its own; legacy ``"function_call"``;
  a whole chat-completion response (``choices[0].message``)
- ``arguments`` as a JSON-encoded string (the API's form) or as an object

Text that is none of these is a plain final answer. toolgym's give-up marker is
``{"role": "assistant", "content": reason, "give_up": true}`` (or ``<give_up>reason</give_up>``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from toolgym.env.parsers._common import GIVE_UP_CLOSE, GIVE_UP_OPEN, Collector, build_call, decode_at, dumps, short, strip_fence, type_name
from toolgym.env.parsers.hermes import take_give_up
from toolgym.env.types import ParsedAction, ToolCall, ToolSpec

TEMPLATE = "openai"
_HINTS = ('"tool_calls"', '"function_call"', '"function"')
# "{" or "[{" then optional blanks then a quote: the start of an OpenAI-looking JSON value.
_START = re.compile(r'(?:\{|\[\s*\{)\s*"')


def _is_item(v: Any) -> bool:
    return isinstance(v, dict) and ("function" in v or ("name" in v and ("arguments" in v or "parameters" in v)))


def _item(col: Collector, item: Any, offset: int, raw: str) -> None:
    if not isinstance(item, dict):
        col.add("wrong_type", f'expected a tool call object {{"type": "function", "function": {{...}}}}, got {type_name(item)}', offset, raw)
        return
    fn = item.get("function", item)
    if not isinstance(fn, dict):
        col.add("wrong_type", f'expected "function" to be an object {{"name": ..., "arguments": ...}}, got {type_name(fn)}', offset, raw)
        return
    if "arguments" in fn:
        args, has, field = fn["arguments"], True, "arguments"
    elif "parameters" in fn:
        args, has, field = fn["parameters"], True, "parameters"
    else:
        args, has, field = None, False, "arguments"
    build_call(col, fn.get("name"), args, raw, offset, name_field="function.name", args_field=f"function.{field}", has_args=has)


def _content_text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multi-part content: [{"type": "text", "text": ...}]
        parts = [p.get("text") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return "\n".join(parts)
    return None


def _message(col: Collector, msg: dict, offset: int, state: dict, raw: str) -> bool:
    """Handle a dict value; False when it is not OpenAI structure at all."""
    if isinstance(msg.get("choices"), list) and msg["choices"] and isinstance(msg["choices"][0], dict):
        inner = msg["choices"][0].get("message")
        if isinstance(inner, dict):
            return _message(col, inner, offset, state, raw)
    content = _content_text(msg.get("content"))
    rc = msg.get("reasoning_content")
    if isinstance(rc, str):
        col.thought(rc)
    if "tool_calls" in msg or "function_call" in msg:
        col.thought(content)
        tcs = msg.get("tool_calls")
        if "tool_calls" in msg and tcs is not None:
            if not isinstance(tcs, list):
                col.add("wrong_type", f'expected "tool_calls" to be a list, got {type_name(tcs)}', offset, raw)
                return True
            for it in tcs:
                if col.full:
                    col.dropped += 1
                    continue
                _item(col, it, offset, raw)
        fc = msg.get("function_call")
        if fc is not None:
            _item(col, fc, offset, raw)
        return True
    if msg.get("give_up") is True:
        state["give_up"] = True
        col.thought(content)
        return True
    if _is_item(msg):
        _item(col, msg, offset, raw)
        return True
    if "role" in msg or "content" in msg:
        if content is None:
            col.add("wrong_type", f'expected "content" to be a string, got {type_name(msg.get("content"))}', offset, raw)
        else:
            state["final"] = content.strip()
        return True
    return False


def parse(text: str, col: Collector | None = None) -> ParsedAction:
    col = col or Collector(TEMPLATE, text)
    state: dict = {"final": None, "give_up": False}
    body, shift = strip_fence(text)
    i = shift
    n = shift + len(body)
    while i < n and text[i] in " \t\r\n":
        i += 1
    start = -1
    if i < n and text[i] in "{[":
        start = i
    elif any(h in body for h in _HINTS):
        m = _START.search(text, shift, n)
        if m is not None:
            start = m.start()
    if start < 0:
        return _plain(col, text, state)
    value, stop, kind, msg, off = decode_at(text, start, n)
    if kind is not None:
        if any(h in body for h in _HINTS) or kind == "too_deep":
            col.add(kind, f'expected OpenAI tool-call JSON {{"tool_calls": [{{"type": "function", "function": {{...}}}}]}}: {msg}', max(off, start), text[start:n])
            col.thought(text[shift:start])
            return ParsedAction(TEMPLATE, thought=col.joined_thought(), give_up=state["give_up"], issues=col.final_issues())
        return _plain(col, text, state)
    recognised = True
    # Each call's raw text is the whole JSON value it came from (exact model text; element
    # spans inside a decoded JSON value are not tracked).
    raw = text[start:stop]
    if isinstance(value, dict):
        recognised = _message(col, value, start, state, raw)
    elif isinstance(value, list) and value and any(_is_item(v) for v in value):
        for it in value:
            if col.full:
                col.dropped += 1
                continue
            _item(col, it, start, raw)
    else:
        recognised = False
    if not recognised:
        return _plain(col, text, state)
    if start > shift:
        col.thought(text[shift:start])
    rest = text[stop:n]
    if rest.strip():
        off2 = stop + (len(rest) - len(rest.lstrip()))
        col.add("trailing_text", f"expected nothing after the tool-call JSON, got {short(rest.strip())}", off2, rest.strip())
    return ParsedAction(
        TEMPLATE, calls=tuple(col.calls), thought=col.joined_thought(), final_answer=state["final"], give_up=state["give_up"], issues=col.final_issues()
    )


def _plain(col: Collector, text: str, state: dict) -> ParsedAction:
    give_up = state["give_up"]
    if GIVE_UP_OPEN in text:
        give_up, text = take_give_up(col, text)
    return ParsedAction(
        TEMPLATE, thought=col.joined_thought(), final_answer=None if give_up else text.strip(), give_up=give_up, issues=col.final_issues()
    )


# ---------------------------------------------------------------------------------------------
# rendering


def _items(calls: Sequence[ToolCall]) -> list[dict]:
    return [{"id": f"call_{i}", "type": "function", "function": {"name": c.name, "arguments": dumps(c.arguments)}} for i, c in enumerate(calls)]


def render_calls(calls: Sequence[ToolCall], thought: str | None = None) -> str:
    if thought:
        return dumps({"role": "assistant", "content": thought, "tool_calls": _items(calls)})
    return dumps({"tool_calls": _items(calls)})


def _plain_safe(answer: str) -> bool:
    return (
        bool(answer)
        and answer == answer.strip()
        and answer[0] not in "{["
        and not answer.startswith("```")
        and GIVE_UP_OPEN not in answer
        and not answer.startswith("<think>")
        and not any(h in answer for h in _HINTS)
    )


def render_final_answer(answer: str, thought: str | None = None) -> str:
    if thought:
        return dumps({"role": "assistant", "content": answer, "reasoning_content": thought})
    if _plain_safe(answer):
        return answer
    return dumps({"role": "assistant", "content": answer})


def render_give_up(reason: str = "") -> str:
    return dumps({"role": "assistant", "content": reason, "give_up": True})


def render_observation(results: Sequence[tuple[str, str]]) -> str:
    return "\n".join(dumps({"role": "tool", "tool_call_id": f"call_{i}", "name": n, "content": r}) for i, (n, r) in enumerate(results))


def render_instructions(tools: Sequence[ToolSpec]) -> str:
    specs = dumps([{"type": "function", "function": t.to_dict()} for t in tools])
    return (
        "You can call these functions (OpenAI tools format):\n"
        f"{specs}\n\n"
        "To call functions, reply with only a JSON object:\n"
        '{"tool_calls": [{"type": "function", "function": {"name": "<function name>", "arguments": "<arguments as a JSON-encoded string>"}}]}\n'
        "Several calls may go in the list. Each result comes back as a JSON message with role \"tool\". "
        "When you have the answer, reply with plain text. "
        f'If the task cannot be done with these functions, reply {GIVE_UP_OPEN}reason{GIVE_UP_CLOSE}.'
    )
