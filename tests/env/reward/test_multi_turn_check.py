"""Completion check of stateful multi-turn tasks against a ground-truth replay (BFCL v4 rules)."""

from __future__ import annotations

import json
from collections import Counter
from functools import lru_cache
from importlib import resources

import pytest

from toolgym.env.reward.multi_turn import (
    GroundTruthReplay,
    MultiTurnVerdict,
    TurnRecord,
    check_multi_turn,
    state_differences,
)
from toolgym.env.types import ToolCall

# --------------------------------------------------------------------------- helpers


@lru_cache(maxsize=None)
def load_category(category: str) -> tuple[dict, ...]:
    """BFCL v4 multi-turn entries of ``category``, each merged with its ground truth."""
    pytest.importorskip("bfcl_eval")
    data = resources.files("bfcl_eval") / "data"
    entries = [json.loads(line) for line in (data / f"BFCL_v4_multi_turn_{category}.json").read_text().splitlines() if line.strip()]
    answers = {}
    for line in (data / "possible_answer" / f"BFCL_v4_multi_turn_{category}.json").read_text().splitlines():
        if line.strip():
            a = json.loads(line)
            answers[a["id"]] = a["ground_truth"]
    return tuple(dict(e, ground_truth=answers[e["id"]]) for e in entries)


@lru_cache(maxsize=None)
def replays(category: str) -> tuple[GroundTruthReplay, ...]:
    from toolgym.env.tools.bfcl_backends import replay_ground_truth

    return tuple(replay_ground_truth(e) for e in load_category(category))


def gt_records(rep: GroundTruthReplay) -> list[TurnRecord]:
    """What the env records for a model that makes exactly the ground-truth calls."""
    return [TurnRecord(list(c), list(r), s) for c, r, s in zip(rep.turn_calls, rep.turn_results, rep.turn_states)]


def state_before(rep: GroundTruthReplay, turn: int) -> dict:
    return rep.turn_states[turn - 1] if turn > 0 else rep.initial_state


def drop_turn_calls(rep: GroundTruthReplay, turn: int) -> list[TurnRecord]:
    """Ground-truth records, except that the model makes no call from ``turn`` on.

    Every later turn must have an empty ground truth (the state then just carries over).
    """
    assert all(not rep.turn_calls[j] for j in range(turn + 1, rep.num_turns))
    recs = gt_records(rep)[:turn]
    carried = state_before(rep, turn)
    return recs + [TurnRecord([], [], carried) for _ in range(turn, rep.num_turns)]


def last_nonempty_turn(rep: GroundTruthReplay) -> int:
    return max(i for i in range(rep.num_turns) if rep.turn_calls[i])


def call(name: str, **args) -> ToolCall:
    return ToolCall(name, args)


def tiny_replay(**overrides) -> GroundTruthReplay:
    """Two turns: turn 0 makes a dir and lists; turn 1 reads a value."""
    fields = dict(
        task_id="t",
        turn_calls=((call("mkdir", dir_name="x"), call("ls")), (call("get", key="k"),)),
        turn_results=(("None", '{"ls": ["x"]}'), ('{"v": 1}',)),
        turn_states=({"FS": {"root": ["x"], "n": 1}}, {"FS": {"root": ["x"], "n": 1}}),
        initial_state={"FS": {"root": [], "n": 1}},
    )
    fields.update(overrides)
    return GroundTruthReplay(**fields)


# --------------------------------------------------------------------------- all of BFCL's data


def test_all_200_base_tasks_pass_on_their_own_ground_truth_and_fail_without_their_last_turn():
    reps = replays("base")
    assert len(reps) == 200
    last_turn_empty = []
    for rep in reps:
        full = check_multi_turn(gt_records(rep), rep)
        assert full == MultiTurnVerdict(ok=True, turns_ok=(True,) * rep.num_turns, score=1.0, errors=()), rep.task_id

        last = rep.num_turns - 1
        if not rep.turn_calls[last]:
            # The last turn's ground truth is empty: there is nothing to drop, the verdict stays.
            last_turn_empty.append(rep.task_id)
            assert check_multi_turn(drop_turn_calls(rep, last), rep) == full
            last = last_nonempty_turn(rep)
        dropped = check_multi_turn(drop_turn_calls(rep, last), rep)
        assert not dropped.ok, rep.task_id
        assert dropped.score < full.score, rep.task_id
        assert not dropped.turns_ok[last] and all(dropped.turns_ok[:last]), rep.task_id
        assert any(e.startswith(f"turn {last}: no call made") for e in dropped.errors), rep.task_id
    # multi_turn_base_167's last user turn ("an invoice for the booking we cancelled") has an
    # empty ground truth in BFCL's data; its last acting turn (cancel_booking) is dropped instead.
    assert last_turn_empty == ["multi_turn_base_167"]


def test_dropping_the_last_turn_also_fails_state_or_results_except_where_the_data_cannot_tell():
    """Beyond BFCL's "no call made" rule: does the state/result check alone catch the drop?

    Only multi_turn_base_139 escapes it: its last turn is a single read-only get_watchlist()
    whose result the model's turn 2 already returned (and BFCL's result check accepts results
    from earlier turns). BFCL's empty-turn rule is what fails it.
    """
    escaped = []
    for rep in replays("base"):
        last = last_nonempty_turn(rep)
        before = state_before(rep, last)
        earlier = Counter(r for turn in rep.turn_results[:last] for r in turn)
        missing = Counter(rep.turn_results[last]) - earlier
        if not state_differences(before, rep.turn_states[last]) and not missing:
            escaped.append(rep.task_id)
    assert escaped == ["multi_turn_base_139"]


@pytest.mark.parametrize("category", ["miss_func", "miss_param", "long_context"])
def test_ground_truth_replay_passes_in_the_other_multi_turn_categories(category):
    reps = replays(category)
    assert len(reps) == 200
    empty_turns = 0
    for rep in reps:
        verdict = check_multi_turn(gt_records(rep), rep)
        assert verdict.ok and verdict.score == 1.0 and not verdict.errors, (rep.task_id, verdict.errors)
        assert check_multi_turn(gt_records(rep), rep, strict_irrelevance=True).ok
        empty_turns += sum(1 for t in rep.turn_calls if not t)
        last = last_nonempty_turn(rep)
        assert not check_multi_turn(drop_turn_calls(rep, last), rep).ok, rep.task_id
    if category in ("miss_func", "miss_param"):
        assert empty_turns >= 200  # every task holds at least one turn the model cannot act on


def test_miss_func_turn_is_not_checked_but_its_calls_still_count():
    """BFCL v4 skips the empty turn; calls made there still change state and results."""
    rep = next(r for r in replays("miss_func") if r.task_id == "multi_turn_miss_func_0")
    empty = next(i for i in range(rep.num_turns) if not rep.turn_calls[i])
    recs = gt_records(rep)
    # The model does the next turn's work early (in the empty turn) and nothing afterwards
    # except repeating it: the empty turn is not judged, the next one sees the same state.
    early = recs[empty + 1]
    recs[empty] = TurnRecord(early.calls, early.results, early.state)
    verdict = check_multi_turn(recs, rep)
    assert verdict.ok, verdict.errors
    strict = check_multi_turn(recs, rep, strict_irrelevance=True)
    assert not strict.ok and not strict.turns_ok[empty]
    assert strict.errors == (f"turn {empty}: calls made when none could be (sort)",)


# --------------------------------------------------------------------------- rules, on a tiny replay


def test_exact_ground_truth_passes():
    rep = tiny_replay()
    v = check_multi_turn(gt_records(rep), rep)
    assert v.ok and v.turns_ok == (True, True) and v.score == 1.0 and v.errors == ()


def test_extra_calls_and_reordered_results_are_fine():
    rep = tiny_replay()
    recs = [
        TurnRecord([call("pwd"), call("ls"), call("mkdir", dir_name="x")], ["/", '{"ls": ["x"]}', "None"], rep.turn_states[0]),
        TurnRecord([call("get", key="k"), call("get", key="k")], ['{"v": 1}', '{"v": 1}'], rep.turn_states[1]),
    ]
    assert check_multi_turn(recs, rep).ok


def test_results_from_earlier_turns_count():
    """BFCL compares a turn's ground-truth results with all the model's results so far."""
    rep = tiny_replay()
    recs = [
        TurnRecord([call("mkdir", dir_name="x"), call("ls"), call("get", key="k")], ["None", '{"ls": ["x"]}', '{"v": 1}'], rep.turn_states[0]),
        TurnRecord([call("pwd")], ["/"], rep.turn_states[1]),
    ]
    assert check_multi_turn(recs, rep).ok


def test_results_are_a_multiset():
    rep = tiny_replay(turn_results=(("None", "same", "same"), ('{"v": 1}',)),
                      turn_calls=((call("mkdir", dir_name="x"), call("ls"), call("ls")), (call("get", key="k"),)))
    once = [TurnRecord([call("mkdir", dir_name="x"), call("ls")], ["None", "same"], rep.turn_states[0]), gt_records(rep)[1]]
    v = check_multi_turn(once, rep)
    assert not v.ok and v.turns_ok == (False, True) and v.score == 0.5
    assert v.errors == ("turn 0: 1 expected result(s) never returned: same",)


def test_state_mismatch_fails_with_a_readable_path():
    rep = tiny_replay()
    wrong = {"FS": {"root": ["y"], "n": 1}}
    recs = [TurnRecord([call("mkdir", dir_name="y"), call("ls")], ["None", '{"ls": ["x"]}'], wrong), TurnRecord([call("get", key="k")], ['{"v": 1}'], wrong)]
    v = check_multi_turn(recs, rep)
    assert not v.ok and v.turns_ok == (False, False) and v.score == 0.0
    assert v.errors[0] == 'turn 0: state differs from the ground truth: FS.root[0]: y != expected x'


def test_state_check_compares_only_ground_truth_attributes_like_bfcl():
    truth = {"A": {"x": 1, "nested": {"k": [1, 2]}}}
    assert state_differences({"A": {"x": 1, "nested": {"k": [1, 2]}, "extra": 5}}, truth) == []
    assert state_differences({"A": {"x": 1.0, "nested": {"k": [1, 2]}}}, truth) == []  # 1 == 1.0 as in Python
    assert state_differences({"A": {"nested": {"k": [1, 2]}}}, truth) == ["A.x: missing"]
    assert state_differences({}, truth) == ["A: no state recorded"]
    assert state_differences({"A": {"x": 1, "nested": {"k": [1, 3]}}}, truth) == ["A.nested.k[1]: 3 != expected 2"]
    assert state_differences({"A": {"x": 1, "nested": {"k": [1], "j": 0}}}, truth) == [
        "A.nested.k: [1] != expected [1, 2]",
        "A.nested.j: unexpected 0",
    ]
    diffs = state_differences({"A": {"x": 1, "nested": {"k": [1, 2], "j": 0}}}, truth)
    assert diffs == ["A.nested.j: unexpected 0"]


def test_no_call_in_a_turn_that_needs_one_fails_even_if_nothing_would_change():
    rep = tiny_replay()
    recs = gt_records(rep)
    # Turn 1 is read-only and its result already appeared in turn 0: only the no-call rule catches it.
    recs[0] = TurnRecord(list(recs[0].calls) + [call("get", key="k")], list(recs[0].results) + ['{"v": 1}'], recs[0].state)
    recs[1] = TurnRecord([], [], recs[0].state)
    v = check_multi_turn(recs, rep)
    assert not v.ok and v.turns_ok == (True, False) and v.score == 0.5
    assert v.errors == ("turn 1: no call made (1 expected)",)


def test_empty_ground_truth_turn_is_unchecked_by_default_and_not_scored():
    rep = tiny_replay(
        turn_calls=((call("mkdir", dir_name="x"), call("ls")), (), (call("get", key="k"),)),
        turn_results=(("None", '{"ls": ["x"]}'), (), ('{"v": 1}',)),
        turn_states=({"FS": {"root": ["x"]}},) * 3,
    )
    recs = gt_records(rep)
    recs[1] = TurnRecord([call("rm", file_name="zzz")], ['{"error": "no such file"}'], rep.turn_states[1])
    v = check_multi_turn(recs, rep)
    assert v.ok and v.turns_ok == (True, True, True) and v.score == 1.0
    strict = check_multi_turn(recs, rep, strict_irrelevance=True)
    assert not strict.ok and strict.turns_ok == (True, False, True) and strict.score == pytest.approx(2 / 3)
    # A do-nothing model scores 0: the unchecked turn does not count towards the score.
    nothing = [TurnRecord([], [], {"FS": {"root": []}})] * 3
    v0 = check_multi_turn(nothing, rep)
    assert v0.score == 0.0 and v0.turns_ok == (False, True, False)


def test_short_episode_fails_the_missing_turns():
    rep = tiny_replay()
    v = check_multi_turn(gt_records(rep)[:1], rep)
    assert not v.ok and v.turns_ok == (True, False) and v.score == 0.5
    assert v.errors == ("turn 1: not reached (the episode ended after 1 turns)",)
    assert check_multi_turn([], rep).score == 0.0


def test_caller_errors_raise():
    rep = tiny_replay()
    with pytest.raises(ValueError, match="3 turn records for a task of 2 turns"):
        check_multi_turn(gt_records(rep) + gt_records(rep)[:1], rep)
    with pytest.raises(ValueError, match="calls but"):
        check_multi_turn([TurnRecord([call("ls")], [], {})], rep)
    with pytest.raises(ValueError, match="inconsistent"):
        check_multi_turn([], tiny_replay(turn_states=({},)))


def test_error_texts_are_compared_as_recorded():
    """A failed call's result is the ToolError text, exactly as the toolset raised it."""
    rep = tiny_replay(turn_results=(("None", "Error during execution: boom"), ('{"v": 1}',)))
    ok = [TurnRecord(list(rep.turn_calls[0]), ["None", "Error during execution: boom"], rep.turn_states[0]), gt_records(rep)[1]]
    assert check_multi_turn(ok, rep).ok
    bad = [TurnRecord(list(rep.turn_calls[0]), ["None", "boom"], rep.turn_states[0]), gt_records(rep)[1]]
    assert not check_multi_turn(bad, rep).ok


def test_verdict_and_replay_are_json():
    rep = tiny_replay()
    v = check_multi_turn(gt_records(rep)[:1], rep)
    assert json.loads(json.dumps(v.to_dict())) == {"ok": False, "turns_ok": [True, False], "score": 0.5, "errors": list(v.errors)}
    assert GroundTruthReplay.from_dict(json.loads(json.dumps(rep.to_dict()))) == rep


def test_long_error_values_are_truncated():
    rep = tiny_replay(turn_results=(("None", "x" * 1000), ('{"v": 1}',)))
    v = check_multi_turn([TurnRecord([call("ls")], ["y"], rep.turn_states[0]), gt_records(rep)[1]], rep)
    assert all(len(e) < 300 for e in v.errors)
