"""toolgym's multi-turn verdicts agree with BFCL's own ``multi_turn_checker`` (lean version).

A few dozen seeded trajectories (ground truth and every perturbation kind, all four multi-turn
categories) are scored by BFCL's checker in its own venv (``make bfcl-venv``) and by
``gym.make("toolgym/ToolUse-v0", template="pythonic")``, back to back on one long-lived env.
The full harness with 3,200 trajectories is ``bench/bench_multi_turn_parity.py``; its
disagreement classes are explained in bench/multi_turn_parity.md.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import pytest

from toolgym.env.reward.multi_turn import GroundTruthReplay, TurnRecord, check_multi_turn
from toolgym.env.tools.state_codec import encode
from toolgym.env.types import ToolCall

HERE = Path(__file__).parent


def _helper(name: str):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_verdicts_agree_with_bfcls_checker():
    run = _helper("mt_parity_run")
    gen = _helper("mt_parity_gen")
    problem = run.bfcl_venv_problem()
    if problem:
        pytest.skip(problem)
    trajs = list(gen.generate(per_task=5, seed=7, tasks_per_category=3))
    assert len(trajs) >= 60 and {t.category for t in trajs} == set(gen.CATEGORIES)
    outcomes = list(run.score_all(trajs))
    # Both verdicts occur, so agreement is not the trivial "everything passes / fails".
    assert {o.bfcl["valid"] for o in outcomes} == {True, False}
    # Positional calls (BFCL's own ground truth holds 160, e.g. sort('a.pdf')) are included.
    assert any(ast.parse(c, mode="eval").body.args for o in outcomes for turn in o.traj.turns for step in turn for c in step)
    wrong = [(o.traj.traj_id, o.bfcl, o.toolgym) for o in outcomes if not o.agree]
    assert not wrong, wrong
    # Where both fail, toolgym names the same first failing turn that BFCL stopped at.
    both_fail = [o for o in outcomes if not o.bfcl["valid"] and not o.toolgym["valid"] and o.bfcl.get("turn") is not None]
    assert both_fail and all(o.same_turn for o in both_fail), [(o.traj.traj_id, o.bfcl, o.toolgym) for o in both_fail if not o.same_turn]


def _replay(state: dict) -> GroundTruthReplay:
    call = ToolCall(name="post", arguments={}, raw="post()")
    return GroundTruthReplay(task_id="t", turn_calls=((call,),), turn_results=(("ok",),), turn_states=(state,))


@pytest.mark.parametrize(
    ("model", "truth", "equal"),
    [
        ({2: "x"}, {2.0: "x"}, True),  # 2 == 2.0, as dict keys too
        ({1: True}, {1: 1}, True),
        ({"2": "x"}, {2: "x"}, False),  # "2" != 2: the old snapshot stringified keys and passed this
        ((1, 2), [1, 2], False),
        ({1, 2}, frozenset({2, 1}), True),
    ],
)
def test_state_check_uses_pythons_equality(model, truth, equal):
    state = lambda v: {"API": {"data": encode(v)}}  # noqa: E731
    verdict = check_multi_turn([TurnRecord(calls=(ToolCall("post", {}, "post()"),), results=("ok",), state=state(model))], _replay(state(truth)))
    assert verdict.ok is equal, verdict.errors
