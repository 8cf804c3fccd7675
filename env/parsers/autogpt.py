"""AutoGPT: one JSON object ``{"thoughts": {"text": ...}, "command": {"name": ..., "args": {...}}}``.

``command.name`` ``finish`` / ``task_complete`` ends the task: its answer is the first of
``args.response`` / ``answer`` / ``final_answer`` / ``reason`` / ``result``. ``give_up``
(toolgym's marker) gives up, with ``args.reason``. These names are reserved. Text around the
JSON (and a Markdown fence) is tolerated; several JSON objects in one output are all read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from toolgym.env.parsers._common import Collector, build_call, decode_at, dumps, short, type_name
from toolgym.env.types import ParsedAction, ToolCall, ToolSpec

TEMPLATE = "autogpt"
FINISH_NAMES = ("finish", "task_complete")
GIVE_UP_NAME = "give_up"
ANSWER_KEYS = ("response", "answer", "final_answer", "reason", "result")

# The start of a JSON object: "{" then optional blanks then a quote. One quantifier, no nesting.
_OBJ_START = re.compile(r'\{\s*"')


def _handle(col: Collector, obj: dict, start: int, raw: str, state: dict) -> None:
    th = obj.get("thoughts")
    if isinstance(th, dict):
        t = th.get("text")
        if isinstance(t, str):
            col.thought(t)
    elif isinstance(th, str):
        col.thought(th)
    if "command" not in obj:
        col.add("missing_field", 'expected a "command" object {"name": ..., "args": {...}}', start, raw)
        return
    cmd = obj["command"]
    if not isinstance(cmd, dict):
        col.add("wrong_type", f'expected "command" to be a JSON object {{"name": ..., "args": {{...}}}}, got {type_name(cmd)}', start, raw)
        return
    name = cmd.get("name")
    if "args" in cmd:
        args, has, field = cmd["args"], True, "command.args"
    elif "arguments" in cmd:
        args, has, field = cmd["arguments"], True, "command.arguments"
    else:
        args, has, field = None, False, "command.args"
    if isinstance(name, str) and name.strip().lower() in FINISH_NAMES:
        if not isinstance(args, dict):
            col.add("wrong_type", f'expected "{field}" of {name!r} to be a JSON object like {{"response": "..."}}, got {type_name(args)}', start, raw)
            return
        for k in ANSWER_KEYS:
            if k in args:
                v = args[k]
                if not isinstance(v, str):
                    col.add("wrong_type", f'expected "{field}.{k}" to be a string, got {type_name(v)} {short(v)}', start, raw)
                    return
                state["final"] = v
                return
        col.add("missing_field", f'expected "{field}" of {name!r} to hold "response" (the final answer)', start, raw)
        return
    if isinstance(name, str) and name.strip().lower() == GIVE_UP_NAME:
        state["give_up"] = True
        if isinstance(args, dict) and isinstance(args.get("reason"), str) and not col.thoughts:
            col.thought(args["reason"])
        return
    build_call(col, name, args, raw, start, name_field="command.name", args_field=field, has_args=has)


def _unfence(c: str) -> str:
    """Chatter around the JSON, minus the Markdown fence lines that wrapped it."""
    c = c.strip()
    if c.startswith("```"):
        c = c[3:].lstrip()
    k = c.rfind("```")
    if k >= 0 and (not c[k + 3 :] or c[k + 3 :].isalnum()):
        c = c[:k]
    return c


def parse(text: str, col: Collector | None = None) -> ParsedAction:
    col = col or Collector(TEMPLATE, text)
    state: dict = {"final": None, "give_up": False}
    pos = 0
    found = 0
    chatter: list[str] = []
    n = len(text)
    while pos < n:
        m = _OBJ_START.search(text, pos)
        if m is None:
            break
        start = m.start()
        value, stop, kind, msg, off = decode_at(text, start)
        if kind is not None:
            # Stop at the first undecodable object: retrying at every later "{" could be quadratic.
            col.add(kind, f'expected a JSON object {{"thoughts": {{...}}, "command": {{"name": ..., "args": {{...}}}}}}: {msg}', max(off, start), text[start:])
            found += 1
            chatter.append(text[pos:start])
            pos = n
            break
        chatter.append(text[pos:start])
        found += 1
        if col.full:
            col.dropped += 1
        else:
            _handle(col, value, start, text[start:stop], state)
        pos = stop
    if not found:
        col.add("no_structure", 'expected a JSON object {"thoughts": {"text": ...}, "command": {"name": ..., "args": {...}}}, got none', 0 if text else -1, text)
        return ParsedAction(TEMPLATE, issues=col.final_issues())
    chatter.append(text[pos:])
    for c in chatter:
        col.thought(_unfence(c))
    return ParsedAction(
        TEMPLATE,
        calls=tuple(col.calls),
        thought=col.joined_thought(),
        final_answer=state["final"],
        give_up=state["give_up"],
        issues=col.final_issues(),
    )


# ---------------------------------------------------------------------------------------------
# rendering


def _obj(thought: str | None, name: str, args: dict) -> str:
    return dumps({"thoughts": {"text": thought or ""}, "command": {"name": name, "args": args}})


def render_calls(calls: Sequence[ToolCall], thought: str | None = None) -> str:
    if len(calls) != 1:
        raise ValueError(f"the {TEMPLATE} template carries exactly one command per output, got {len(calls)}")
    c = calls[0]
    if c.name.strip().lower() in FINISH_NAMES + (GIVE_UP_NAME,):
        raise ValueError(f"command name {c.name!r} is reserved by the {TEMPLATE} template")
    return _obj(thought, c.name, c.arguments)


def render_final_answer(answer: str, thought: str | None = None) -> str:
    return _obj(thought, "finish", {"response": answer})


def render_give_up(reason: str = "") -> str:
    return _obj(reason, GIVE_UP_NAME, {"reason": reason})


def render_observation(results: Sequence[tuple[str, str]]) -> str:
    return "\n".join(f"Command {n} returned: {r}" for n, r in results)


def render_instructions(tools: Sequence[ToolSpec]) -> str:
    specs = "\n".join(dumps(t.to_dict()) for t in tools)
    return (
        "Commands (JSON specs, one per line):\n"
        f"{specs}\n"
        '- finish: the task is done, args: {"response": "<final answer>"}\n'
        f'- {GIVE_UP_NAME}: the task cannot be done with these commands, args: {{"reason": "<why>"}}\n\n'
        "You should only respond in JSON format as described below, one command per reply:\n"
        '{"thoughts": {"text": "thought", "reasoning": "reasoning", "plan": "short plan", "criticism": "self-criticism", '
        '"speak": "summary"}, "command": {"name": "command name", "args": {"arg name": "value"}}}\n'
        "Ensure the response can be parsed by Python json.loads. "
        "The result of a command comes back as 'Command <name> returned: <result>'."
    )
