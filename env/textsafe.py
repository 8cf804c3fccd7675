"""Text safety at the env's boundaries: lone surrogates never travel past the parser.

Python strings may hold lone surrogates (U+D800..U+DFFF): model text decoded leniently, a JSON
escape such as ``"\\ud800"`` in a call's arguments, a tool that printed one. They cannot be
encoded as UTF-8, so protobuf, the sandbox's JSON protocol and any log writer refuse them, and
a refusal half-way through a step used to lose the step after some of its calls had run.

The rule, applied once per direction:

- **Model text in** (:func:`screen_action`, called by :func:`toolgym.env.parsers.parse`): an
  output holding unencodable text is a format error (issue kind ``invalid_text``) and none of
  its calls run; a call whose *decoded* name or arguments hold one (a ``\\ud800`` escape) is
  dropped from the calls with the same issue, like a call whose JSON does not decode. Issue
  messages and fragments are cleaned (U+FFFD), so a parsed action is always encodable.
- **Tool output back and observations/info out** (:func:`clean_text`, :func:`clean_json`):
  unencodable characters become U+FFFD. The model did not write these, so they are not its
  format error; the replacement keeps them visible.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from toolgym.env.types import ParsedAction, ParseIssue, ToolCall

_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def is_encodable(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (holds no lone surrogate)."""
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def first_unencodable(text: str) -> int:
    """Offset of the first lone surrogate in ``text``, or -1."""
    if is_encodable(text):  # the fast path: C-speed check, no regex scan
        return -1
    m = _SURROGATE.search(text)
    return m.start() if m else -1


def clean_text(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (unchanged, same object, if clean)."""
    if is_encodable(text):
        return text
    return _SURROGATE.sub(REPLACEMENT, text)


def clean_json(value: Any) -> Any:
    """A JSON-like value (dicts, lists, tuples, strings, scalars) with every string cleaned,
    dict keys included. Values that are already clean come back as they are."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(k) if isinstance(k, str) else k: clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    return value


def unencodable_path(value: Any, path: str = "") -> str | None:
    """Where the first unencodable string sits in a JSON-like value (``"a.b[2]"``, ``"<key>"``
    for a dict key), or None when everything encodes."""
    if isinstance(value, str):
        return None if is_encodable(value) else (path or "<value>")
    if isinstance(value, dict):
        for k, v in value.items():
            key = clean_text(str(k))
            if isinstance(k, str) and not is_encodable(k):
                return f"{path}.<key {key!r}>" if path else f"<key {key!r}>"
            found = unencodable_path(v, f"{path}.{key}" if path else key)
            if found is not None:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            found = unencodable_path(v, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def _clean_issue(i: ParseIssue) -> ParseIssue:
    if is_encodable(i.message) and is_encodable(i.fragment) and is_encodable(i.template):
        return i
    return replace(i, template=clean_text(i.template), message=clean_text(i.message), fragment=clean_text(i.fragment))


def _issue(template: str, message: str, text: str, offset: int, fragment: str) -> ParseIssue:
    from toolgym.env.parsers._common import make_issue

    return make_issue(template, "invalid_text", message, text, offset, clean_text(fragment))


def screen_action(parsed: ParsedAction, text: str) -> ParsedAction:
    """The one check of model text coming in (see the module doc). ``text`` is the raw output
    ``parsed`` came from. Returns ``parsed`` itself when nothing needed changing."""
    off = first_unencodable(text)
    if off >= 0:
        cp = ord(text[off])
        msg = (f"expected valid Unicode text, got a lone surrogate U+{cp:04X} at character {off}; "
               "none of this output's calls were run: write the text again without it")
        frag = text[max(0, off - 40): off + 40]
        return ParsedAction(clean_text(parsed.template), issues=(_issue(parsed.template, msg, text, off, frag),))
    if "\\u" not in text and "\\U" not in text:
        # Clean text decodes to clean values: JSON and Python literals can only produce a lone
        # surrogate from a \u / \U escape. Skipping the walk keeps scoring's hot path cheap.
        return parsed
    calls: list[ToolCall] = []
    extra: list[ParseIssue] = []
    for c in parsed.calls:
        where = "name" if not is_encodable(c.name) else unencodable_path(c.arguments)
        if where is None:
            calls.append(c)
            continue
        label = clean_text(c.name)
        what = "its name" if where == "name" else f"argument {where}"
        msg = (f"call to {label!r} was not run: {what} decodes to a lone surrogate (e.g. an escape like \\ud800), "
               "which is not valid Unicode text; use a real character instead")
        pos = text.find(c.raw) if c.raw else -1
        extra.append(_issue(parsed.template, msg, text, pos, c.raw))
    issues = tuple(_clean_issue(i) for i in parsed.issues) + tuple(extra)
    thought = clean_text(parsed.thought) if parsed.thought is not None else None
    final = clean_text(parsed.final_answer) if parsed.final_answer is not None else None
    if not extra and issues == parsed.issues and thought is parsed.thought and final is parsed.final_answer:
        return parsed
    return replace(parsed, calls=tuple(calls), issues=issues, thought=thought, final_answer=final)
