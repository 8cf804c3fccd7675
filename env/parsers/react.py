"""ReAct and ToolLlama: ``Thought:`` / ``Action:`` / ``Action Input:`` line-keyword formats.

Keywords count only at the start of a line (leading spaces allowed, case-insensitive), so a
JSON argument (which cannot hold a raw newline) never starts a keyword.

- ReAct: ``Thought`` / ``Action`` / ``Action Input`` / ``Observation`` / ``Final Answer``.
  ``Final Answer:`` takes everything after it. ``Give Up: reason`` is toolgym's give-up
  marker for this template.
- ToolLlama (ToolBench): ``Thought`` / ``Action`` / ``Action Input`` (+ ``Observation``);
  ``Action: Finish`` with ``{"return_type": "give_answer", "final_answer": ...}`` ends with an
  answer, ``{"return_type": "give_up_and_restart"}`` gives up.

``Action Input`` must be a JSON object (a Markdown fence around it is accepted; an empty
input means no arguments). ``Observation:`` blocks written by the model are ignored.
Several Action blocks in one output are all parsed, in order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from toolgym.env.parsers._common import Collector, decode_at, dumps, short, strip_fence, type_name
from toolgym.env.types import ParsedAction, ToolCall, ToolSpec

REACT = "react"
TOOLLLAMA = "toolllama"

# No nested quantifiers: "^", optional blanks, one keyword, optional blanks, ":".
_REACT_KW = re.compile(r"^[ \t]*(thought|action input|action|observation|final answer|give up)[ \t]*:", re.I | re.M)
_TOOLLLAMA_KW = re.compile(r"^[ \t]*(thought|action input|action|observation)[ \t]*:", re.I | re.M)
#: Any keyword line, used to refuse rendering thoughts that would be misread.
_ANY_KW = _REACT_KW

FINISH = "Finish"
_NAME_STRIP = " \t\r`'\""


def _handle_input(col: Collector, text: str, name: str, act_start: int, vstart: int, vend: int, toolllama: bool, state: dict) -> None:
    raw = text[act_start:vend].rstrip()
    value = text[vstart:vend]
    inner, shift = strip_fence(value)
    base = vstart + shift
    if not inner.strip():
        args: object = {}
        stop = len(inner)
    else:
        args, stop, kind, msg, off = decode_at(inner, 0)
        if kind is not None:
            col.add(kind, f"expected Action Input of {name!r} to be a JSON object: {msg}", base + max(off, 0), value.strip())
            return
        if not isinstance(args, dict):
            col.add("wrong_type", f"expected Action Input of {name!r} to be a JSON object, got {type_name(args)} {short(args)}", base, value.strip())
            return
    rest = inner[stop:]
    if rest.strip():
        off = stop + (len(rest) - len(rest.lstrip()))
        col.add("trailing_text", f"expected nothing after the Action Input JSON of {name!r} (or a new keyword line), got {short(rest.strip())}", base + off, rest.strip())
    assert isinstance(args, dict)
    if toolllama and name.lower() == "finish":
        _finish(col, args, raw, act_start, state)
        return
    col.calls.append(ToolCall(name=name, arguments=args, raw=raw))


def _finish(col: Collector, args: dict, raw: str, offset: int, state: dict) -> None:
    rt = args.get("return_type")
    if rt == "give_up_and_restart":
        state["give_up"] = True
        return
    if rt is None and "final_answer" not in args:
        col.add("missing_field", 'expected Finish\'s Action Input to hold "return_type": "give_answer" or "give_up_and_restart"', offset, raw)
        return
    if rt is not None and rt != "give_answer":
        col.add("invalid_value", f'expected "return_type" to be "give_answer" or "give_up_and_restart", got {short(rt)}', offset, raw)
        return
    if "final_answer" not in args:
        col.add("missing_field", 'expected a "final_answer" field with return_type "give_answer"', offset, raw)
        return
    fa = args["final_answer"]
    if not isinstance(fa, str):
        col.add("wrong_type", f'expected "final_answer" to be a string, got {type_name(fa)}', offset, raw)
        return
    state["final"] = fa


def parse(text: str, col: Collector | None = None, template: str = REACT) -> ParsedAction:
    toolllama = template == TOOLLLAMA
    col = col or Collector(template, text)
    pat = _TOOLLLAMA_KW if toolllama else _REACT_KW
    n = len(text)
    state: dict = {"final": None, "give_up": False}
    pending: tuple[str, int, int] | None = None  # (name, start of "Action:", end of its value)
    saw_action = False

    def flush() -> None:
        nonlocal pending
        if pending is not None:
            name, a_start, a_end = pending
            col.add("missing_field", f"expected an 'Action Input:' line after 'Action: {name}'", a_start, text[a_start:a_end].rstrip())
            pending = None

    it = pat.finditer(text)
    m = next(it, None)
    if m is None:
        col.add("no_structure", _expected(toolllama) + f", got {'no text' if not text.strip() else 'none'}", 0 if text else -1, text)
        return ParsedAction(template, issues=col.final_issues())
    col.thought(text[: m.start()])
    while m is not None:
        kw = m.group(1).lower()
        vstart = m.end()
        if kw == "final answer":
            flush()
            state["final"] = text[vstart:].strip()
            break
        if kw == "give up":
            flush()
            state["give_up"] = True
            if not col.thoughts:
                col.thought(text[vstart:])
            break
        nm = next(it, None)
        vend = nm.start() if nm is not None else n
        if kw == "thought":
            flush()
            col.thought(text[vstart:vend])
        elif kw == "action":
            flush()
            saw_action = True
            line_end = text.find("\n", vstart, vend)
            name = text[vstart : line_end if line_end >= 0 else vend].strip(_NAME_STRIP)
            if not name:
                col.add("missing_field", "expected a tool name after 'Action:', got nothing", m.start(), text[m.start() : vend].rstrip())
                pending = None
                # Swallow a following Action Input so it is not reported twice.
                if nm is not None and nm.group(1).lower() == "action input":
                    nm = next(it, None)
            else:
                pending = (name, m.start(), vend)
        elif kw == "action input":
            if pending is None:
                col.add("missing_field", "expected an 'Action:' line before 'Action Input:'", m.start(), text[m.start() : vend].rstrip())
            elif col.full:
                col.dropped += 1
                pending = None
            else:
                _handle_input(col, text, pending[0], pending[1], vstart, vend, toolllama, state)
                pending = None
        else:  # observation written by the model: ignored
            flush()
        m = nm
    flush()
    final, give_up = state["final"], state["give_up"]
    if not col.calls and final is None and not give_up and not saw_action and not col.issues:
        col.add("no_structure", _expected(toolllama) + ", got only Thought/Observation lines", 0, text)
    return ParsedAction(template, calls=tuple(col.calls), thought=col.joined_thought(), final_answer=final, give_up=give_up, issues=col.final_issues())


def _expected(toolllama: bool) -> str:
    if toolllama:
        return "expected 'Action: <tool>' and 'Action Input: {json}' lines (or 'Action: Finish')"
    return "expected 'Action: <tool>' and 'Action Input: {json}' lines, or 'Final Answer: ...'"


# ---------------------------------------------------------------------------------------------
# rendering


def _check_name(name: str, template: str) -> None:
    if not name or name != name.strip(_NAME_STRIP) or "\n" in name or "\r" in name:
        raise ValueError(f"tool name {name!r} cannot be written on an 'Action:' line of the {template} template")
    if template == TOOLLLAMA and name.lower() == "finish":
        raise ValueError("'Finish' is reserved by the toolllama template")


def _check_thought(thought: str | None, template: str) -> str:
    if not thought:
        return ""
    if _ANY_KW.search(thought):
        raise ValueError(f"thought holds a line that starts with a {template} keyword; it would be misread: {short(thought)}")
    return f"Thought: {thought}\n"


def render_calls(calls: Sequence[ToolCall], thought: str | None = None, template: str = REACT) -> str:
    if len(calls) != 1:
        raise ValueError(f"the {template} template carries exactly one call per output, got {len(calls)}")
    c = calls[0]
    _check_name(c.name, template)
    return f"{_check_thought(thought, template)}Action: {c.name}\nAction Input: {dumps(c.arguments)}"


def render_final_answer(answer: str, thought: str | None = None, template: str = REACT) -> str:
    head = _check_thought(thought, template)
    if template == TOOLLLAMA:
        return f"{head}Action: {FINISH}\nAction Input: {dumps({'return_type': 'give_answer', 'final_answer': answer})}"
    return f"{head}Final Answer: {answer}"


def render_give_up(reason: str = "", template: str = REACT) -> str:
    if template == TOOLLLAMA:
        return f"{_check_thought(reason, template)}Action: {FINISH}\nAction Input: {dumps({'return_type': 'give_up_and_restart'})}"
    if _ANY_KW.search(reason):
        raise ValueError("give-up reason holds a keyword line")
    return f"Give Up: {reason}".rstrip()


def render_observation(results: Sequence[tuple[str, str]], template: str = REACT) -> str:
    return "\n".join(f"Observation: {r}" for _, r in results)


def render_instructions(tools: Sequence[ToolSpec], template: str = REACT) -> str:
    specs = "\n".join(dumps(t.to_dict()) for t in tools)
    names = ", ".join(t.name for t in tools)
    if template == TOOLLLAMA:
        return (
            "You can use the following APIs (JSON specs, one per line):\n"
            f"{specs}\n\n"
            "Reply in this format, one API call per reply:\n"
            "Thought: your reasoning\n"
            f"Action: the API to call, one of [{names}, {FINISH}]\n"
            "Action Input: the arguments as a JSON object\n\n"
            "The API's answer comes back as 'Observation: ...'. To finish, call\n"
            f'Action: {FINISH}\nAction Input: {{"return_type": "give_answer", "final_answer": "your answer"}}\n'
            f'If you cannot complete the task, call Action: {FINISH} with Action Input: {{"return_type": "give_up_and_restart"}}.'
        )
    return (
        "Answer the question as best you can. You have access to the following tools (JSON specs, one per line):\n"
        f"{specs}\n\n"
        "Use this format:\n"
        "Thought: think about what to do\n"
        f"Action: the tool to use, one of [{names}]\n"
        "Action Input: the tool's arguments as a JSON object\n"
        "Observation: the tool's result (written by the environment, not by you)\n"
        "... (Thought/Action/Action Input/Observation can repeat; write one Action per reply)\n"
        "Thought: I now know the final answer\n"
        "Final Answer: the answer to the question\n\n"
        "If the task cannot be done with these tools, write 'Give Up: reason'."
    )
