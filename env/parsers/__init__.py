"""Agent prompt templates: one parser and one set of renderers per tool-calling format.

Templates (see each module for the exact format; "one" = one call per output):

- ``openai``: ``{"tool_calls": [{"type": "function", "function": {"name", "arguments"}}]}`` (many)
- ``hermes``: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks (many)
- ``react``: ``Thought:`` / ``Action: f`` / ``Action Input: {...}`` / ``Final Answer:`` (one)
- ``modelscope``: ``<|startofthink|>```JSON {"api_name", "parameters"} ```<|endofthink|>`` (one)
- ``autogpt``: ``{"thoughts": {...}, "command": {"name": ..., "args": {...}}}`` (one)
- ``toolllama``: ``Thought:`` / ``Action:`` / ``Action Input:``; ``Action: Finish`` ends (one)
- ``pythonic``: BFCL's ``[f(a=1), g(b='x')]`` (many)

:func:`parse` never raises for model text: problems come back as
:class:`~toolgym.env.types.ParseIssue` values in ``ParsedAction.issues``. Every template
accepts a leading ``<think>...</think>`` block (reasoning models) as the thought; a
``<think>`` tag anywhere else makes the output a format error (``misplaced_think``) and none
of its calls run (renderers escape ``<think>`` inside arguments so rendered calls never hold one).

Final answers: ``openai``/``hermes``/``modelscope``/``pythonic`` treat text with no call
structure as the final answer; ``react`` uses ``Final Answer:``, ``toolllama`` ``Action:
Finish``, ``autogpt`` the ``finish`` command (those three report ``no_structure`` otherwise).

Giving up: ``toolllama`` ``give_up_and_restart``; ``react`` a ``Give Up: reason`` line;
``autogpt`` the ``give_up`` command; ``openai`` ``{"role": "assistant", "content": reason,
"give_up": true}``; ``hermes``/``modelscope``/``pythonic`` (and ``openai``) a
``<give_up>reason</give_up>`` tag. The reason comes back as the thought.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from toolgym.env.parsers import autogpt, hermes, modelscope, openai, pythonic, react
from toolgym.env.parsers._common import THINK_CLOSE, THINK_OPEN, Collector, param_order
from toolgym.env.parsers.pythonic import parse_python_calls, parse_python_calls_lenient
from toolgym.env.textsafe import screen_action
from toolgym.env.types import ParsedAction, ParseIssue, ToolCall, ToolParseError, ToolSpec

__all__ = [
    "TEMPLATES",
    "MULTI_CALL_TEMPLATES",
    "DEFAULT_INSTRUCTIONS",
    "detect_template",
    "parse",
    "parse_strict",
    "parse_python_calls",
    "parse_python_calls_lenient",
    "render_calls",
    "render_final_answer",
    "render_give_up",
    "render_observation",
    "render_system_prompt",
    "ToolParseError",
]

TEMPLATES: tuple[str, ...] = ("openai", "hermes", "react", "modelscope", "autogpt", "toolllama", "pythonic")
#: Templates whose single output may carry several calls.
MULTI_CALL_TEMPLATES: frozenset[str] = frozenset({"openai", "hermes", "pythonic"})
DEFAULT_INSTRUCTIONS = "You are a helpful assistant that can use tools to complete the user's task."

_PARSERS = {
    "openai": openai.parse,
    "hermes": hermes.parse,
    "react": lambda text, col: react.parse(text, col, react.REACT),
    "toolllama": lambda text, col: react.parse(text, col, react.TOOLLLAMA),
    "modelscope": modelscope.parse,
    "autogpt": autogpt.parse,
    "pythonic": pythonic.parse_template,
}

_MODULES = {
    "openai": openai,
    "hermes": hermes,
    "modelscope": modelscope,
    "autogpt": autogpt,
    "pythonic": pythonic,
}


def _check_template(template: str) -> None:
    if template not in _PARSERS:
        raise ValueError(f"unknown template {template!r}; expected one of {', '.join(TEMPLATES)}")


# ---------------------------------------------------------------------------------------------
# detection

_REACT_LINE = re.compile(r"^[ \t]*(?:action|final answer|give up)[ \t]*:", re.I | re.M)
_FINAL_ANSWER_LINE = re.compile(r"^[ \t]*final answer[ \t]*:", re.I | re.M)
_FINISH_LINE = re.compile(r"^[ \t]*action[ \t]*:[ \t]*finish[ \t]*$", re.I | re.M)


def detect_template(text: str) -> str | None:
    """Guess the template of one model output from cheap substring checks, or ``None``.

    The structural marker that occurs *first* wins (so a JSON argument that mentions another
    format's marker does not flip the decision). ``react`` vs ``toolllama`` (same line
    syntax): ``toolllama`` when there is an ``Action: Finish`` line or a
    ``give_answer``/``give_up_and_restart`` return type and no ``Final Answer:`` line.
    ``openai`` vs ``autogpt`` (both JSON): whichever of ``"tool_calls"``/``"function_call"``
    (openai) and ``"thoughts"``/``"command"`` (autogpt) occurs first; with neither,
    ``"function"``/``"role"``/``"give_up"`` → openai.
    """
    if not isinstance(text, str) or not text:
        return None
    text = _skip_think(text)
    if pythonic.looks_like_calls(text):
        # Only a (dotted) name directly followed by "(" or "[name(" at the very start.
        return "pythonic"
    best_pos = len(text) + 1
    best: str | None = None

    def consider(pos: int, name: str) -> None:
        nonlocal best_pos, best
        if 0 <= pos < best_pos:
            best_pos, best = pos, name

    if "<tool_call>" in text:
        consider(text.find("<tool_call>"), "hermes")
    if "<|startofthink|>" in text:
        consider(text.find("<|startofthink|>"), "modelscope")
    if ":" in text and ("ction" in text or "CTION" in text or "nswer" in text or "NSWER" in text or "ive " in text or "IVE " in text):
        m = _REACT_LINE.search(text)
        if m is not None:
            consider(m.start(), "react")
    if '"' in text:
        # Keys inside JSON string values are escaped (\"command\"), so these only match real
        # keys or plain string values; the earliest of the two families decides.
        p_oa = _first(text, '"tool_calls"', '"function_call"')
        p_ag = _first(text, '"thoughts"', '"command"')
        json_kind = None
        if p_oa >= 0 or p_ag >= 0:
            json_kind = "openai" if p_ag < 0 or (0 <= p_oa < p_ag) else "autogpt"
        elif '"function"' in text or '"role"' in text or '"give_up"' in text:
            json_kind = "openai"
        if json_kind is not None:
            a, b = text.find("{"), text.find("[")
            pos = min(a, b) if a >= 0 and b >= 0 else max(a, b)
            consider(pos, json_kind)
    if best is None and "<give_up>" in text:
        best = "hermes"
    if best == "react":
        if _FINAL_ANSWER_LINE.search(text) is None and (
            _FINISH_LINE.search(text) is not None or "give_up_and_restart" in text or '"give_answer"' in text
        ):
            return "toolllama"
    return best


def _first(text: str, a: str, b: str) -> int:
    i, j = text.find(a), text.find(b)
    return min(i, j) if i >= 0 and j >= 0 else max(i, j)


def _skip_think(text: str) -> str:
    s = text.lstrip()
    if s.startswith(THINK_OPEN):
        j = text.find(THINK_CLOSE)
        return text[j + len(THINK_CLOSE) :] if j >= 0 else ""
    return text


# ---------------------------------------------------------------------------------------------
# parsing


def _coerce(text: object) -> str:
    if isinstance(text, str):
        return text
    if isinstance(text, (bytes, bytearray)):
        return bytes(text).decode("utf-8", "replace")
    return "" if text is None else str(text)


def parse(text: str, template: str | None = None, tools: Sequence[ToolSpec] | None = None) -> ParsedAction:
    """Parse one model output under ``template`` (detected when ``None``). Never raises for
    model text; an unknown template name raises ``ValueError`` (a caller bug).

    ``tools``: the tools offered to the model, in the task's order. The ``pythonic`` template
    names positional arguments by each tool's declared parameter order (``sort('a.pdf')`` →
    ``{"file_name": "a.pdf"}``); without ``tools`` a positional argument is an issue.

    The result is always safe to encode (see :mod:`toolgym.env.textsafe`): text with a lone
    surrogate is an ``invalid_text`` issue with no calls, and a call whose decoded name or
    arguments hold one is dropped with that issue.
    """
    if template is not None:
        _check_template(template)
    text = _coerce(text)
    params = param_order(tools) if tools is not None else None
    try:
        parsed = _parse(text, template, params)
    except Exception as e:  # pragma: no cover - last-resort guard; tests assert it never fires
        t = template or "plain"
        parsed = ParsedAction(t, issues=(ParseIssue(t, "internal_error", f"parser failed: {type(e).__name__}: {e}", fragment=text),))
    return screen_action(parsed, text)


def _misplaced_think(text: str, template: str, start: int, thought: str | None) -> ParsedAction | None:
    """The ``<think>`` rule: reasoning is one block at the very start of the output. A
    ``<think>`` tag anywhere after that (``start`` = end of the leading block, if any) makes
    the whole output a format error with no calls and no answer: text inside reasoning is
    never acted on, and there is no telling which part of the output is reasoning."""
    k = text.find(THINK_OPEN, start)
    if k < 0:
        return None
    col = Collector(template, text)
    col.thought(thought)
    col.add("misplaced_think", f"expected reasoning in one {THINK_OPEN}...{THINK_CLOSE} block at the very start of the output, "
            f"got {THINK_OPEN} at character {k}; none of this output's calls were run", k, text[k:k + 200])
    return ParsedAction(template, thought=col.joined_thought(), issues=col.final_issues())


def _parse(text: str, template: str | None, params=None) -> ParsedAction:
    work = text
    think: str | None = None
    s = text.lstrip()
    if s.startswith(THINK_OPEN):
        i = len(text) - len(s)
        b = i + len(THINK_OPEN)
        j = text.find(THINK_CLOSE, b)
        t = template or "plain"
        if j < 0:
            col = Collector(t, text)
            col.add("unterminated_tag", f"expected {THINK_CLOSE} to close the {THINK_OPEN} block, got end of output", i, text[i:])
            col.thought(text[b:])
            return ParsedAction(t, thought=col.joined_thought(), issues=col.final_issues())
        think = text[b:j]
        e = j + len(THINK_CLOSE)
        work = " " * e + text[e:]
    else:
        e = 0
    if template is None:
        template = detect_template(work if think is None else text[e:])
        if template is None:
            th = think.strip() if think else None
            misplaced = _misplaced_think(text, "plain", e, th) if THINK_OPEN in work else None
            return misplaced or ParsedAction("plain", thought=th or None, final_answer=work.strip())
    if THINK_OPEN in work:
        misplaced = _misplaced_think(text, template, e, think)
        if misplaced is not None:
            return misplaced
    col = Collector(template, text, params)
    col.thought(think)
    return _PARSERS[template](work, col)


def parse_strict(text: str, template: str | None = None, tools: Sequence[ToolSpec] | None = None) -> ParsedAction:
    """Like :func:`parse`, but raise :class:`ToolParseError` when there is any issue."""
    pa = parse(text, template, tools)
    if pa.issues:
        raise ToolParseError(list(pa.issues))
    return pa


# ---------------------------------------------------------------------------------------------
# rendering


def _check_calls(calls: Sequence[ToolCall], template: str) -> None:
    if not calls:
        raise ValueError("render_calls needs at least one call (use render_final_answer for an answer)")
    if len(calls) > 1 and template not in MULTI_CALL_TEMPLATES:
        raise ValueError(f"the {template} template carries exactly one call per output, got {len(calls)}")
    for c in calls:
        if not isinstance(c.name, str) or not c.name.strip():
            raise ValueError(f"tool name must be a non-empty string, got {c.name!r}")
        if not isinstance(c.arguments, dict):
            raise ValueError(f"arguments of {c.name!r} must be a dict, got {type(c.arguments).__name__}")


def render_calls(calls: Sequence[ToolCall], template: str, *, thought: str | None = None) -> str:
    """The text a model would write to make ``calls`` under ``template`` (round-trips with
    :func:`parse`). Raises ``ValueError`` for >1 call in a one-call template or a name the
    template cannot carry (e.g. a non-identifier in ``pythonic``)."""
    _check_template(template)
    _check_calls(calls, template)
    if template in ("react", "toolllama"):
        return react.render_calls(calls, thought, template)
    return _MODULES[template].render_calls(calls, thought)


def render_final_answer(answer: str, template: str, *, thought: str | None = None) -> str:
    """The text a model would write to end the task with ``answer``."""
    _check_template(template)
    if template in ("react", "toolllama"):
        return react.render_final_answer(answer, thought, template)
    return _MODULES[template].render_final_answer(answer, thought)


def render_give_up(template: str, *, reason: str = "") -> str:
    """The template's explicit give-up output; parses back with ``give_up=True`` and the
    reason as the thought."""
    _check_template(template)
    if template in ("react", "toolllama"):
        return react.render_give_up(reason, template)
    return _MODULES[template].render_give_up(reason)


def render_observation(results: Sequence[tuple[str, str]], template: str) -> str:
    """How tool results ``[(tool name, result text), ...]`` are shown back to the model."""
    _check_template(template)
    results = [(str(n), str(r)) for n, r in results]
    if template in ("react", "toolllama"):
        return react.render_observation(results, template)
    return _MODULES[template].render_observation(results)


def render_system_prompt(tools: Sequence[ToolSpec], template: str, *, instructions: str | None = None) -> str:
    """System prompt: ``instructions`` (or a default), then how to call tools in ``template``
    and the tool specs as JSON."""
    _check_template(template)
    head = instructions if instructions is not None else DEFAULT_INSTRUCTIONS
    if template in ("react", "toolllama"):
        body = react.render_instructions(tools, template)
    else:
        body = _MODULES[template].render_instructions(tools)
    return f"{head}\n\n{body}" if head else body
