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
   larger ones with the algorithm of ``scipy.optimize.linear_sum_assignment`` (a pure-Python port
   that picks the same pairs, ties included; scipy itself only for groups over 400 cells, imported
   then). BFCL's greedy pass (same order) is
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

Layout: this module is the public entry point (import from here). It pairs the model's calls with
the ground-truth calls (counts, BFCL's greedy pass, the optimal assignment) and builds the
:class:`AstVerdict` and its messages. One call against one ground-truth entry (schema lookup by
name; required, unexpected and omitted parameters) is :mod:`toolgym.env.reward.ast_call`; one value
against its allowed values (types, standardisation, comparisons) is
:mod:`toolgym.env.reward.ast_values`.

Nothing here is global and mutable; no deep copies are made; values are never modified.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import permutations
from typing import Any

from toolgym.env.reward.ast_call import _args_of, _prepare, _score_pair
from toolgym.env.reward.ast_values import _r, standardize_string
from toolgym.env.types import ToolCall, ToolSpec

__all__ = ["SUPPORTED_LANGUAGES", "AstVerdict", "match_calls", "standardize_string"]

SUPPORTED_LANGUAGES = ("python",)

_MAX_ERRORS = 50


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

# ------------------------------------------------------------------------------------ matching


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
    if len(ci) * len(gj) <= _PURE_LSAP_CELLS:  # scipy's algorithm, step for step: the same pairs, ties included
        return [(ci[r], gj[c]) for r, c in _lsap_max([[float(w[(i, j)]) for j in gj] for i in ci])]
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    m = np.array([[w[(i, j)] for j in gj] for i in ci], dtype=float)
    rows, cols = linear_sum_assignment(m, maximize=True)
    return [(ci[int(r)], gj[int(c)]) for r, c in zip(rows, cols)]


#: Groups up to this many (call, expected) cells are assigned in pure Python; larger ones (only
#: pathological outputs) by scipy, imported then.
_PURE_LSAP_CELLS = 400


def _lsap_max(weights: list[list[float]]) -> list[tuple[int, int]]:
    """Maximum-weight assignment of a rectangular matrix: (row, column) pairs.

    The shortest augmenting path method (Crouse 2016) exactly as ``scipy.optimize.
    linear_sum_assignment(maximize=True)`` runs it: the same negation, transposition of tall
    matrices, column visiting order and tie rules, with the same float operations in the same
    order, so it picks the very same assignment among equally good ones
    (``test_ast_match_lsap.py`` compares the two on many tie-heavy matrices).
    """
    nr, nc = len(weights), len(weights[0])
    transpose = nc < nr
    if transpose:
        cost = [[-weights[i][j] for i in range(nr)] for j in range(nc)]
        nr, nc = nc, nr
    else:
        cost = [[-x for x in row] for row in weights]
    inf = float("inf")
    u = [0.0] * nr
    v = [0.0] * nc
    col4row = [-1] * nr
    row4col = [-1] * nc
    path = [-1] * nc
    for cur in range(nr):
        spc = [inf] * nc  # shortest path costs
        sr = [False] * nr
        sc = [False] * nc
        remaining = list(range(nc - 1, -1, -1))
        num = nc
        min_val = 0.0
        i = cur
        sink = -1
        while sink == -1:
            index = -1
            lowest = inf
            sr[i] = True
            row = cost[i]
            ui = u[i]
            for it in range(num):
                j = remaining[it]
                r = min_val + row[j] - ui - v[j]
                if r < spc[j]:
                    path[j] = i
                    spc[j] = r
                if spc[j] < lowest or (spc[j] == lowest and row4col[j] == -1):
                    lowest = spc[j]
                    index = it
            min_val = lowest
            j = remaining[index]
            if row4col[j] == -1:
                sink = j
            else:
                i = row4col[j]
            sc[j] = True
            num -= 1
            remaining[index] = remaining[num]
        u[cur] += min_val
        for i in range(nr):
            if sr[i] and i != cur:
                u[i] += min_val - spc[col4row[i]]
        for j in range(nc):
            if sc[j]:
                v[j] -= min_val - spc[j]
        j = sink
        while True:
            i = path[j]
            row4col[j] = i
            col4row[i], j = j, col4row[i]
            if i == cur:
                break
    if transpose:
        return [(col4row[r], r) for r in range(nr)]
    return [(r, col4row[r]) for r in range(nr)]


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
    prepared: tuple[list, int] | None = None,
    expected_text: dict[int, str] | None = None,
) -> AstVerdict:
    """Match a model's calls against BFCL possible answers (see the module docstring).

    ``possible_answers`` is BFCL's ground truth: ``[{func_name: {param: [allowed values...]}}, ...]``.
    ``tools`` are the task's tools; each ground-truth name must be one of them. Model call
    arguments are read, never modified.
    Raises ``ValueError`` for a malformed ground truth or an unsupported ``language``.

    ``prepared``: the ground truth already read against ``tools`` (``ast_call._prepare`` of these
    very arguments; the engine keeps it per task); ``expected_text``: a per-task dict in which the
    wording of expected calls in messages is kept between calls. Neither changes the verdict.
    """
    if language != "python":
        lang = str(getattr(language, "value", language) or "python").lower()
        if lang not in SUPPORTED_LANGUAGES:
            raise ValueError(
                f"AST matching for language {language!r} is not implemented (supported: python); "
                "BFCL's java/javascript checkers first convert string values with their own type converters"
            )
    exp, n_params = _prepare(possible_answers, tools) if prepared is None else prepared
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
            text = expected_text.get(j) if expected_text is not None else None
            if text is None:
                text = _fmt_expected(exp[j][0], exp[j][1])
                if expected_text is not None:
                    expected_text[j] = text
            errors.append(f"expected call #{j} {text} has no matching call")
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
