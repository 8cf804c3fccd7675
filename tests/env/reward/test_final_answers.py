"""Final-answer checks (issue 11 item 5): exact integers, hedges, honest working."""

from __future__ import annotations

import pytest

from toolgym.env.reward.answers import answer_number, check_answer
from toolgym.env.reward.engine import score_trajectory
from toolgym.env.reward.trajectory import StepRecord, Trajectory
from toolgym.env.types import AnswerCheck, ParsedAction

POW64 = AnswerCheck("numeric", ("18446744073709551616",))
SQUARES = AnswerCheck("numeric", ("338350",))
MEDIAN = AnswerCheck("numeric", ("20",))


def test_exact_integers_compare_as_integers():
    assert check_answer(POW64, "2**64 = 18446744073709551616")
    assert not check_answer(POW64, "18446744073709551000")  # a float's rounding is not the answer
    assert not check_answer(POW64, "1.8446744073709552e19")
    assert not check_answer(POW64, "18446744073709551617")
    assert check_answer(POW64, "The answer is 18,446,744,073,709,551,616.")  # thousands separators
    assert check_answer(AnswerCheck("numeric", ("0.1",), 1e-6), "about 0.1000004")
    assert not check_answer(AnswerCheck("numeric", ("0.1",), 1e-6), "0.100002")


@pytest.mark.parametrize("hedge", [
    "1, 2, 3, 4 or 338350",
    "338350 or 338351",
    "It is either 338349 or 338350.",
    "338350, 338351, 338352",
    "The answer is 338350 or maybe 5050.",
    " ".join(str(i) for i in range(338000, 338400)),
])
def test_a_hedge_listing_candidates_fails(hedge):
    assert not check_answer(SQUARES, hedge)
    _, hedged = answer_number(hedge)
    assert hedged


@pytest.mark.parametrize("hedge", [
    "London, Paris or Rome",
    "Maybe Paris, maybe Lyon.",
    "Paris or Lyon",
    "It could be London, Berlin, Paris, Rome",
])
def test_a_candidate_list_fails_in_contains_mode(hedge):
    assert not check_answer(AnswerCheck("contains", ("paris",)), hedge)


@pytest.mark.parametrize("answer", ["Paris", "The capital of France is Paris.", "It is Paris, France.",
                                    "Paris. (Lyon and Marseille are bigger in other ways, or so people say.)"])
def test_a_plain_claim_passes_in_contains_mode(answer):
    assert check_answer(AnswerCheck("contains", ("paris",)), answer)


@pytest.mark.parametrize("answer", [
    "Sorted: 3, 7, 19, 21, 42, 88. The median is (19 + 21) / 2 = 20.",
    "The sorted list is [3, 7, 19, 21, 42, 88]; the two middle values are 19 and 21, so the median is 20",
    "Final answer: 20 (the mean of 19 and 21, the middle of 3, 7, 19, 21, 42, 88).",
    "20",
])
def test_honest_working_with_many_numbers_passes_when_its_answer_is_right(answer):
    question = "Sort the numbers 42, 7, 19, 3, 88, 21 in ascending order and give the median."
    assert check_answer(MEDIAN, answer, question)


def test_honest_working_that_ends_on_a_wrong_answer_fails():
    question = "Sort the numbers 42, 7, 19, 3, 88, 21 in ascending order and give the median."
    assert not check_answer(MEDIAN, "Sorted: 3, 7, 19, 20, 21, 42, 88. The median is 21.", question)


def test_toolgym_python_11_through_the_engine():
    from toolgym.env.tasks.suite import load_suite

    task = load_suite("default").get("toolgym_python_11")
    working = ("I sorted 42, 7, 19, 3, 88, 21 with the python tool: [3, 7, 19, 21, 42, 88]. There are 6 values, "
               "so the median is the mean of the 3rd and 4th, (19 + 21) / 2 = 20.")
    traj = Trajectory(steps=(StepRecord("", ParsedAction("hermes", final_answer=working)),))
    assert score_trajectory(task, traj).components["task_completion"] == 1.0
    hedge = Trajectory(steps=(StepRecord("", ParsedAction("hermes", final_answer="19, 20 or 21")),))
    assert score_trajectory(task, hedge).components["task_completion"] == 0.0
