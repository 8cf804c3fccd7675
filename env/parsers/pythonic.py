"""BFCL-style pythonic calls: ``[get_weather(city='Paris', days=3), math.hypot(x=4, y=5)]``.

Parsed with :func:`ast.parse` and :func:`ast.literal_eval` on argument nodes only — model
text is never evaluated. Accepted shapes (after optional surrounding whitespace / a
```` ```python ```` fence):

- a list (or tuple) of calls: ``[f(a=1), g(b='x')]``
- a bare call: ``cd(folder='document')``
- several calls, one per line (or separated by ``;``)

Argument values must be literals: str, int, float, bool, None, lists, tuples (→ lists),
dicts with string keys, negative numbers, nested. Anything else (a name, a call, an
attribute, a set, bytes, complex) is an issue pointing at the value's line/column.
"""

from __future__ import annotations

import ast
import keyword
import math
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from toolgym.env.parsers._common import GIVE_UP_CLOSE, GIVE_UP_OPEN, Collector, dumps, param_order, strip_fence
from toolgym.env.parsers.hermes import take_give_up, think_prefix
from toolgym.env.types import ParsedAction, ParseIssue, ToolCall, ToolParseError, ToolSpec

TEMPLATE = "pythonic"
#: Longer call text is refused (kind ``too_long``) instead of handed to ``ast.parse``: no
#: real call list comes near it, and parsing megabytes of Python costs seconds.
MAX_PY_SOURCE = 128 * 1024

_literal_eval = ast.literal_eval
_Constant = ast.Constant
_PLAIN = (str, int, bool, type(None))  # floats go through _to_json (NaN/inf are refused)


class _Lines:
    """Maps ast (lineno, utf-8 byte col_offset) positions to character offsets in the text."""

    __slots__ = ("text", "starts", "ascii")

    def __init__(self, text: str):
        self.text = text
        self.starts: list[int] | None = None
        self.ascii = text.isascii()

    def offset(self, lineno: int | None, col: int | None) -> int:
        if lineno is None or col is None:
            return -1
        text = self.text
        if lineno == 1 and self.ascii:
            return col
        if self.starts is None:
            starts = [0]
            find = text.find
            i = find("\n")
            while i >= 0:
                starts.append(i + 1)
                i = find("\n", i + 1)
            self.starts = starts
        starts = self.starts
        if lineno - 1 >= len(starts):
            return len(text)
        start = starts[lineno - 1]
        end = starts[lineno] - 1 if lineno < len(starts) else len(text)
        if self.ascii:
            return start + min(col, end - start)
        line = text[start:end]
        if line.isascii():
            return start + min(col, len(line))
        return start + len(line.encode("utf-8", "surrogatepass")[:col].decode("utf-8", "replace"))

    def char_offset(self, lineno: int, col: int) -> int:
        """Offset of 0-based *character* column ``col`` on 1-based line ``lineno``."""
        self.offset(lineno, 0)  # builds the line table when needed
        if self.starts is None:
            return col
        idx = min(lineno - 1, len(self.starts) - 1)
        return min(self.starts[idx] + max(col, 0), len(self.text))

    def segment(self, node: ast.AST) -> tuple[int, str]:
        start = self.offset(getattr(node, "lineno", None), getattr(node, "col_offset", None))
        end = self.offset(getattr(node, "end_lineno", None), getattr(node, "end_col_offset", None))
        if start < 0 or end < start:
            return start, ""
        return start, self.text[start:end]


def _dotted_name(node: ast.AST) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


class _NotJSON(Exception):
    def __init__(self, what: str):
        self.what = what


def _to_json(value: Any) -> Any:
    """Literal → JSON value (tuples become lists); raises :class:`_NotJSON` otherwise."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _NotJSON(repr(value))
        return value
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise _NotJSON(f"a dict key of type {type(k).__name__} ({k!r})")
            out[k] = _to_json(v)
        return out
    raise _NotJSON(f"a {type(value).__name__} ({value!r})")


def _call_nodes(tree: ast.Module) -> tuple[list[ast.AST], list[ast.AST]]:
    """Split top-level statements into candidate call nodes and nodes that are not calls."""
    calls: list[ast.AST] = []
    bad: list[ast.AST] = []
    for stmt in tree.body:
        if not isinstance(stmt, ast.Expr):
            bad.append(stmt)
            continue
        v = stmt.value
        if isinstance(v, (ast.List, ast.Tuple)):
            for elt in v.elts:
                (calls if isinstance(elt, ast.Call) else bad).append(elt)
        elif isinstance(v, ast.Call):
            calls.append(v)
        else:
            bad.append(v)
    return calls, bad


def parse_python_calls_lenient(
    text: str, *, allow_positional: bool = False, template: str = TEMPLATE, base_offset: int = 0, full_text: str | None = None,
    tools: Sequence[ToolSpec] | None = None,
) -> tuple[list[ToolCall], list[ParseIssue]]:
    """Parse pythonic calls, keeping the good ones and reporting the rest.

    ``base_offset``/``full_text`` let a caller that sliced ``text`` out of a larger output
    report issue positions relative to that output. ``tools``: positional arguments of a call
    to one of these tools are named by its declared parameter order (see :func:`parse_into`).
    Never raises for model text.
    """
    col = Collector(template, text if full_text is None else full_text, param_order(tools) if tools is not None else None)
    parse_into(col, text, base_offset, allow_positional=allow_positional)
    return col.calls, list(col.final_issues())


def parse_into(col: Collector, text: str, base_offset: int = 0, *, allow_positional: bool = False) -> None:
    """Parse pythonic calls in ``text`` (found at ``base_offset`` of ``col.text``) into ``col``.

    Positional arguments: with ``col.params`` (tool specs given), a call to a known tool maps
    them to its parameters in declared order; too many, or one also given as a keyword, is an
    issue naming the parameter. A call to a name without a spec keeps them as ``"__arg0"``...
    (its backend binds them by signature). Without ``col.params`` they are an issue unless
    ``allow_positional`` (then ``"__argN"`` too).
    """

    def add(kind: str, message: str, off: int, fragment: str) -> None:
        col.add(kind, message, off + base_offset if off >= 0 else -1, fragment)

    src, shift = strip_fence(text)
    lead = len(src) - len(src.lstrip())
    if lead:
        # Python refuses an indented first statement; blanks before the calls (a blanked-out
        # leading <think> block, a space) are not the model's syntax error.
        src, shift = src[lead:], shift + lead
    if len(src) > MAX_PY_SOURCE:
        add("too_long", f"expected at most {MAX_PY_SOURCE} characters of call syntax, got {len(src)}", shift, text)
        return
    try:
        tree = ast.parse(src, mode="exec")
    except SyntaxError as e:
        lines = _Lines(src)
        off = lines.char_offset(e.lineno, (e.offset or 1) - 1) if e.lineno else -1
        msg = e.msg or "invalid syntax"
        kind = "too_deep" if ("nested" in msg or "too many" in msg) else "invalid_syntax"
        if "null bytes" in msg:
            off = src.find("\x00")
        add(kind, f"expected Python call syntax like [f(a=1)]: {msg}", off + shift if off >= 0 else -1, text)
        return
    except (RecursionError, MemoryError):
        add("too_deep", "expression nested too deeply to parse", -1, text)
        return
    except UnicodeError as e:
        off = getattr(e, "start", -1)
        reason = getattr(e, "reason", str(e))
        add("invalid_text", f"text is not valid Unicode: {reason}", off + shift if off >= 0 else -1, text)
        return
    except (ValueError, TypeError) as e:  # pragma: no cover - defensive
        add("invalid_syntax", f"cannot parse as Python: {e}", -1, text)
        return

    lines = _Lines(src)
    nodes, bad = _call_nodes(tree)
    for node in bad:
        off, seg = lines.segment(node)
        add("not_a_call", f"expected a function call like f(a=1), got {type(node).__name__.lower()} {seg!r}", off + shift if off >= 0 else -1, seg)
    for node in nodes:
        if col.full:
            col.dropped += 1
            continue
        assert isinstance(node, ast.Call)
        _, raw = lines.segment(node)
        name = _dotted_name(node.func)
        if name is None:
            f_off, f_seg = lines.segment(node.func)
            add("wrong_type", f"expected a function name (optionally dotted like math.hypot), got {f_seg!r}", f_off + shift, raw)
            continue
        args: dict[str, Any] = {}
        ok = True
        # Positional arguments take the tool's declared parameter names, in order (BFCL's own
        # ground truth writes sort('final_report.pdf')). Without specs for the name they stay
        # "__arg0", "__arg1"... (only when the caller allows it): the backend binds them by
        # its signature, as BFCL's executor does.
        order = col.params.get(name) if col.params is not None else None
        positional_names: dict[str, int] = {}
        for i, a in enumerate(node.args):
            a_off, a_seg = lines.segment(a)
            if isinstance(a, ast.Starred) or (order is None and not (allow_positional or col.params is not None)):
                add("positional_arg", f"expected keyword arguments only (name=value) in call to {name}, got positional argument {a_seg!r}", a_off + shift, raw)
                ok = False
                continue
            if order is not None:
                if i >= len(order):
                    declared = ", ".join(order) or "no parameters"
                    add("positional_arg", f"too many positional arguments in call to {name}: it takes {len(order)} ({declared}), "
                        f"got {len(node.args)}; argument {i + 1} is {a_seg!r}", a_off + shift, raw)
                    ok = False
                    continue
                key = order[i]
                positional_names[key] = a_off
            else:
                key = f"__arg{i}"
            try:
                args[key] = _to_json(_literal_eval(a))
            except _NotJSON as e:
                add("wrong_type", f"argument {i} of {name}: expected a JSON-compatible literal, got {e.what}", a_off + shift, raw)
                ok = False
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                add("non_literal", f"argument {i} of {name}: expected a literal value (string, number, bool, None, list, dict), got {a_seg!r}", a_off + shift, raw)
                ok = False
        for kw in node.keywords:
            if kw.arg is not None and kw.arg in positional_names:
                v_off, _ = lines.segment(kw)
                add("duplicate_arg", f"parameter {kw.arg!r} of {name} is given twice: positionally (argument "
                    f"{order.index(kw.arg) + 1}) and as {kw.arg}=...; pass it once", v_off + shift, raw)
                ok = False
                continue
            v = kw.value
            if kw.arg is None:
                v_off, v_seg = lines.segment(v)
                add("wrong_type", f"expected name=value keyword arguments in call to {name}, got **{v_seg}", v_off + shift, raw)
                ok = False
                continue
            if type(v) is _Constant and type(v.value) in _PLAIN:
                args[kw.arg] = v.value  # fast path: a plain literal needs no conversion
                continue
            try:
                args[kw.arg] = _to_json(_literal_eval(v))
            except _NotJSON as e:
                v_off, _ = lines.segment(v)
                add("wrong_type", f"argument {kw.arg!r} of {name}: expected a JSON-compatible literal, got {e.what}", v_off + shift, raw)
                ok = False
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                v_off, v_seg = lines.segment(v)
                add("non_literal", f"argument {kw.arg!r} of {name}: expected a literal value (string, number, bool, None, list, dict), got {v_seg!r}", v_off + shift, raw)
                ok = False
        if ok:
            col.calls.append(ToolCall(name=name, arguments=args, raw=raw))


def parse_python_calls(text: str, *, allow_positional: bool = False, tools: Sequence[ToolSpec] | None = None) -> list[ToolCall]:
    """Parse BFCL-style pythonic calls into :class:`ToolCall` values.

    Raises :class:`ToolParseError` (with line/column issues) on any syntax error, positional
    argument (unless ``allow_positional``: then stored as ``"__arg0"``, ``"__arg1"``, ...),
    non-literal value, or top-level expression that is not a call. Empty text → ``[]``.
    With ``tools``, positional arguments of calls to those tools are named in declared order.
    """
    calls, issues = parse_python_calls_lenient(text, allow_positional=allow_positional, tools=tools)
    if issues:
        raise ToolParseError(issues)
    return calls


# ---------------------------------------------------------------------------------------------
# Rendering


def is_identifier(name: str) -> bool:
    """A Python keyword-argument name that parses back to itself (not a keyword, NFKC-stable)."""
    return name.isidentifier() and not keyword.iskeyword(name) and unicodedata.normalize("NFKC", name) == name


def is_dotted_name(name: str) -> bool:
    return bool(name) and all(is_identifier(p) for p in name.split("."))


def _repr_value(value: Any) -> str:
    if isinstance(value, str):
        # "<think>" anywhere but the start is a format error; \x3c keeps the literal's value.
        return repr(value).replace("<think>", "\\x3cthink>")
    if value is None or isinstance(value, (bool, int)):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot render non-finite float {value!r} as a Python literal")
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_repr_value(v) for v in value) + "]"
    if isinstance(value, dict):
        parts = []
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"dict keys must be strings, got {k!r}")
            parts.append(f"{k!r}: {_repr_value(v)}")
        return "{" + ", ".join(parts) + "}"
    raise ValueError(f"cannot render {type(value).__name__} as a JSON-compatible Python literal")


def render_python_call(call: ToolCall) -> str:
    """``name(a=1, b='x')``; raises ValueError when the name or an argument name can't round-trip."""
    if not is_dotted_name(call.name):
        raise ValueError(f"tool name {call.name!r} is not a (dotted) Python identifier; it cannot be written in the pythonic template")
    parts = []
    for k, v in call.arguments.items():
        if not is_identifier(k):
            raise ValueError(f"argument name {k!r} of {call.name!r} is not a Python identifier; it cannot be written in the pythonic template")
        parts.append(f"{k}={_repr_value(v)}")
    return f"{call.name}({', '.join(parts)})"


def render_python_calls(calls: Sequence[ToolCall]) -> str:
    """``[f(a=1), g(b='x')]`` — BFCL's format."""
    return "[" + ", ".join(render_python_call(c) for c in calls) + "]"


# ---------------------------------------------------------------------------------------------
# the "pythonic" template (BFCL prompting format)

# At the start: "[]", or "[" then a (dotted) name then "(", or a bare name directly followed by
# "(". No nested quantifiers.
_CALLS_AT_START = re.compile(r"\s*(?:\[\s*\]|\[\s*[^\W\d][\w.]*\s*\(|[^\W\d][\w.]*\()")
# A call list after some chatter.
_LIST_START = re.compile(r"\[\s*[^\W\d][\w.]*\s*\(")


def looks_like_calls(text: str) -> bool:
    """Cheap check: does ``text`` (fence stripped) start like pythonic call syntax?"""
    body, _ = strip_fence(text)
    return _starts_calls(body)


def _starts_calls(body: str) -> bool:
    m = _CALLS_AT_START.match(body)
    if m is None:
        return False
    if "[" in m.group():
        return True  # "[name(" or "[]": call-list syntax, even when truncated
    # A bare "name(": only when the text also ends like a call ("Paris(France) is nice" is prose).
    return body.rstrip().endswith(")")


def parse_template(text: str, col: Collector | None = None) -> ParsedAction:
    """Parse one model output under the ``pythonic`` template (never raises)."""
    col = col or Collector(TEMPLATE, text)
    body, _ = strip_fence(text)
    if _starts_calls(body):
        parse_into(col, text, 0)
        return ParsedAction(TEMPLATE, calls=tuple(col.calls), thought=col.joined_thought(), issues=col.final_issues())
    give_up = False
    if GIVE_UP_OPEN in text:
        give_up, text = take_give_up(col, text)
    end = len(text.rstrip())
    start = -1
    if text.endswith("```", 0, end):
        # Chatter, then one fenced block at the end holding the calls.
        f = text.rfind("```", 0, end - 3)
        if f >= 0:
            nl = text.find("\n", f, end - 3)
            if nl >= 0 and _CALLS_AT_START.match(text, nl + 1, end - 3):
                start = f
    elif text.endswith("]", 0, end):
        # Chatter, then a call list that runs to the end of the output.
        m = _LIST_START.search(text)
        if m is not None:
            start = m.start()
    if start >= 0:
        col.thought(text[:start])
        parse_into(col, text[start:], start)
        return ParsedAction(TEMPLATE, calls=tuple(col.calls), thought=col.joined_thought(), give_up=give_up, issues=col.final_issues())
    return ParsedAction(TEMPLATE, thought=col.joined_thought(), final_answer=None if give_up else text.strip(), give_up=give_up, issues=col.final_issues())


def render_calls(calls: Sequence[ToolCall], thought: str | None = None) -> str:
    return think_prefix(thought) + render_python_calls(calls)


def render_final_answer(answer: str, thought: str | None = None) -> str:
    return think_prefix(thought) + answer


def render_give_up(reason: str = "") -> str:
    return f"{GIVE_UP_OPEN}{reason}{GIVE_UP_CLOSE}"


def render_observation(results: Sequence[tuple[str, str]]) -> str:
    return "\n".join(dumps({"name": n, "result": r}) for n, r in results)


def render_instructions(tools: Sequence[ToolSpec]) -> str:
    specs = dumps([t.to_dict() for t in tools])
    return (
        "You are an expert in composing functions. You are given a question and a set of possible functions. "
        "Based on the question, make one or more function calls to achieve the purpose.\n"
        "To call functions, reply with only a Python list of calls with keyword arguments and literal values:\n"
        "[func_name1(param1=value1, param2=value2), func_name2(param=value)]\n"
        "Each result comes back as a JSON line {\"name\": ..., \"result\": ...}. "
        "When you have the answer, reply with plain text. "
        f"If none of the functions fit, reply {GIVE_UP_OPEN}reason{GIVE_UP_CLOSE}.\n\n"
        f"Here is the list of functions in JSON format:\n{specs}"
    )
