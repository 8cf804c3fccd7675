"""ModelScope-Agent: ``<|startofthink|>```JSON\\n{"api_name": ..., "parameters": {...}}\\n```<|endofthink|>``.

Text before the think block is the thought; an output with no think block is the final
answer. Tool results are shown in ``<|startofexec|>```JSON ... ```<|endofexec|>`` blocks;
if the model writes such a block itself it is ignored (it cannot know the result). One call
per output is the convention; several think blocks are all parsed, in order.
"""

from __future__ import annotations

from collections.abc import Sequence

from toolgym.env.parsers._common import GIVE_UP_CLOSE, GIVE_UP_OPEN, Collector, build_call, dumps, blocks_and_thought, loads, strip_fence, type_name
from toolgym.env.parsers.hermes import take_give_up, think_prefix
from toolgym.env.types import ParsedAction, ToolCall, ToolSpec

TEMPLATE = "modelscope"
OPEN = "<|startofthink|>"
CLOSE = "<|endofthink|>"
EXEC_OPEN = "<|startofexec|>"
EXEC_CLOSE = "<|endofexec|>"
_LO = len(OPEN)
_LC = len(CLOSE)


def _decode_block(col: Collector, text: str, b: int, e: int, raw: str) -> None:
    body = text[b:e]
    inner, shift = strip_fence(body)
    value, kind, msg, off = loads(inner)
    if kind is not None:
        col.add(kind, f'expected one JSON object {{"api_name": ..., "parameters": {{...}}}} inside {OPEN}: {msg}', b + shift + max(off, 0), body)
        return
    if not isinstance(value, dict):
        col.add("wrong_type", f'expected a JSON object {{"api_name": ..., "parameters": {{...}}}} inside {OPEN}, got {type_name(value)}', b, body)
        return
    has = "parameters" in value
    build_call(col, value.get("api_name"), value.get("parameters"), raw, b, name_field="api_name", args_field="parameters", has_args=has)


def _blank_exec(text: str) -> str:
    """Blank out model-written exec blocks (kept offsets); unterminated ones run to the end."""
    out = []
    pos = 0
    n = len(text)
    while pos < n:
        i = text.find(EXEC_OPEN, pos)
        if i < 0:
            break
        j = text.find(EXEC_CLOSE, i + len(EXEC_OPEN))
        end = n if j < 0 else j + len(EXEC_CLOSE)
        out.append(text[pos:i])
        out.append(" " * (end - i))
        pos = end
    out.append(text[pos:])
    return "".join(out)


def parse(text: str, col: Collector | None = None) -> ParsedAction:
    col = col or Collector(TEMPLATE, text)
    give_up = False
    if GIVE_UP_OPEN in text:
        give_up, text = take_give_up(col, text)
    if EXEC_OPEN in text:
        text = _blank_exec(text)
    if OPEN not in text:
        i = text.find(CLOSE)
        if i >= 0:
            col.add("unexpected_tag", f"expected {OPEN} before {CLOSE}", i, text)
            return ParsedAction(TEMPLATE, thought=col.joined_thought(), give_up=give_up, issues=col.final_issues())
        return ParsedAction(
            TEMPLATE, thought=col.joined_thought(), final_answer=None if give_up else text.strip(), give_up=give_up, issues=col.final_issues()
        )
    blocks_and_thought(col, text, OPEN, CLOSE, _decode_block)
    return ParsedAction(TEMPLATE, calls=tuple(col.calls), thought=col.joined_thought(), give_up=give_up, issues=col.final_issues())


# ---------------------------------------------------------------------------------------------
# rendering


def _block_json(value: object) -> str:
    # JSON text never holds "<" outside strings, so escaping it keeps tags out of arguments.
    return dumps(value).replace("<", "\\u003c")


def render_calls(calls: Sequence[ToolCall], thought: str | None = None) -> str:
    if len(calls) != 1:
        raise ValueError(f"the {TEMPLATE} template carries exactly one call per output, got {len(calls)}")
    c = calls[0]
    block = f"{OPEN}```JSON\n{_block_json({'api_name': c.name, 'parameters': c.arguments})}\n```{CLOSE}"
    return (f"{thought}\n" if thought else "") + block


def render_final_answer(answer: str, thought: str | None = None) -> str:
    return think_prefix(thought) + answer


def render_give_up(reason: str = "") -> str:
    return f"{GIVE_UP_OPEN}{reason}{GIVE_UP_CLOSE}"


def render_observation(results: Sequence[tuple[str, str]]) -> str:
    return "\n".join(f"{EXEC_OPEN}```JSON\n{dumps({'name': n, 'result': r})}\n```{EXEC_CLOSE}" for n, r in results)


def render_instructions(tools: Sequence[ToolSpec]) -> str:
    specs = "\n".join(dumps(t.to_dict()) for t in tools)
    return (
        "You have the following APIs available (JSON specs, one per line):\n"
        f"{specs}\n\n"
        "To call an API, write your reasoning, then one block exactly like:\n"
        f'{OPEN}```JSON\n{{"api_name": "<api name>", "parameters": {{<arguments as a JSON object>}}}}\n```{CLOSE}\n'
        "Call one API per reply. The result comes back as "
        f"{EXEC_OPEN}```JSON\n{{...}}\n```{EXEC_CLOSE}. "
        "When you have the answer, reply with plain text and no API block. "
        f"If the task cannot be done with these APIs, reply {GIVE_UP_OPEN}reason{GIVE_UP_CLOSE}."
    )
