"""Helpers shared by every template parser: issue collection, bounded JSON decoding, fences.

Nothing here knows about a particular template. All helpers are total (they never raise
for model text); problems come back as :class:`~toolgym.env.types.ParseIssue` values.

Linear-time rule: every helper here runs in time linear in its input. No regex in this
package nests quantifiers (a test walks the compiled patterns to check it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from toolgym.env.types import ParseIssue, ToolCall, ToolSpec

#: JSON nesting deeper than this is reported as ``too_deep`` instead of returned.
MAX_JSON_DEPTH = 128
#: At most this many issues are kept per output; the rest are summarised in one issue.
MAX_ISSUES = 64


class _NonFinite(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NonFinite(name)


def _finite_float(s: str) -> float:
    v = float(s)
    if v - v != 0.0:  # inf (an overflowing literal such as 1e999)
        raise _NonFinite(s)
    return v


# One decoder for the whole package: json.loads(s, **kw) would build a new decoder per call.
_decoder = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
_raw_decode = _decoder.raw_decode
_WS = " \t\n\r"

_DEPTH_SCAN = re.compile(r'\\.|[\[\]{}"]', re.S)


# ---------------------------------------------------------------------------------------------
# positions and issues


def position(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of character ``offset`` in ``text``; (-1, -1) when unknown."""
    if offset < 0:
        return -1, -1
    offset = min(offset, len(text))
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


def make_issue(template: str, kind: str, message: str, text: str, offset: int = -1, fragment: str = "") -> ParseIssue:
    """Build a :class:`ParseIssue`, locating ``offset`` (0-based) in ``text`` as line/column."""
    line, col = position(text, offset)
    return ParseIssue(template=template, kind=kind, message=message, offset=offset, line=line, column=col, fragment=fragment)


ParamOrder = Mapping[str, tuple[str, ...]]
"""Tool name → its parameters in declared order (see :func:`param_order`)."""


def param_order(tools: Iterable[ToolSpec]) -> dict[str, tuple[str, ...]]:
    """Each tool's parameter names in the order its schema declares them.

    The order is the schema's ``properties`` order as loaded (BFCL's docs list parameters in
    signature order, and JSON objects keep their order through every loader); it is never
    sorted. A tool listed twice keeps its first spec.
    """
    out: dict[str, tuple[str, ...]] = {}
    for t in tools:
        if t.name not in out:
            props = (t.parameters or {}).get("properties") or {}
            out[t.name] = tuple(props) if isinstance(props, dict) else ()
    return out


class Collector:
    """Accumulates calls, thoughts and (capped) issues while one output is parsed."""

    __slots__ = ("template", "text", "calls", "issues", "dropped", "thoughts", "params")

    def __init__(self, template: str, text: str, params: ParamOrder | None = None):
        self.template = template
        self.text = text
        #: Declared parameter order per tool name, for positional calls (pythonic); None when
        #: the caller gave no tool specs.
        self.params = params
        self.calls: list[ToolCall] = []
        self.issues: list[ParseIssue] = []
        self.dropped = 0
        self.thoughts: list[str] = []

    @property
    def full(self) -> bool:
        return len(self.issues) >= MAX_ISSUES

    def add(self, kind: str, message: str, offset: int = -1, fragment: str = "") -> None:
        if len(self.issues) >= MAX_ISSUES:
            self.dropped += 1
            return
        self.issues.append(make_issue(self.template, kind, message, self.text, offset, fragment))

    def thought(self, s: str | None) -> None:
        if s:
            s = s.strip()
            if s:
                self.thoughts.append(s)

    def joined_thought(self) -> str | None:
        return "\n".join(self.thoughts) if self.thoughts else None

    def final_issues(self) -> tuple[ParseIssue, ...]:
        if self.dropped:
            self.issues.append(
                ParseIssue(self.template, "too_many_issues", f"{self.dropped} further issues were not recorded (limit {MAX_ISSUES})")
            )
            self.dropped = 0
        return tuple(self.issues)


# ---------------------------------------------------------------------------------------------
# JSON


def json_too_deep(s: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``s`` nests brackets deeper than ``limit`` outside of strings (linear scan)."""
    depth = 0
    in_str = False
    for m in _DEPTH_SCAN.finditer(s):
        ch = m.group()
        if ch[0] == "\\":
            continue
        if in_str:
            if ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch == "[" or ch == "{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _deep(s: str) -> bool:
    # Fewer opening brackets than the limit can never exceed it: typical payloads skip the scan.
    n = s.count("{")
    if n < MAX_JSON_DEPTH:
        n += s.count("[")
        if n < MAX_JSON_DEPTH:
            return False
    return json_too_deep(s)


def decode_at(s: str, idx: int, end: int | None = None) -> tuple[Any, int, str | None, str, int]:
    """Decode one JSON value at ``s[idx]`` (leading whitespace skipped).

    Returns ``(value, end, error_kind, message, error_offset)`` where offsets index ``s``;
    ``error_kind`` is ``None`` on success, else ``"invalid_json"`` or ``"too_deep"``.
    ``end`` bounds the slice considered (default: the whole string).
    NaN/Infinity are rejected: they are not JSON.
    """
    if end is not None and end < len(s):
        sub = s[idx:end]
        v, e, kind, msg, off = decode_at(sub, 0)
        return v, e + idx, kind, msg, (off + idx if off >= 0 else off)
    n = len(s)
    while idx < n and s[idx] in _WS:
        idx += 1
    try:
        value, stop = _raw_decode(s, idx)
    except json.JSONDecodeError as e:
        if idx >= n:
            return None, idx, "invalid_json", "expected a JSON value, got nothing", idx
        return None, idx, "invalid_json", f"invalid JSON: {e.msg}", e.pos
    except _NonFinite as e:
        return None, idx, "invalid_json", f"invalid JSON: {e.args[0]} is not a finite JSON number", idx
    except RecursionError:
        return None, idx, "too_deep", "JSON nested too deeply to decode", idx
    except (ValueError, TypeError, MemoryError) as e:  # pragma: no cover - defensive
        return None, idx, "invalid_json", f"invalid JSON: {e}", idx
    if isinstance(value, (dict, list)) and _deep(s[idx:stop]):
        return None, idx, "too_deep", f"JSON nested deeper than {MAX_JSON_DEPTH} levels", idx
    return value, stop, None, "", -1


def loads(s: str) -> tuple[Any, str | None, str, int]:
    """Decode exactly one JSON document (surrounding whitespace allowed).

    Returns ``(value, error_kind, message, error_offset)`` with the offset relative to ``s``.
    """
    value, stop, kind, msg, off = decode_at(s, 0)
    if kind is not None:
        return None, kind, msg, off
    n = len(s)
    while stop < n and s[stop] in _WS:
        stop += 1
    if stop < n:
        return None, "invalid_json", f"invalid JSON: extra text after the JSON value: {s[stop:stop + 40]!r}", stop
    return value, None, "", -1


def dumps(value: Any) -> str:
    """JSON used by every renderer: unicode kept, NaN/inf refused (they are not JSON).

    ``<think>`` inside a string is written ``\\u003cthink>`` (a legal JSON escape): a ``<think>``
    tag anywhere but the start makes an output a format error, so rendered text must not hold one.
    """
    return json.dumps(value, ensure_ascii=False, allow_nan=False).replace(THINK_OPEN, "\\u003cthink>")


def type_name(value: Any) -> str:
    """JSON type name of a decoded value, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def short(value: Any, limit: int = 80) -> str:
    """A bounded repr for messages (fragments carry the full text)."""
    r = repr(value)
    return r if len(r) <= limit else r[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------------
# calls from decoded objects


def build_call(
    col: Collector,
    name: Any,
    args: Any,
    raw: str,
    offset: int,
    *,
    name_field: str = "name",
    args_field: str = "arguments",
    has_args: bool = True,
) -> ToolCall | None:
    """Validate a decoded (name, arguments) pair and add the call or an issue to ``col``.

    ``args`` may be a JSON object or a string holding one (OpenAI's encoding). A missing
    arguments field (``has_args=False``) means no arguments.
    """
    if name is None:
        col.add("missing_field", f'expected a "{name_field}" field naming the tool, got none', offset, raw)
        return None
    if not isinstance(name, str):
        col.add("wrong_type", f'expected "{name_field}" to be a string, got {type_name(name)} {short(name)}', offset, raw)
        return None
    if not name.strip():
        col.add("missing_field", f'expected a non-empty "{name_field}"', offset, raw)
        return None
    if not has_args or args is None:
        args = {}
    elif isinstance(args, str):
        s = args
        if not s.strip():
            args = {}
        else:
            args, kind, msg, _ = loads(s)
            if kind is not None:
                col.add(kind, f'"{args_field}" of {name!r} must be a JSON object; its string does not decode: {msg}', offset, s)
                return None
    if not isinstance(args, dict):
        col.add("wrong_type", f'expected "{args_field}" of {name!r} to be a JSON object, got {type_name(args)}', offset, raw)
        return None
    call = ToolCall(name=name, arguments=args, raw=raw)
    col.calls.append(call)
    return call


# ---------------------------------------------------------------------------------------------
# text helpers


def strip_fence(text: str) -> tuple[str, int]:
    """If ``text`` is one Markdown code fence (```` ```lang\\n...\\n``` ````), return its body.

    Returns ``(body, offset_of_body_in_text)``; otherwise ``(text, 0)``. Linear, no regex.
    """
    s = text.lstrip()
    if not s.startswith("```"):
        return text, 0
    e = text.rstrip()
    start = len(text) - len(s)
    if len(e) - start < 6 or not e.endswith("```"):
        return text, 0
    nl = text.find("\n", start)
    if nl < 0 or nl > len(e) - 3:
        return text, 0
    info = text[start + 3 : nl].strip()
    if info and not info.replace("_", "").replace("-", "").replace("+", "").isalnum():
        return text, 0
    body_end = len(e) - 3
    if body_end > nl + 1 and text[body_end - 1] == "\n":
        body_end -= 1
    return text[nl + 1 : body_end], nl + 1


THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
GIVE_UP_OPEN = "<give_up>"
GIVE_UP_CLOSE = "</give_up>"


def find_tag_block(text: str, open_tag: str, close_tag: str) -> tuple[int, int, int] | None:
    """First ``open_tag ... close_tag`` block: (start, body_start, end or -1 if unterminated)."""
    i = text.find(open_tag)
    if i < 0:
        return None
    b = i + len(open_tag)
    j = text.find(close_tag, b)
    return i, b, (j + len(close_tag) if j >= 0 else -1)


def blocks_and_thought(col: Collector, text: str, open_tag: str, close_tag: str, decode) -> None:
    """Decode every tagged block (see :func:`scan_blocks`); the text between blocks is thought,
    and a stray ``close_tag`` in it is an ``unexpected_tag`` issue."""
    for a, z in scan_blocks(col, text, open_tag, close_tag, decode):
        k = text.find(close_tag, a, z)
        if k >= 0:
            col.add("unexpected_tag", f"expected {open_tag} before {close_tag}", k, text[a:z])
        col.thought(text[a:z])


def scan_blocks(col: Collector, text: str, open_tag: str, close_tag: str, decode) -> list[tuple[int, int]]:
    """Find every ``open_tag ... close_tag`` block and call ``decode(col, text, body_start,
    body_end, raw)`` on each; return the (start, end) ranges of the text outside blocks.

    An unterminated block runs to the next ``open_tag`` (or the end) and is reported as
    ``unterminated_tag``; its body is still decoded (a model that stops before the closing
    tag loses the format point, not the call). Linear: once no ``close_tag`` is left, it is
    not searched for again.
    """
    lo, lc = len(open_tag), len(close_tag)
    pos = 0
    n = len(text)
    outside: list[tuple[int, int]] = []
    no_close = False
    while pos < n:
        i = text.find(open_tag, pos)
        if i < 0:
            outside.append((pos, n))
            break
        outside.append((pos, i))
        b = i + lo
        j = -1 if no_close else text.find(close_tag, b)
        if j < 0:
            # Unterminated: this block runs up to the next opening tag (or the end).
            no_close = True
            nxt = text.find(open_tag, b)
            end = nxt if nxt >= 0 else n
            col.add("unterminated_tag", f"expected {close_tag} to close the {open_tag} opened here, got {'end of output' if nxt < 0 else 'another ' + open_tag}", i, text[i:end])
            if col.full:
                col.dropped += 1
            else:
                decode(col, text, b, end, text[i:end])
            pos = end
            continue
        if col.full:
            col.dropped += 1
        else:
            decode(col, text, b, j, text[i : j + lc])
        pos = j + lc
    return outside
