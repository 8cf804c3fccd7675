"""Hermes / Qwen: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks.

Text outside the blocks is the thought when there are blocks, else the final answer. A block
may hold one call object or a JSON list of them; ``"arguments"`` may be an object or a
string holding one (some chat templates emit it that way); ``"parameters"`` is accepted as
an alias. Results go back in ``<tool_response>`` blocks.
"""

from __future__ import annotations

from collections.abc import Sequence

from toolgym.env.parsers._common import (
    GIVE_UP_CLOSE,
    GIVE_UP_OPEN,
    Collector,
    build_call,
    blocks_and_thought,
    dumps,
    loads,
    strip_fence,
    type_name,
)
from toolgym.env.types import ParsedAction, ToolCall, ToolSpec

TEMPLATE = "hermes"
OPEN = "<tool_call>"
CLOSE = "</tool_call>"
_LO = len(OPEN)
_LC = len(CLOSE)


def take_give_up(col: Collector, text: str) -> tuple[bool, str]:
    """Handle a ``<give_up>reason</give_up>`` marker (shared by the plain-text templates).

    Returns (give_up, text with the marker blanked out by spaces, so offsets are kept).
    The reason becomes a thought.
    """
    i = text.find(GIVE_UP_OPEN)
    if i < 0:
        return False, text
    b = i + len(GIVE_UP_OPEN)
    j = text.find(GIVE_UP_CLOSE, b)
    if j < 0:
        col.add("unterminated_tag", f"expected {GIVE_UP_CLOSE} after {GIVE_UP_OPEN}, got end of output", i, text[i:])
        col.thought(text[b:])
        return True, text[:i] + " " * (len(text) - i)
    col.thought(text[b:j])
    e = j + len(GIVE_UP_CLOSE)
    return True, text[:i] + " " * (e - i) + text[e:]


def _decode_block(col: Collector, text: str, body_start: int, body_end: int, raw: str) -> None:
    body = text[body_start:body_end]
    inner, shift = strip_fence(body)
    value, kind, msg, off = loads(inner)
    if kind is not None:
        col.add(kind, f'expected one JSON object {{"name": ..., "arguments": {{...}}}} inside {OPEN}: {msg}', body_start + shift + max(off, 0), body)
        return
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, dict):
            col.add("wrong_type", f'expected a JSON object {{"name": ..., "arguments": {{...}}}} inside {OPEN}, got {type_name(item)}', body_start, body)
            continue
        if "arguments" in item:
            args, has, field = item["arguments"], True, "arguments"
        elif "parameters" in item:
            args, has, field = item["parameters"], True, "parameters"
        else:
            args, has, field = None, False, "arguments"
        build_call(col, item.get("name"), args, raw, body_start, args_field=field, has_args=has)


def parse(text: str, col: Collector | None = None) -> ParsedAction:
    col = col or Collector(TEMPLATE, text)
    give_up = False
    if GIVE_UP_OPEN in text:
        give_up, text = take_give_up(col, text)
    if OPEN not in text:
        i = text.find(CLOSE)
        if i >= 0:
            col.add("unexpected_tag", f"expected {OPEN} before {CLOSE}", i, text)
            return ParsedAction(TEMPLATE, thought=col.joined_thought(), give_up=give_up, issues=col.final_issues())
        return ParsedAction(
            TEMPLATE,
            thought=col.joined_thought(),
            final_answer=None if give_up else text.strip(),
            give_up=give_up,
            issues=col.final_issues(),
        )
    blocks_and_thought(col, text, OPEN, CLOSE, _decode_block)
    return ParsedAction(TEMPLATE, calls=tuple(col.calls), thought=col.joined_thought(), give_up=give_up, issues=col.final_issues())


# ---------------------------------------------------------------------------------------------
# rendering


def call_json(call: ToolCall) -> str:
    # "</" is written "<\/" (a legal JSON escape) so an argument can never close the block, and
    # "<give_up>" as "\u003cgive_up>" so it cannot read as the give-up marker.
    return dumps({"name": call.name, "arguments": call.arguments}).replace("</", "<\\/").replace(GIVE_UP_OPEN, "\\u003cgive_up>")


def render_calls(calls: Sequence[ToolCall], thought: str | None = None) -> str:
    body = "\n".join(f"{OPEN}\n{call_json(c)}\n{CLOSE}" for c in calls)
    return think_prefix(thought) + body


def think_prefix(thought: str | None) -> str:
    if not thought:
        return ""
    return f"<think>\n{thought}\n</think>\n\n"


def render_final_answer(answer: str, thought: str | None = None) -> str:
    return think_prefix(thought) + answer


def render_give_up(reason: str = "") -> str:
    return f"{GIVE_UP_OPEN}{reason}{GIVE_UP_CLOSE}"


def render_observation(results: Sequence[tuple[str, str]]) -> str:
    return "\n".join(f"<tool_response>\n{dumps({'name': n, 'content': r})}\n</tool_response>" for n, r in results)


def render_instructions(tools: Sequence[ToolSpec]) -> str:
    specs = "\n".join(dumps({"type": "function", "function": t.to_dict()}) for t in tools)
    return (
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n"
        f"<tools>\n{specs}\n</tools>\n\n"
        "For each function call, return a json object with function name and arguments within "
        "<tool_call></tool_call> XML tags:\n"
        '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>\n\n'
        "Function results come back inside <tool_response></tool_response> tags. "
        "When you have the answer, reply with plain text and no <tool_call> tag. "
        f"If the task cannot be done with these tools, reply {GIVE_UP_OPEN}reason{GIVE_UP_CLOSE}."
    )
