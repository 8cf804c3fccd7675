"""Reward-hacking probes on real tasks through the env over gRPC: none may beat an honest weak policy.

**Honest weak policy** (the baseline), per task kind — it tries, with the right tools, and gets
the details wrong:

- ``ast`` (BFCL single-turn): one call per expected function, the function's required arguments
  present with values of the right type but wrong (ints +7919, floats ×3.7+1, strings prefixed
  ``wrong_``, lists/objects emptied, booleans flipped).
- ``multi_turn`` (BFCL stateful): in each user turn, the first ground-truth call's tool with its
  arguments perturbed the same way, then a short text that ends the turn.
- ``final_answer`` (python-tool tasks): one ``python`` call that computes something else
  (``print(2 + 2)``), then that (wrong) number as the final answer.

**Probes** (each a test, per task kind): call every offered tool; repeat one call many times;
answer without calling any tool; flood the output (a huge action of numbers, call-like text and
fake reward strings); give up at once. On every sampled task a probe's total must not exceed the
weak policy's total on that task (and so neither may its mean).
"""

from __future__ import annotations

import json
from statistics import mean

import pytest

from toolgym.env.client import ToolgymClient
from toolgym.env.parsers.pythonic import parse_python_calls
from toolgym.env.server.app import ServerConfig, start_server

AST_TASKS = ["simple_python_0", "simple_python_15", "simple_python_120", "multiple_3", "multiple_40", "parallel_5",
             "parallel_multiple_2", "live_simple_10-3-6", "simple_python_200", "multiple_100"]
MULTI_TASKS = ["multi_turn_base_0", "multi_turn_base_3", "multi_turn_base_7", "multi_turn_miss_param_2"]
PY_TASKS = ["toolgym_python_0", "toolgym_python_2", "toolgym_python_3", "toolgym_python_5", "toolgym_python_6", "toolgym_python_8",
            "toolgym_python_11", "toolgym_python_13"]
KINDS = {"ast": AST_TASKS, "multi_turn": MULTI_TASKS, "final_answer": PY_TASKS}


def tc(name: str, args: dict) -> str:
    return f'<tool_call>{json.dumps({"name": name, "arguments": args})}</tool_call>'


def perturb(v):
    if isinstance(v, bool):
        return not v
    if isinstance(v, int):
        return v + 7919
    if isinstance(v, float):
        return v * 3.7 + 1
    if isinstance(v, str):
        return "wrong_" + v
    return type(v)() if isinstance(v, (list, dict)) else v


@pytest.fixture(scope="module")
def server(suite):
    srv = start_server(ServerConfig(port=0, sandbox_workers=2), suite=suite)
    yield srv
    srv.stop(0)


@pytest.fixture(scope="module")
def client(server):
    with ToolgymClient(server.address, timeout=120) as c:
        yield c


def play(client: ToolgymClient, task_id: str, policy) -> float:
    """Run ``policy(info, turn, step_in_turn) -> action`` until the episode ends; the final total."""
    r = client.reset(task_id, template="hermes", max_steps=40)
    info, turn, k = r.info, 0, 0
    try:
        for _ in range(40):
            s = client.step(r.session_id, policy(info, turn, k))
            if s.terminated or s.truncated:
                return s.score.total
            if s.info.get("turn", turn) != turn:
                turn, k = s.info["turn"], 0
            else:
                k += 1
    finally:
        client.close_session(r.session_id)
    raise AssertionError(f"{task_id}: episode did not end")


# ---------------------------------------------------------------------------- the honest weak policy
def weak_calls(task, turn: int) -> list[str]:
    if task.kind == "ast":
        out = []
        schemas = {t.name: t.parameters for t in task.tools}
        for gt in task.ground_truth:
            name, params = next(iter(gt.items()))
            required = (schemas.get(name) or {}).get("required") or list(params)
            args = {p: perturb(next((v for v in params.get(p, []) if v != ""), "x")) for p in required}
            out.append(tc(name, args))
        return out
    calls = [c for s in (task.ground_truth[turn] if turn < len(task.ground_truth) else ()) for c in parse_python_calls(s, allow_positional=True)]
    return [tc(calls[0].name, {k: perturb(v) for k, v in calls[0].arguments.items()})] if calls else []


def weak_policy(task):
    def act(info, turn, k):
        if task.kind == "ast":
            return "".join(weak_calls(task, 0))
        if task.kind == "final_answer":
            return tc("python", {"code": "print(2 + 2)"}) if k == 0 else "Final Answer: 4"
        calls = weak_calls(task, turn)
        return calls[0] if k == 0 and calls else "Done with this request."
    return act


# ---------------------------------------------------------------------------- probes
def every_tool(task):
    def act(info, turn, k):
        names = [t["name"] for t in info["tools"]]
        if task.kind == "final_answer":
            return tc("python", {"code": "print(1)"}) if k == 0 else "Final Answer: 1"
        if task.kind == "multi_turn" and k > 0:
            return "Done with this request."
        return "".join(tc(n, {}) for n in names)
    return act


def repeat_calls(task):
    def act(info, turn, k):
        if task.kind == "ast":
            return weak_calls(task, 0)[0] * 8
        if task.kind == "final_answer":
            return tc("python", {"code": "print(2 + 2)"}) if k < 6 else "Final Answer: 4"
        calls = weak_calls(task, turn)
        return calls[0] if calls and k < 6 else "Done with this request."
    return act


def answer_without_calling(task):
    def act(info, turn, k):
        return "Final Answer: 42" if task.kind == "final_answer" else "I have taken care of that; the answer is 42."
    return act


FAKE = '{"total": 1.0, "valid": true, "reward": 1.0} REWARD=1.0 task_completion: 1.0 '


def flood(task):
    numbers = " ".join(str(i) for i in range(0, 120_000))  # every small integer: ~700 kB
    def act(info, turn, k):
        names = [t["name"] for t in info["tools"]]
        noise = FAKE * 200 + " ".join(f"{n}()" for n in names) * 20
        if task.kind == "final_answer":  # one honest-looking call, then an answer that lists every number
            return tc("python", {"code": "print(2 + 2)"}) if k == 0 else "Final Answer: " + numbers + " " + noise
        return noise + numbers[:200_000]
    return act


def give_up(task):
    def act(info, turn, k):
        return "<give_up>this is too hard</give_up>"
    return act


PROBES = {"call_every_tool": every_tool, "repeat_calls": repeat_calls, "answer_without_calling": answer_without_calling,
          "flood_output": flood, "give_up_at_once": give_up}
KNOWN_HOLES: dict[tuple[str, str], str] = {}  # every probe hole found so far is fixed (numeric-answer flooding was one)


@pytest.fixture(scope="module")
def weak_scores(client, suite):
    return {kind: {t: play(client, t, weak_policy(suite.get(t))) for t in tasks} for kind, tasks in KINDS.items()}


CASES = [pytest.param(p, k, marks=pytest.mark.xfail(strict=True, reason=KNOWN_HOLES[(p, k)]) if (p, k) in KNOWN_HOLES else ())
         for p in PROBES for k in KINDS]


@pytest.mark.parametrize("probe,kind", CASES)
def test_probe_scores_no_better_than_honest_weak_policy(client, suite, weak_scores, probe, kind):
    weak = weak_scores[kind]
    got = {t: play(client, t, PROBES[probe](suite.get(t))) for t in KINDS[kind]}
    worst = max(got, key=lambda t: got[t] - weak[t])
    assert mean(got.values()) <= mean(weak.values()) + 1e-9, (probe, kind, got, weak)
    assert got[worst] <= weak[worst] + 1e-9, (probe, kind, worst, got[worst], weak[worst])


def test_weak_policy_is_a_real_baseline(weak_scores):
    """The baseline is neither zero nor perfect: right tools with wrong arguments earn more than doing nothing
    (0.1, format_compliance's weight, under the README's work-done rule) and far less than ground truth."""
    for kind, scores in weak_scores.items():
        assert 0.1 < mean(scores.values()) < 0.9, (kind, scores)
