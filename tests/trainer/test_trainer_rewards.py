"""RemoteReward (any TRL trainer) and EpisodeReward."""

from __future__ import annotations

import pickle

import pytest

from toolgym.trainer.rewards import EpisodeReward, RemoteReward, completion_to_text
from toolgym.trainer.rollout import DEFAULT_WEIGHTS


def test_completion_to_text():
    assert completion_to_text("plain") == "plain"
    conv = [{"role": "assistant", "content": "hi", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]}]
    assert completion_to_text(conv) == 'hi\n<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>'


MALFORMED = '<tool_call>\n{"name": broken\n</tool_call>'
"""A Hermes tool call whose JSON does not parse: scored valid, with a format_error penalty."""


def test_remote_reward_drops_invalid(client, gt_text, unscorable_task):
    logged = {}
    rr = RemoteReward(client, template="hermes")
    out = rr(prompts=["p"] * 3, completions=[gt_text("simple_python_0"), MALFORMED, "x"],
             task_id=["simple_python_0", "simple_python_1", unscorable_task], log_metric=lambda k, v: logged.setdefault(k, v))
    good, malformed, unscorable = rr.last_results
    assert out[0] == pytest.approx(1.0) and good.valid
    # the malformed call is a valid, low score: its total is the weighted components plus the format_error penalty
    assert malformed.valid and malformed.components["format_compliance"] == 0.0 and malformed.penalties["format_error"] < 0
    expected = sum(DEFAULT_WEIGHTS[k] * malformed.components[k] for k in DEFAULT_WEIGHTS) + sum(malformed.penalties.values())
    assert out[1] == pytest.approx(expected) and out[1] < out[0]
    # the server answered for the unscorable task, but flagged it invalid: dropped (None), never counted as its 0
    assert not unscorable.valid and out[2] is None
    assert logged["reward/valid_fraction"] == pytest.approx(2 / 3)
    for k in ("task_completion", "tool_accuracy", "efficiency", "timing_quality", "format_compliance"):
        assert f"reward/{k}" in logged and f"reward_weighted/{k}" in logged
    assert logged["penalty/format_error"] == pytest.approx(malformed.penalties["format_error"] / 2)  # mean over the 2 valid


def test_remote_reward_needs_the_task_column(live_server):
    with pytest.raises(KeyError, match="task_id"):
        RemoteReward(live_server.address)(prompts=["p"], completions=["c"])


def test_remote_reward_is_picklable():
    rr = RemoteReward("127.0.0.1:1", template="hermes")
    rr2 = pickle.loads(pickle.dumps(rr))
    assert rr2.address == "127.0.0.1:1" and rr2._client is None


def test_episode_reward_reads_rollout_fields():
    logged = {}
    er = EpisodeReward()
    out = er(prompts=["p", "q"], completions=["a", "b"], toolgym_total=[0.7, 0.0], toolgym_valid=[True, False],
             toolgym_components=[{"task_completion": 1.0}, {}], toolgym_penalties=[{}, {}], log_metric=lambda k, v: logged.setdefault(k, v))
    assert out == [0.7, None]
    assert logged["reward/task_completion"] == 1.0 and logged["reward_weighted/task_completion"] == pytest.approx(0.4)


def test_remote_reward_against_live_server(live_server):
    from toolgym.trainer.data import load_tasks, sft_messages

    tasks = load_tasks("bfcl", ["simple_python"])[:3]
    good = [sft_messages(t, "pythonic")[-1]["content"] for t in tasks]
    rr = RemoteReward(live_server.address, template="pythonic")
    out = rr(prompts=[""] * 4, completions=[*good, "I will not call anything"], task_id=[t.id for t in tasks] + [tasks[0].id])
    assert out[:3] == pytest.approx([1.0, 1.0, 1.0])
    assert out[3] is not None and out[3] < 0.5
    unknown = rr(prompts=[""], completions=["x"], task_id=["no_such_task"])
    assert unknown == [None]  # an item the server cannot score is dropped, not 0


def test_remote_reward_decodes_completion_ids_with_a_tokenizer(client, tokenizer, gt_text):
    rr = RemoteReward(client, tokenizer=tokenizer, template="hermes")
    text = gt_text("simple_python_0")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    items = rr.items(["(parsed)"], {"task_id": ["simple_python_0"]}, [ids])
    assert items[0]["output"] == text
    # the server scores what the ids say (the ground truth, 1.0), not TRL's parsed text (no call at all)
    assert rr(prompts=["p"], completions=["(parsed)"], task_id=["simple_python_0"], completion_ids=[ids]) == [pytest.approx(1.0)]
    assert rr(prompts=["p"], completions=["(parsed)"], task_id=["simple_python_0"])[0] < 0.5
