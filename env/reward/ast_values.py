"""The value layer of the BFCL AST matcher: one argument value against its allowed values.

:func:`_check_value` applies BFCL's python rules to a single parameter: resolve the schema node's
type (``x-bfcl-type``, else the plain JSON Schema ``type``), check the value's type (int→float,
the one-level element check of arrays/tuples, "variables"), then compare it with the allowed values
(string standardisation, lists element-wise, dicts key by key, lists of dicts position by position,
everything else with ``in``). It answers a result code, not a message, so that passing values cost
nothing beyond the comparison.

It lives apart from the call and pairing logic because it is the part that mirrors BFCL's
type/value rules line by line, and the part the agreement tests exercise most: the rules, and where
toolgym deliberately differs from BFCL, are listed in the :mod:`toolgym.env.reward.ast_match`
docstring. Also here: :func:`standardize_string` (re-exported by ``ast_match``), the ``<missing>``
sentinel and :func:`_r`, the bounded repr every error message uses.

Nothing here is global and mutable; no deep copies are made; values are never modified.
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping
from typing import Any

# ------------------------------------------------------------------------------------ constants

# BFCL: re.sub(r"[ \,\.\/\-\_\*\^]", "", s).lower().replace("'", '"').  The removed characters are
# ASCII and no character lower-cases into (or out of) them or into "'", so removing/replacing in
# one translate() and lower-casing afterwards gives the same string (checked over all code points
# in the tests).
_STD_TABLE = str.maketrans({" ": None, ",": None, ".": None, "/": None, "-": None, "_": None,
                            "*": None, "^": None, "'": '"'})


def standardize_string(s: str) -> str:
    """BFCL's string standardisation: drop `` ,./-_*^``, lower-case, ``'`` → ``"``."""
    return s.translate(_STD_TABLE).lower()


_NONE_TYPE = type(None)

# BFCL python type names (plus aliases BFCL itself would reject) → Python type.
_PY_TYPES: Mapping[str, type] = {
    "string": str, "any": str, "integer": int, "float": float, "boolean": bool,
    "array": list, "tuple": list, "dict": dict,
    # aliases (BFCL's python checker raises KeyError on these)
    "number": float, "bool": bool, "list": list, "object": dict, "null": _NONE_TYPE,
    "str": str, "int": int,
}
_NESTED = frozenset(("array", "tuple", "list"))
# JSON Schema type → BFCL type, used when a node has no "x-bfcl-type".
_JSON_TO_BFCL: Mapping[str, str] = {
    "string": "string", "integer": "integer", "number": "float", "boolean": "boolean",
    "array": "array", "object": "dict", "null": "null",
}

# value-check result codes
_OK, _TYPE, _NESTED_TYPE, _VALUE = 0, 1, 2, 3

_SCALARS = frozenset((str, int, float, bool, _NONE_TYPE))
_REPR = reprlib.Repr()
_REPR.maxstring = 80
_REPR.maxother = 80
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 8
_REPR.maxlevel = 3


def _r(v: Any) -> str:
    """A short repr for error messages (bounded for huge or deeply nested values)."""
    try:
        t = type(v)
        if t is str:
            return repr(v) if len(v) <= 80 else repr(v[:77]) + "..."
        if t in _SCALARS:
            return repr(v)
        if (t is dict or t is list or t is tuple) and len(v) <= 8:
            vals = v.values() if t is dict else v
            if all(type(x) in _SCALARS and (type(x) is not str or len(x) <= 80) for x in vals) and (
                t is not dict or all(type(k) is str and len(k) <= 80 for k in v)
            ):
                return repr(v)
        return _REPR.repr(v)
    except Exception:  # e.g. an int too long to print: never let a message break scoring
        return f"<{type(v).__name__}>"


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:  # pragma: no cover
        return "<missing>"


_MISSING = _Missing()


# ------------------------------------------------------------------------------------ type resolution


def _json_type(node: Any, value: Any) -> str | None:
    """BFCL type name for a node without ``x-bfcl-type``, from its JSON Schema ``type``."""
    if type(node) is not dict:
        return None
    t = node.get("type")
    if type(t) is str:
        return _JSON_TO_BFCL.get(t)
    if type(t) is list:
        first = None
        tv = type(value)
        for member in t:
            b = _JSON_TO_BFCL.get(member) if type(member) is str else None
            if b is None:
                continue
            py = _PY_TYPES[b]
            if tv is py or (py is float and tv is int):
                return b
            if first is None and b != "null":
                first = b
        return first
    return None


def _bfcl_type(node: Any, value: Any) -> str | None:
    if type(node) is not dict:
        return None
    t = node.get("x-bfcl-type", _MISSING)
    if t is _MISSING:
        return _json_type(node, value)
    return t if type(t) is str else None


def _first_type(allowed: Any) -> type | None:
    """BFCL's get_possible_answer_type: type of the first allowed value that is not ``""``."""
    for a in allowed:
        if a != "":
            return type(a)
    return None


# ------------------------------------------------------------------------------------ value checks


def _str_ok(value: str, allowed: Any) -> bool:
    if value in allowed:  # equal strings standardise equally: skip the translation
        return True
    s = value.translate(_STD_TABLE).lower()
    for a in allowed:
        if type(a) is str and a.translate(_STD_TABLE).lower() == s:
            return True
    return False


def _std_seq(seq: Any) -> list:
    return [x.translate(_STD_TABLE).lower() if type(x) is str else x for x in seq]


def _list_ok(value: list, allowed: Any) -> bool:
    if value in allowed:  # element-wise equal lists standardise equally
        return True
    n = len(value)
    sv = None
    for a in allowed:
        ta = type(a)
        # BFCL indexes every allowed value as a sequence: "" reads as [], a string as its characters
        if (ta is list or ta is str or ta is tuple) and len(a) == n:
            if sv is None:
                sv = _std_seq(value)
            if _std_seq(a) == sv:
                return True
    return False


def _contains_empty(vals: Any) -> bool:
    if type(vals) is list:
        return "" in vals
    try:
        return "" in vals
    except TypeError:
        return vals == ""


def _dict_ok(value: dict, allowed: Any) -> bool:
    for a in allowed:
        if type(a) is not dict:  # "" (omitted) is skipped; other shapes never match
            continue
        good = True
        for k, v in value.items():
            vals = a.get(k, _MISSING)
            if vals is _MISSING:
                good = False
                break
            if type(vals) is not list and type(vals) is not tuple and type(vals) is not str:
                vals = (vals,)  # BFCL would raise
            sv = v.translate(_STD_TABLE).lower() if type(v) is str else v
            if sv not in _std_seq(vals):
                good = False
                break
        if good and len(a) > len(value):
            for k, vals in a.items():
                if k not in value and not _contains_empty(vals):
                    good = False
                    break
        if good:
            return True
    return False


def _list_dict_ok(value: list, allowed: Any) -> bool:
    n = len(value)
    for a in allowed:
        ta = type(a)
        if not (ta is list or ta is str or ta is tuple) or len(a) != n:
            continue
        for vi, ai in zip(value, a):
            if type(vi) is not dict or not _dict_ok(vi, (ai,)):
                break
        else:
            return True
    return False


def _nested_ok(value: list, allowed: Any, inner: type) -> bool:
    """BFCL's one-level element type check for arrays/tuples."""
    for a in allowed:
        if type(a) is not list:
            return True
        ipa = _first_type(a)
        for v in value:
            tv = type(v)
            if tv is not inner and tv is not ipa:
                break
        else:
            return True
    return False


def _untyped_ok(value: Any, allowed: Any) -> bool:
    """Our rule for parameters without a known type: compare by value, by the value's own kind."""
    tv = type(value)
    if tv is str:
        return _str_ok(value, allowed)
    if tv is list:
        return _list_ok(value, allowed)
    if tv is dict:
        return _dict_ok(value, allowed)
    for a in allowed:
        ta = type(a)
        # numbers compare across int/float, but a bool only equals a bool
        if (ta is tv or (ta in (int, float) and tv in (int, float))) and a == value:
            return True
    return False


def _check_value(value: Any, allowed: Any, node: Any) -> int:
    """One parameter under BFCL's python rules: _OK (0), _TYPE, _NESTED_TYPE or _VALUE."""
    if type(allowed) is not list and type(allowed) is not tuple:
        return _VALUE  # malformed ground truth: nothing can match
    if type(node) is dict:
        t = node.get("x-bfcl-type", _MISSING)
        if t is _MISSING:
            t = _json_type(node, value)
    else:
        t = None
    exp = _PY_TYPES.get(t) if type(t) is str else None
    if exp is None:
        return _OK if _untyped_ok(value, allowed) else _VALUE
    tv = type(value)
    if tv is not exp:
        if tv is int and exp is float:  # python's int → float auto-conversion
            try:
                value = float(value)
            except OverflowError:
                return _VALUE
            tv = float
        elif tv is tuple and t == "tuple":
            value = list(value)
            tv = list
    pa = None
    for a in allowed:
        if a != "":
            pa = type(a)
            break
    is_var = pa is not None and pa is not exp
    inner: type | None = None
    if tv is exp:
        if t in _NESTED:
            items = node.get("items")
            if type(items) is dict:
                it = _bfcl_type(items, None)
                inner = _PY_TYPES.get(it) if it is not None else None
                if inner is not None and not _nested_ok(value, allowed, inner):
                    return _NESTED_TYPE
    elif pa is not None and tv is pa:
        is_var = True
    else:
        return _TYPE
    if not is_var:
        if exp is str:
            return _OK if _str_ok(value, allowed) else _VALUE
        if exp is dict:
            return _OK if _dict_ok(value, allowed) else _VALUE
        if exp is list:
            if inner is dict:
                return _OK if _list_dict_ok(value, allowed) else _VALUE
            return _OK if _list_ok(value, allowed) else _VALUE
    try:
        return _OK if value in allowed else _VALUE
    except RecursionError:  # pragma: no cover - absurdly deep values
        return _VALUE
