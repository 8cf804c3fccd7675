"""BFCL's AST matcher for single-turn call tasks (``task_completion`` of ``ast`` tasks).

:func:`match_calls` decides whether a model's calls match a task's ground truth the way the
Berkeley Function Calling Leaderboard's ``ast_checker`` does (``bfcl_eval/eval_checker/ast_eval``,
Apache-2.0). This is an independent implementation of the same rules, written for speed (a few
microseconds for a simple call) and for partial credit; ``tests/env/reward/test_bfcl_agreement.py``
runs it side by side with BFCL's own checker over the BFCL v4 data.

Rules (BFCL's, per ground-truth call ``{name: {param: [allowed values...]}}`` and model call):

- **Name**: the model call's name must equal the ground-truth name exactly (BFCL only rewrites
  ``.`` to ``_`` for providers whose API forbids dots; toolgym compares the names as given).
- **Required**: every parameter in the tool schema's ``required`` must be present.
- **Unexpected**: every parameter the model gives must be both in the schema and in the ground
  truth; a schema parameter the ground truth does not list is unexpected.
- **Omitted**: a ground-truth parameter may be left out only if its allowed values include ``""``.
- **Types** (python): the schema type (BFCL's own, read from ``x-bfcl-type``) maps to a Python type
  (string/any→str, integer→int, float→float, boolean→bool, array/tuple→list, dict→dict). The value's
  type must be exactly that type (``bool`` is not ``int``), except that an ``int`` is accepted (and
  converted) where a ``float`` is expected. Arrays/tuples also check their elements' types one
  level deep against ``items``: every element must have the item type or the type of the first
  allowed element, for at least one allowed list (an allowed value that is not a list, e.g. ``""``,
  lets any list through; no int→float at this level).
- **Variables**: when the first allowed value (``""`` skipped) has a type other than the schema's,
  BFCL treats the parameter as a "variable": a value of the allowed value's type passes the type
  check, and the value is then compared with plain Python ``in`` (no string normalisation).
- **Values** (not a variable): strings are compared after *standardisation* (remove the characters
  `` ,./-_*^``, lower-case, ``'``→``"``) with the standardised string allowed values; lists
  element-wise with top-level string elements standardised (an allowed ``""`` stands for ``[]``);
  dicts key by key against each allowed dict (standardised string values, unknown keys rejected,
  missing keys allowed only when their allowed values include ``""``; one level deep, nested values
  compare with ``==``); lists of dicts position by position against allowed lists of equal length;
  everything else with Python ``in`` (so ``2 == 2.0``; NaN never equals anything).
- **Counts and pairing**: one rule for simple/multiple/parallel/parallel_multiple: the number of
  calls must equal the number of ground-truth calls and each ground-truth call must be paired with
  a distinct model call that passes all of the above, in any order.

Deliberate differences from BFCL
--------------------------------
1. **Optimal instead of greedy pairing.** BFCL's ``parallel_function_checker_no_order`` walks the
   ground truth in order and gives each entry the *first* still-unused model call that passes, never
   revisiting a choice. When one model call passes for two ground-truth entries, that greedy choice
   can use up the only call a later entry could take, and BFCL rejects although a perfect pairing
   exists. Example: ground truth ``[f(x∈{1,2}), f(x∈{1})]``, model ``[f(x=1), f(x=2)]``: BFCL gives
   ``f(x=1)`` to the first entry, the second entry then only sees ``f(x=2)`` and fails; toolgym
   pairs ``f(x=2)``↔first and ``f(x=1)``↔second and accepts. Every output BFCL accepts, toolgym
   accepts (a greedy success is a perfect matching); the converse fails exactly in this situation:
   a model call passing for more than one ground-truth entry with a greedy order that strands one.
   The pairing is a maximum-weight assignment that first maximises the number of passing pairs,
   then the number of accepted parameters, then the number of same-name pairs. Pairs only exist
   between calls of the same name, so it is solved per name: groups up to 3×3 by enumeration,
   larger ones with ``scipy.optimize.linear_sum_assignment``. BFCL's greedy pass (same order) is
   tried first and is the answer whenever it pairs everything, so accepted outputs never pay for
   the assignment.
2. **Lookup by name.** BFCL's simple category checks the single call against the *first* function
   of the task, whatever the ground truth's name; toolgym looks the schema up by the ground-truth
   name (identical on BFCL data, where simple tasks offer one function with that name).
3. **Defined where BFCL raises.** Where BFCL's checker would raise (an unknown type name, an
   ``array`` without ``items``, an allowed value of a shape it indexes blindly, a dict checked
   against a non-dict, an int too large for a float), toolgym answers instead: unknown/missing
   types are checked by value only (no type rule; ``bool`` still never equals a number), a missing
   ``items`` skips the element type check, allowed values of shapes BFCL cannot index never match
   (a scalar where a dict key's list of allowed values belongs counts as a one-element list). A ground-truth call naming a tool the task does not offer is a malformed task and raises
   ``ValueError`` (the reward engine reports ``valid=False``).
4. **Plain JSON Schema.** Without ``x-bfcl-type`` the JSON Schema ``type`` is used: ``number`` acts as
   BFCL ``float``, ``object`` as ``dict``, ``null`` as ``NoneType``; a list of types takes the member
   that fits the value (else the first non-null one).
5. **Languages.** Only python is implemented. BFCL's java/javascript checkers first convert the
   model's string values with regex-based type converters; :func:`match_calls` raises ``ValueError``
   for those languages rather than guess.

Partial credit: ``arg_accuracy`` is the fraction of expected (call, parameter) pairs accepted over
the optimal assignment: a parameter counts when the paired call gives an accepted value for it, or
omits it where omission is allowed (``""`` allowed and not schema-required). Unexpected extra
parameters do not lower it (they fail ``ok``). When the ground truth has no parameters at all it is
the fraction of ground-truth calls paired with a same-name call.

Nothing here is global and mutable; no deep copies are made; values are never modified.
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import permutations
from typing import Any

from toolgym.env.types import ToolCall, ToolSpec

__all__ = ["SUPPORTED_LANGUAGES", "AstVerdict", "match_calls", "standardize_string"]

SUPPORTED_LANGUAGES = ("python",)

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

_MAX_ERRORS = 50
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


# ------------------------------------------------------------------------------------ verdict


@dataclass(frozen=True)
class AstVerdict:
    """The outcome of :func:`match_calls`."""

    ok: bool
    """BFCL would accept (up to the deliberate differences in the module docstring)."""
    expected: int
    """Number of expected (ground-truth) calls."""
    matched: int
    """Ground-truth calls paired with a fully passing model call in the optimal assignment."""
    arg_accuracy: float
    """Fraction of expected (call, param) pairs whose value is accepted, in [0, 1]."""
    errors: tuple[str, ...] = ()
    """Human-readable reasons (what was expected, what came); empty when ``ok``."""
    assignment: tuple[tuple[int, int], ...] = ()
    """(model call index, ground-truth index) pairs of the optimal assignment (same-name pairs only),
    sorted by model call index."""


_OK_SINGLE = AstVerdict(True, 1, 1, 1.0, (), ((0, 0),))  # immutable: safe to share

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


# ------------------------------------------------------------------------------------ one pair


def _score_pair(
    args: dict | None, gt: Mapping, props: Mapping, required: Sequence, errors: list[str] | None = None
) -> tuple[bool, int]:
    """(passes BFCL's per-call check, number of ground-truth params accepted).

    With ``errors`` given, the reasons for each failure are appended to it (messages are only
    built on failures, so passing pairs cost nothing extra).
    """
    if args is None:
        if errors is not None:
            errors.append("arguments are not an object")
        return False, 0
    ok = True
    acc = 0
    present = 0  # given params that the ground truth lists
    for r in required:
        if r not in args:
            ok = False
            if errors is None:
                break
            errors.append(f"missing required parameter {r!r}")
    for k, v in args.items():
        allowed = gt.get(k, _MISSING)
        node = props.get(k, _MISSING)
        if allowed is _MISSING or node is _MISSING:
            ok = False
            if errors is not None:
                why = "not in the tool's schema" if node is _MISSING else "the expected call does not set it"
                errors.append(f"unexpected parameter {k!r} ({why})")
            if allowed is not _MISSING:
                present += 1
            continue
        present += 1
        code = _check_value(v, allowed, node)
        if not code:
            acc += 1
            continue
        ok = False
        if errors is not None:
            errors.append(_value_error(k, v, allowed, node, code))
    if len(gt) > present:  # some ground-truth params were not given
        for k, allowed in gt.items():
            if k not in args:
                if _contains_empty(allowed) and k not in required:
                    acc += 1
                else:
                    ok = False
                    if errors is not None and k not in required:
                        errors.append(f"parameter {k!r} is missing (expected {_r(allowed)}; it may not be omitted)")
    return ok, acc


def _value_error(k: str, v: Any, allowed: Any, node: Any, code: int) -> str:
    t = _bfcl_type(node, v)
    if code == _TYPE:
        return f"parameter {k!r}: expected type {t}, got {type(v).__name__} {_r(v)}"
    if code == _NESTED_TYPE:
        items = node.get("items") if type(node) is dict else None
        return f"parameter {k!r}: the elements of {_r(v)} must have type {_bfcl_type(items, None)}"
    how = " (compared case-insensitively, ignoring ' ,./-_*^')" if type(v) is str else ""
    return f"parameter {k!r}: got {_r(v)}, expected one of {_r(allowed)}{how}"


# ------------------------------------------------------------------------------------ matching

_Expected = tuple  # (name, gt params, schema properties, schema required)


def _prepare(possible_answers: Sequence, tools: Sequence[ToolSpec]) -> tuple[list[_Expected], int]:
    specs: dict[str, ToolSpec] | None = None
    exp: list[_Expected] = []
    n_params = 0
    for j, ans in enumerate(possible_answers):
        if (type(ans) is not dict and not isinstance(ans, Mapping)) or len(ans) != 1:
            raise ValueError(f"ground truth #{j} must be a one-key mapping {{name: {{param: [values]}}}}, got {_r(ans)}")
        ((gt_name, gt_params),) = ans.items()
        if type(gt_params) is not dict and not isinstance(gt_params, Mapping):
            raise ValueError(f"ground truth #{j} ({gt_name}) parameters must be a mapping, got {_r(gt_params)}")
        if len(possible_answers) == 1:
            spec = next((t for t in tools if t.name == gt_name), None)
        else:
            if specs is None:
                specs = {}
                for t in tools:
                    specs.setdefault(t.name, t)  # BFCL's find_description takes the first
            spec = specs.get(gt_name)
        if spec is None:
            raise ValueError(f"ground truth #{j} calls {gt_name!r}, which is not among the task's tools")
        params = spec.parameters
        if type(params) is not dict:
            params = params if isinstance(params, Mapping) else {}
        props = params.get("properties")
        if type(props) is not dict:
            props = props if isinstance(props, Mapping) else {}
        required = params.get("required") or ()
        if type(required) is str:
            required = (required,)
        exp.append((gt_name, gt_params, props, required))
        n_params += len(gt_params)
    return exp, n_params


def _args_of(call: ToolCall) -> dict | None:
    a = call.arguments
    if type(a) is dict:
        return a
    return dict(a) if isinstance(a, Mapping) else None


def _assign_group(ci: list[int], gj: list[int], w: dict[tuple[int, int], int]) -> list[tuple[int, int]]:
    """Maximum-weight assignment between model calls ``ci`` and ground-truth entries ``gj``."""
    if len(ci) == 1 or len(gj) == 1:
        return [max(((i, j) for i in ci for j in gj), key=w.__getitem__)]
    if len(ci) <= 3 and len(gj) <= 3:  # at most 6 pairings: enumerate them
        best: tuple[tuple[int, int], ...] = ()
        best_w = -1
        if len(ci) <= len(gj):
            cands = (tuple(zip(ci, p)) for p in permutations(gj, len(ci)))
        else:
            cands = (tuple(zip(p, gj)) for p in permutations(ci, len(gj)))
        for cand in cands:
            s = sum(w[p] for p in cand)
            if s > best_w:
                best, best_w = cand, s
        return list(best)
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    m = np.array([[w[(i, j)] for j in gj] for i in ci], dtype=float)
    rows, cols = linear_sum_assignment(m, maximize=True)
    return [(ci[int(r)], gj[int(c)]) for r, c in zip(rows, cols)]


def _fmt_call(name: str, args: Any) -> str:
    if type(args) is not dict:
        return f"{name}({_r(args)})"
    parts = [f"{k}={_r(v)}" for k, v in list(args.items())[:8]]
    if len(args) > 8:
        parts.append("...")
    return f"{name}({', '.join(parts)})"


def _fmt_expected(name: str, gt: Mapping) -> str:
    parts = []
    for k, allowed in list(gt.items())[:8]:
        if type(allowed) is list and len(allowed) == 1:
            parts.append(f"{k}={_r(allowed[0])}")
        elif type(allowed) is list and allowed == [""]:
            parts.append(f"{k}=<omitted>")
        else:
            parts.append(f"{k}∈{_r(allowed)}")
    if len(gt) > 8:
        parts.append("...")
    return f"{name}({', '.join(parts)})"


def match_calls(
    calls: Sequence[ToolCall],
    possible_answers: Sequence[Mapping[str, Mapping[str, list]]],
    tools: Sequence[ToolSpec],
    *,
    language: str = "python",
) -> AstVerdict:
    """Match a model's calls against BFCL possible answers (see the module docstring).

    ``possible_answers`` is BFCL's ground truth: ``[{func_name: {param: [allowed values...]}}, ...]``.
    ``tools`` are the task's tools; each ground-truth name must be one of them. Model call
    arguments are read, never modified.
    Raises ``ValueError`` for a malformed ground truth or an unsupported ``language``.
    """
    if language != "python":
        lang = str(getattr(language, "value", language) or "python").lower()
        if lang not in SUPPORTED_LANGUAGES:
            raise ValueError(
                f"AST matching for language {language!r} is not implemented (supported: python); "
                "BFCL's java/javascript checkers first convert string values with their own type converters"
            )
    exp, n_params = _prepare(possible_answers, tools)
    n_exp = len(exp)
    n_calls = len(calls)

    # ---- fast path: one expected call, one given
    if n_exp == 1 and n_calls == 1:
        gt_name, gt_params, props, required = exp[0]
        call = calls[0]
        if call.name != gt_name:
            names = {gt_name: [0]}
            return AstVerdict(False, 1, 0, 0.0, (f"call #0 is {call.name!r}, expected {gt_name!r}" + _case_hint(call.name, names),), ())
        reasons: list[str] = []
        ok, acc = _score_pair(_args_of(call), gt_params, props, required, reasons)
        if ok:
            return _OK_SINGLE
        errors = tuple(f"call #0 {gt_name}: {e}" for e in reasons or ["does not match"])
        return AstVerdict(False, 1, 0, acc / n_params if n_params else 1.0, errors, ((0, 0),))

    exp_by_name: dict[str, list[int]] = {}
    for j, e in enumerate(exp):
        exp_by_name.setdefault(e[0], []).append(j)
    calls_by_name: dict[str, list[int]] = {}
    for i, c in enumerate(calls):
        if c.name in exp_by_name:
            calls_by_name.setdefault(c.name, []).append(i)
    args_list = [_args_of(c) for c in calls]

    # scores of same-name pairs, computed on demand and shared by both phases
    scored: dict[tuple[int, int], tuple[bool, int]] = {}

    # ---- BFCL's own greedy pairing, in ground-truth order: when it pairs everything, done
    if n_exp == n_calls:
        used = [False] * n_calls
        greedy: list[tuple[int, int]] = []
        for j in range(n_exp):
            gt_name, gt_params, props, required = exp[j]
            for i in calls_by_name.get(gt_name, ()):
                if not used[i]:
                    r = scored[(i, j)] = _score_pair(args_list[i], gt_params, props, required)
                    if r[0]:
                        used[i] = True
                        greedy.append((i, j))
                        break
            else:
                break
        if len(greedy) == n_exp:
            greedy.sort()
            return AstVerdict(True, n_exp, n_exp, 1.0, (), tuple(greedy))

    # ---- optimal assignment, name group by name group (pairs only exist within a name)
    m = min(n_calls, n_exp)
    b = m + 1
    big = n_params * b + m + 1  # passing pairs ≫ accepted params ≫ same-name pairs
    weight: dict[tuple[int, int], int] = {}
    assignment: list[tuple[int, int]] = []
    for name, ci in calls_by_name.items():
        gj = exp_by_name[name]
        for j in gj:
            _, gt_params, props, required = exp[j]
            for i in ci:
                r = scored.get((i, j))
                if r is None:
                    r = scored[(i, j)] = _score_pair(args_list[i], gt_params, props, required)
                weight[(i, j)] = (big if r[0] else 0) + r[1] * b + 1
        assignment.extend(_assign_group(ci, gj, weight))
    assignment.sort()
    matched = sum(1 for p in assignment if scored[p][0])
    ok = n_exp == n_calls and matched == n_exp
    if ok:  # BFCL's greedy order failed but a perfect pairing exists (see module docstring)
        return AstVerdict(True, n_exp, matched, 1.0, (), tuple(assignment))
    if n_params:
        accuracy = sum(scored[p][1] for p in assignment) / n_params
    elif n_exp:
        accuracy = len(assignment) / n_exp
    else:
        accuracy = 1.0 if n_calls == 0 else 0.0

    errors: list[str] = []
    if n_calls != n_exp:
        errors.append(f"expected {n_exp} call(s), got {n_calls}")
    paired_calls = set()
    paired_exp = set()
    for i, j in assignment:
        paired_calls.add(i)
        paired_exp.add(j)
        if scored[(i, j)][0] or len(errors) > _MAX_ERRORS:
            continue
        _, gt_params, props, required = exp[j]
        reasons: list[str] = []
        _score_pair(args_list[i], gt_params, props, required, reasons)
        head = f"call #{i} {calls[i].name} vs expected #{j}: "
        errors.extend(head + e for e in reasons or ["does not match"])
    for j in range(n_exp):
        if j not in paired_exp and len(errors) <= _MAX_ERRORS:
            errors.append(f"expected call #{j} {_fmt_expected(exp[j][0], exp[j][1])} has no matching call")
    for i, call in enumerate(calls):
        if i not in paired_calls and len(errors) <= _MAX_ERRORS:
            if call.name in exp_by_name:
                errors.append(f"call #{i} {_fmt_call(call.name, call.arguments)} is surplus")
            else:
                errors.append(f"call #{i} {call.name!r} is not an expected function" + _case_hint(call.name, exp_by_name))
    if len(errors) > _MAX_ERRORS:
        errors = errors[:_MAX_ERRORS] + ["... (more errors left out)"]
    return AstVerdict(False, n_exp, matched, accuracy, tuple(errors), tuple(assignment))


def _case_hint(name: Any, names: Mapping[str, Any]) -> str:
    if type(name) is not str:
        return ""
    low = name.lower()
    for n in names:
        if n != name and n.lower() == low:
            return f" (names are case-sensitive; did you mean {n!r}?)"
    return ""
