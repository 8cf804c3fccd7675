"""Seeded, perturbed multi-turn trajectories for the BFCL parity harness (stdlib only).

A trajectory is what a model did on one BFCL multi-turn task: per user turn, a list of steps,
each step the calls the model emitted in parallel in one action (BFCL call strings such as
``"cd(folder='docs')"``). A turn with no steps is a turn where the model only answered in
text. Trajectories start from the task's ground truth and are perturbed the ways a policy
goes wrong (``KINDS``): drop, reorder, duplicate or alter calls, wrong argument values and
types, missing or misnamed arguments, extra and unknown calls, early stop, calls in the wrong
turn, calls in the turns where nothing can be done (miss_func / miss_param), and combinations.

Ground-truth strings are parsed with :mod:`ast` (never evaluated) and perturbed calls are
written back with :func:`ast.unparse`, so what a trajectory holds is plain Python call syntax
that both BFCL's checker and toolgym's pythonic parser read.
"""

from __future__ import annotations

import ast
import copy
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

CATEGORIES = ("multi_turn_base", "multi_turn_miss_func", "multi_turn_miss_param", "multi_turn_long_context")

Turns = list[list[str]]  # per turn, its calls (before they are grouped into steps)


@dataclass(frozen=True)
class Trajectory:
    """One scored unit: ``turns[i]`` is turn ``i``'s steps, each a list of call strings."""

    traj_id: str
    task_id: str
    category: str
    kind: str
    turns: list[list[list[str]]]
    entry: dict[str, Any] = field(repr=False)
    ground_truth: list[list[str]] = field(repr=False)

    def bfcl_item(self) -> dict[str, Any]:
        """The line :mod:`mt_parity_bfcl` reads."""
        return {"id": self.traj_id, "entry": self.entry, "ground_truth": self.ground_truth, "turns": self.turns}


def load_tasks(category: str) -> list[tuple[dict[str, Any], list[list[str]]]]:
    """BFCL's entries of ``category`` (id, involved_classes, initial_config) with ground truth."""
    root = resources.files("bfcl_eval") / "data"

    def rows(path: Any) -> list[dict[str, Any]]:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    answers = {r["id"]: r["ground_truth"] for r in rows(root / "possible_answer" / f"BFCL_v4_{category}.json")}
    out = []
    for e in rows(root / f"BFCL_v4_{category}.json"):
        entry = {"id": e["id"], "involved_classes": e["involved_classes"], "initial_config": e.get("initial_config", {})}
        out.append((entry, answers[e["id"]]))
    return out


# --------------------------------------------------------------------------- call surgery


def _call(text: str) -> ast.Call:
    node = ast.parse(text, mode="eval").body
    if not isinstance(node, ast.Call):
        raise ValueError(f"not a call: {text!r}")
    return node


def _literal(node: ast.AST) -> Any:
    return ast.literal_eval(node)


def _with_kw(text: str, edit: Callable[[ast.Call], bool]) -> str | None:
    """``text`` with ``edit`` applied to its call node, or None when ``edit`` found nothing to do."""
    node = _call(text)
    if not edit(node):
        return None
    return ast.unparse(node)


def _altered_value(value: Any, rng: random.Random) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + rng.choice((1, -1, 10))
    if isinstance(value, float):
        return round(value * rng.choice((1.5, 0.5, 2.0)) + 1.0, 2)
    if isinstance(value, str):
        return rng.choice((value + "_x", value.upper() if value.upper() != value else value.lower() + "z", "", value[: max(1, len(value) // 2)] + "q"))
    if isinstance(value, list):
        return value[:-1] if value else ["extra"]
    if isinstance(value, dict):
        return {**value, "extra": 1}
    return None


def _retyped_value(value: Any, rng: random.Random) -> Any:
    """The same value in another type: some are still ``==`` (2 -> 2.0, True -> 1), most not."""
    if isinstance(value, bool):
        return rng.choice((int(value), str(value).lower(), str(value)))
    if isinstance(value, int):
        return rng.choice((float(value), str(value), [value]))
    if isinstance(value, float):
        return rng.choice((int(value) if value == int(value) else str(value), str(value)))
    if isinstance(value, str):
        try:
            return rng.choice((int(value), float(value)))
        except ValueError:
            return rng.choice(([value], {"value": value}, len(value)))
    if isinstance(value, list):
        return rng.choice((json.dumps(value), value[0] if value else 0))
    return str(value)


def _edit_kw_value(text: str, rng: random.Random, how: Callable[[Any, random.Random], Any]) -> str | None:
    def edit(node: ast.Call) -> bool:
        kws = [k for k in node.keywords if k.arg is not None]
        targets: list[Any] = kws or list(range(len(node.args)))
        if not targets:
            return False
        t = rng.choice(targets)
        old = _literal(t.value if isinstance(t, ast.keyword) else node.args[t])
        new = how(old, rng)
        if new is None or (type(new) is type(old) and new == old):
            return False
        if isinstance(t, ast.keyword):
            t.value = ast.parse(repr(new), mode="eval").body
        else:
            node.args[t] = ast.parse(repr(new), mode="eval").body
        return True

    return _with_kw(text, edit)


def _drop_kw(text: str, rng: random.Random) -> str | None:
    def edit(node: ast.Call) -> bool:
        if node.keywords:
            node.keywords.pop(rng.randrange(len(node.keywords)))
            return True
        if node.args:
            node.args.pop()
            return True
        return False

    return _with_kw(text, edit)


def _rename_kw(text: str, rng: random.Random) -> str | None:
    def edit(node: ast.Call) -> bool:
        if not node.keywords:
            node.keywords.append(ast.keyword(arg="unexpected_arg", value=ast.Constant(1)))
            return True
        k = rng.choice(node.keywords)
        k.arg = (k.arg or "x") + rng.choice(("_name", "s", "_id"))
        return True

    return _with_kw(text, edit)


# --------------------------------------------------------------------------- perturbations


def _nonempty(turns: Turns) -> list[int]:
    return [i for i, t in enumerate(turns) if t]


def _pick_call(turns: Turns, rng: random.Random) -> tuple[int, int] | None:
    idx = _nonempty(turns)
    if not idx:
        return None
    t = rng.choice(idx)
    return t, rng.randrange(len(turns[t]))


def _replace_call(turns: Turns, rng: random.Random, edit: Callable[[str, random.Random], str | None]) -> bool:
    spots = [(t, c) for t in _nonempty(turns) for c in range(len(turns[t]))]
    rng.shuffle(spots)
    for t, c in spots[:6]:
        new = edit(turns[t][c], rng)
        if new is not None and new != turns[t][c]:
            turns[t][c] = new
            return True
    return False


def p_drop_call(turns: Turns, rng: random.Random) -> bool:
    spot = _pick_call(turns, rng)
    if spot is None:
        return False
    del turns[spot[0]][spot[1]]
    return True


def p_reorder(turns: Turns, rng: random.Random) -> bool:
    multi = [i for i, t in enumerate(turns) if len(set(t)) > 1]
    if not multi:
        return False
    t = rng.choice(multi)
    before = list(turns[t])
    while turns[t] == before:
        rng.shuffle(turns[t])
    return True


def p_duplicate_call(turns: Turns, rng: random.Random) -> bool:
    spot = _pick_call(turns, rng)
    if spot is None:
        return False
    t, c = spot
    turns[t].insert(c + 1, turns[t][c])
    return True


def p_alter_value(turns: Turns, rng: random.Random) -> bool:
    return _replace_call(turns, rng, lambda s, r: _edit_kw_value(s, r, _altered_value))


def p_wrong_type(turns: Turns, rng: random.Random) -> bool:
    return _replace_call(turns, rng, lambda s, r: _edit_kw_value(s, r, _retyped_value))


def p_missing_arg(turns: Turns, rng: random.Random) -> bool:
    return _replace_call(turns, rng, _drop_kw)


def p_bad_arg_name(turns: Turns, rng: random.Random) -> bool:
    return _replace_call(turns, rng, _rename_kw)


def p_extra_call(turns: Turns, rng: random.Random) -> bool:
    """A ground-truth call of this task (any turn) inserted somewhere it does not belong."""
    pool = [c for t in turns for c in t]
    if not pool:
        return False
    t = rng.randrange(len(turns))
    turns[t].insert(rng.randint(0, len(turns[t])), rng.choice(pool))
    return True


def p_unknown_tool(turns: Turns, rng: random.Random) -> bool:
    t = rng.choice(_nonempty(turns) or [0])
    turns[t].insert(rng.randint(0, len(turns[t])), rng.choice(("nonexistent_tool_xyz(a=1)", "search_web(query='answer')", "get_state()")))
    return True


def p_early_stop(turns: Turns, rng: random.Random) -> bool:
    idx = _nonempty(turns)
    if not idx:
        return False
    k = rng.randint(0, idx[-1])
    for i in range(k, len(turns)):
        if i == k and turns[i] and rng.random() < 0.5:
            turns[i] = turns[i][: rng.randrange(len(turns[i]))]  # stop mid-turn
        elif i > k or not turns[i]:
            turns[i] = []
        else:
            turns[i] = []
    return True


def p_wrong_turn(turns: Turns, rng: random.Random) -> bool:
    spot = _pick_call(turns, rng)
    if spot is None or len(turns) < 2:
        return False
    t, c = spot
    call = turns[t].pop(c)
    dest = t + 1 if t + 1 < len(turns) and (t == 0 or rng.random() < 0.6) else t - 1
    turns[dest].insert(0 if dest > t else len(turns[dest]), call)
    return True


def p_empty_turn(turns: Turns, rng: random.Random) -> bool:
    idx = _nonempty(turns)
    if not idx:
        return False
    turns[rng.choice(idx)] = []
    return True


def p_call_when_impossible(turns: Turns, rng: random.Random) -> bool:
    """A call in a turn whose ground truth is empty (miss_func / miss_param): the next turn's first call early."""
    empty = [i for i, t in enumerate(turns) if not t]
    if not empty:
        return False
    t = rng.choice(empty)
    later = [c for u in turns[t + 1:] for c in u] or [c for u in turns for c in u]
    if not later:
        return False
    turns[t].append(later[0] if rng.random() < 0.7 else rng.choice(later))
    return True


PERTURBATIONS: dict[str, Callable[[Turns, random.Random], bool]] = {
    "drop_call": p_drop_call,
    "reorder": p_reorder,
    "duplicate_call": p_duplicate_call,
    "alter_value": p_alter_value,
    "wrong_type": p_wrong_type,
    "missing_arg": p_missing_arg,
    "bad_arg_name": p_bad_arg_name,
    "extra_call": p_extra_call,
    "unknown_tool": p_unknown_tool,
    "early_stop": p_early_stop,
    "wrong_turn": p_wrong_turn,
    "empty_turn": p_empty_turn,
    "call_when_impossible": p_call_when_impossible,
}
KINDS = ("ground_truth", "ground_truth_stepwise", *PERTURBATIONS, "combo")


def _container_as(text: str, rng: random.Random, node_type: type) -> str | None:
    def edit(node: ast.Call) -> bool:
        lists = [k for k in node.keywords if isinstance(k.value, ast.List) and k.value.elts]
        if not lists:
            return False
        k = rng.choice(lists)
        k.value = ast.Tuple(elts=k.value.elts, ctx=ast.Load()) if node_type is ast.Tuple else ast.Set(elts=k.value.elts)
        return True

    return _with_kw(text, edit)


#: Probes of divergences known to remain (bench/multi_turn_parity.md), kept out of ``KINDS``:
#: a list argument written as a tuple or a set literal. BFCL's ``eval`` keeps the type (a
#: tuple stored in state != the ground truth's list); toolgym's arguments are JSON.
PROBES: dict[str, Callable[[Turns, random.Random], bool]] = {
    "tuple_arg": lambda turns, rng: _replace_call(turns, rng, lambda s, r: _container_as(s, r, ast.Tuple)),
    "set_arg": lambda turns, rng: _replace_call(turns, rng, lambda s, r: _container_as(s, r, ast.Set)),
}


def _steps(turns: Turns, rng: random.Random, stepwise: bool | None = None) -> list[list[list[str]]]:
    """Group each turn's calls into steps: all in one parallel step, one per step, or mixed."""
    out = []
    for calls in turns:
        mode = ("each" if stepwise else "one") if stepwise is not None else rng.choice(("one", "one", "each", "mixed"))
        if not calls:
            out.append([])
        elif mode == "one":
            out.append([list(calls)])
        elif mode == "each":
            out.append([[c] for c in calls])
        else:
            steps: list[list[str]] = [[]]
            for c in calls:
                if steps[-1] and rng.random() < 0.5:
                    steps.append([])
                steps[-1].append(c)
            out.append(steps)
    return out


def make_trajectory(entry: dict[str, Any], gt: list[list[str]], kind: str, rng: random.Random, serial: int) -> Trajectory | None:
    turns: Turns = copy.deepcopy([list(t) for t in gt])
    if kind == "ground_truth":
        steps = _steps(turns, rng, stepwise=False)
    elif kind == "ground_truth_stepwise":
        steps = _steps(turns, rng, stepwise=True)
    else:
        names = rng.sample(list(PERTURBATIONS), 2) if kind == "combo" else [kind]
        applied = [n for n in names if {**PERTURBATIONS, **PROBES}[n](turns, rng)]
        if not applied:
            return None
        steps = _steps(turns, rng)
    return Trajectory(f"{entry['id']}#{serial}:{kind}", entry["id"], entry["id"].rsplit("_", 1)[0], kind, steps, entry, gt)


def probes(seed: int = 0, categories: tuple[str, ...] = CATEGORIES) -> Iterator[Trajectory]:
    """One trajectory per task and probe kind, where the probe applies (see ``PROBES``)."""
    rng = random.Random(seed)
    for category in categories:
        for entry, gt in load_tasks(category):
            for kind in PROBES:
                traj = make_trajectory(entry, gt, kind, rng, 100)
                if traj is not None:
                    yield traj


def generate(per_task: int = 4, seed: int = 0, categories: tuple[str, ...] = CATEGORIES, tasks_per_category: int | None = None) -> Iterator[Trajectory]:
    """``per_task`` trajectories per task: its ground truth, then perturbation kinds in rotation.

    Deterministic for a seed. Every kind appears in every category (the rotation is offset per
    task); a perturbation that cannot apply to a task (no turn with two calls to reorder, ...)
    moves on to the next kind.
    """
    rng = random.Random(seed)
    perturbed = [k for k in KINDS if k != "ground_truth"]
    rotation = 0
    for category in categories:
        tasks = load_tasks(category)
        if tasks_per_category is not None:
            tasks = tasks[:tasks_per_category]
        for entry, gt in tasks:
            serial = 0
            yield make_trajectory(entry, gt, "ground_truth", rng, serial)  # type: ignore[misc]
            made, tries = 1, 0
            while made < per_task and tries < 4 * per_task:
                kind = perturbed[rotation % len(perturbed)]
                rotation += 1
                tries += 1
                serial += 1
                traj = make_trajectory(entry, gt, kind, rng, serial)
                if traj is not None:
                    made += 1
                    yield traj
