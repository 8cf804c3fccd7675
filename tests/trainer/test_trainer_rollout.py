"""Token-exact multi-turn rollouts, masks, budgets, invalid scores and the metric breakdown."""

from __future__ import annotations

import pytest

from toolgym.env.parsers import render_calls
from toolgym.env.types import ToolCall
from toolgym.trainer.rollout import (
    DEFAULT_WEIGHTS,
    Episode,
    EpisodeSpec,
    HFGenerator,
    ObservationTokenizer,
    RolloutEngine,
    episode_metrics,
)


class ScriptedGen:
    """GenerateFn returning fixed texts (as token ids), so tests control what the policy 'writes'."""

    def __init__(self, tok, texts, close=True):
        self.tok, self.texts, self.close, self.calls = tok, list(texts), close, []

    def __call__(self, prompts, max_new_tokens):
        self.calls.append((len(prompts), max_new_tokens))
        out = []
        for _ in prompts:
            ids = self.tok(self.texts.pop(0) if self.texts else "done", add_special_tokens=False)["input_ids"]
            ids = ids[:max_new_tokens]
            if self.close and len(ids) < max_new_tokens:
                ids = ids + [self.tok.eos_token_id]
            out.append(ids)
        return out, [[-0.5] * len(o) for o in out]


PY_CALL = render_calls([ToolCall(name="python", arguments={"code": "print(sum(i * i for i in range(1, 101)))"})], "hermes")
"""A real call of ``toolgym_python_0`` (sum of the squares of 1..100, answer 338350) in the Hermes template."""


def test_multi_turn_episode_is_token_exact(client, tokenizer, trainer_suite):
    """A real two-step episode: the sandbox runs the policy's python call, its result comes back as an observation."""
    from toolgym.trainer.data import prompt_messages

    gen = ScriptedGen(tokenizer, [PY_CALL, "The answer is 338350."])
    eng = RolloutEngine(client, tokenizer, gen, max_turns=4, max_turn_tokens=64, max_completion_length=512)
    (ep,) = eng.run([EpisodeSpec("toolgym_python_0", seed=3, template="hermes")], want_logprobs=True)
    assert ep.terminated and ep.valid and ep.total == pytest.approx(1.0), ep.feedback
    assert ep.actions == [PY_CALL, "The answer is 338350."]
    assert len(ep.observations) == 1 and "338350" in ep.observations[0]  # the tool really ran
    # prompt = the chat template applied to the server's system + user prompts
    msgs = prompt_messages(trainer_suite["toolgym_python_0"], "hermes")
    assert ep.prompt_messages == msgs
    assert ep.prompt_ids == tokenizer.apply_chat_template(msgs, tokenize=True, add_generation_prompt=True, return_dict=False)
    # the whole sequence equals a fresh rendering of the conversation, token for token
    conv = msgs + [
        {"role": "assistant", "content": PY_CALL},
        {"role": "user", "content": ep.observations[0]},
        {"role": "assistant", "content": "The answer is 338350."},
    ]
    full = tokenizer.apply_chat_template(conv, tokenize=True, return_dict=False)
    seq = ep.prompt_ids + ep.completion_ids
    assert full[: len(seq)] == seq
    # mask: 1 on sampled tokens, 0 on the observation tokens in between
    assert len(ep.env_mask) == len(ep.completion_ids) == len(ep.logprobs)
    first = len(tokenizer(PY_CALL, add_special_tokens=False)["input_ids"]) + 1
    obs_ids = ObservationTokenizer(tokenizer).suffix_ids(ep.observations[0])
    assert ep.env_mask[:first] == [1] * first
    assert ep.env_mask[first : first + len(obs_ids)] == [0] * len(obs_ids)
    assert ep.completion_ids[first : first + len(obs_ids)] == obs_ids
    assert all(m == 1 for m in ep.env_mask[first + len(obs_ids) :])
    assert all(lp == 0.0 for lp, m in zip(ep.logprobs, ep.env_mask) if m == 0)
    observed = tokenizer.decode([t for t, m in zip(ep.completion_ids, ep.env_mask) if m == 0])
    assert "<tool_response>" in observed and "338350" in observed
    assert "<tool_response>" not in tokenizer.decode([t for t, m in zip(ep.completion_ids, ep.env_mask) if m == 1])


def test_group_shares_task_seed_and_template(client, tokenizer, trainer_suite):
    from toolgym.env.episode import select_task

    eng = RolloutEngine(client, tokenizer, ScriptedGen(tokenizer, ["x"] * 16), max_turns=1, max_turn_tokens=8, max_completion_length=8)
    # a fixed task: every episode of the group runs it in the group's template, from the same prompt
    fixed = eng.run([EpisodeSpec("simple_python_3", 7, "react")] * 4)
    assert [(e.task_id, e.template) for e in fixed] == [("simple_python_3", "react")] * 4
    assert all(e.prompt_ids == fixed[0].prompt_ids for e in fixed)
    # no task id: the server picks the task with the episode seed, so one shared task shows the seed reached it
    by_seed = eng.run([EpisodeSpec(None, 7, "react")] * 4 + [EpisodeSpec(None, 8, "react")] * 4)
    want7, want8 = select_task(list(trainer_suite), 7).id, select_task(list(trainer_suite), 8).id
    assert want7 != want8
    assert [e.task_id for e in by_seed] == [want7] * 4 + [want8] * 4
    assert all(e.template == "react" and e.error is None for e in by_seed)


def test_turn_cut_by_budget_gets_an_untrained_eos(client, tokenizer):
    """A turn cut at its token budget is closed with an EOS the policy did not sample (mask 0) before the
    observation; after an unparsable action multi_turn_base_0 answers with a format-error observation and the
    turn goes on (on_parse_error=observe, the default)."""
    long_call = "<tool_call>" + " word" * 40
    gen = ScriptedGen(tokenizer, [long_call, "ok"], close=False)
    eng = RolloutEngine(client, tokenizer, gen, max_turns=3, max_turn_tokens=8, max_completion_length=256)
    (ep,) = eng.run([EpisodeSpec("multi_turn_base_0", 0, "hermes")])
    assert ep.observations and ep.observations[0].startswith("Format error")  # the model is told what was wrong
    assert ep.completion_ids[8] == tokenizer.eos_token_id and ep.env_mask[8] == 0
    assert ep.env_mask[:8] == [1] * 8


def test_budget_exhausted_episode_still_gets_the_server_score(client, tokenizer):
    """multi_turn_base_0 has 4 user turns; its second prompt overflows the 40-token budget, so the rollout ends the
    episode (empty actions up to max_steps) and the server scores what the policy did."""
    eng = RolloutEngine(client, tokenizer, ScriptedGen(tokenizer, ["<tool_call> a"] * 10), max_turns=3, max_turn_tokens=16,
                        max_completion_length=40)
    (ep,) = eng.run([EpisodeSpec("multi_turn_base_0", 0, "hermes")])
    assert ep.budget_exhausted and ep.truncated and not ep.terminated
    assert ep.valid and ep.total is not None
    assert ep.penalties.get("format_error", 0.0) < 0  # the unterminated <tool_call> the policy wrote was judged
    assert len(ep.completion_ids) <= 40


def test_invalid_score_is_none_not_zero(client, tokenizer, unscorable_task):
    eng = RolloutEngine(client, tokenizer, ScriptedGen(tokenizer, ["x", "y"]), max_turns=1, max_turn_tokens=8, max_completion_length=8)
    bad, good = eng.run([EpisodeSpec(unscorable_task, 0), EpisodeSpec("simple_python_0", 0)])
    assert bad.terminated and not bad.valid and bad.total == 0.0  # the server said 0 but flagged it invalid
    assert bad.reward is None and good.reward is not None
    m = episode_metrics([bad, good])
    assert m["reward/valid_fraction"] == 0.5
    assert m["reward/total"] == pytest.approx(good.total)


def test_failed_reset_is_dropped(client, tokenizer):
    eng = RolloutEngine(client, tokenizer, ScriptedGen(tokenizer, []), max_turns=1)
    (ep,) = eng.run([EpisodeSpec("no_such_task", 0)])
    assert ep.error and ep.error.startswith("reset failed") and "no_such_task" in ep.error
    assert ep.reward is None and ep.session_id is None


def test_episode_metrics_are_weighted():
    e = Episode(spec=EpisodeSpec())
    e.components = {"task_completion": 1.0, "tool_accuracy": 0.5, "efficiency": 1.0, "timing_quality": 0.0, "format_compliance": 1.0}
    e.penalties = {"wrong_tool": -0.3}
    e.total = sum(DEFAULT_WEIGHTS[k] * v for k, v in e.components.items()) - 0.3
    e.valid = True
    e.actions = ["a"]
    m = episode_metrics([e])
    assert m["reward/tool_accuracy"] == 0.5
    assert m["reward_weighted/tool_accuracy"] == pytest.approx(0.125)
    assert m["penalty/wrong_tool"] == pytest.approx(-0.3) and m["penalty_rate/wrong_tool"] == 1.0
    weighted = sum(m[f"reward_weighted/{k}"] for k in DEFAULT_WEIGHTS) + sum(v for k, v in m.items() if k.startswith("penalty/"))
    assert weighted == pytest.approx(m["reward/total"])
    e.weights = {"tool_accuracy": 1.0}  # weights reported by the server win over the defaults
    assert episode_metrics([e])["reward_weighted/tool_accuracy"] == pytest.approx(0.5)


def test_hf_generator_stops_at_eos(tiny_model_dir, tokenizer):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    gen = HFGenerator(model, tokenizer, do_sample=True, return_logprobs=True)
    prompts = [tokenizer("hello there", add_special_tokens=False)["input_ids"], [1, 2, 3]]
    outs, lps = gen(prompts, 6)
    assert len(outs) == 2 and all(1 <= len(o) <= 6 for o in outs)
    for o, lp in zip(outs, lps):
        assert len(o) == len(lp) and all(x <= 0 for x in lp)
        assert tokenizer.eos_token_id not in o[:-1]


def test_live_server_episode(client, tokenizer):
    """A real single-turn BFCL episode: the ground-truth action scores 1.0, the prompt is the server's."""
    from toolgym.trainer.data import load_tasks, sft_messages

    task = load_tasks("bfcl", ["simple_python"])[0]
    target = sft_messages(task, "hermes")[-1]["content"]
    eng = RolloutEngine(client, tokenizer, ScriptedGen(tokenizer, [target]), max_turns=2, max_turn_tokens=200, max_completion_length=200)
    (ep,) = eng.run([EpisodeSpec(task.id, 0, "hermes")])
    assert ep.terminated and ep.valid and ep.total == pytest.approx(1.0)
    assert set(ep.components) == set(DEFAULT_WEIGHTS)
    assert ep.prompt_messages[0]["content"] == sft_messages(task, "hermes")[0]["content"]


def test_live_multi_turn_ground_truth_replays_to_full_score(client):
    """SFT multi-turn conversations are what the env shows and accepts: replayed through EnvService they complete."""
    from toolgym.trainer.data import load_tasks, sft_messages

    task = load_tasks("bfcl", ["multi_turn_base"])[0]
    msgs = sft_messages(task, "hermes")
    r = client.reset(task.id, seed=0, template="hermes", max_steps=64)
    assert r.info["system_prompt"] == msgs[0]["content"] and r.info["user_prompt"] == msgs[1]["content"]
    s = None
    for m in msgs[2:]:
        if m["role"] == "assistant":
            s = client.step(r.session_id, m["content"])
            if s.terminated or s.truncated:
                break
    assert s is not None and s.terminated and s.info["valid"]
    # state and results match the ground-truth replay (penalties are the env's business, e.g. redundant_call)
    assert s.info["components"]["task_completion"] == pytest.approx(1.0)
    assert s.info["components"]["format_compliance"] == pytest.approx(1.0)
