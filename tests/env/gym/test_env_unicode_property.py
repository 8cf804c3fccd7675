"""Property: arbitrary unicode (lone surrogates included) through the in-process env never
raises, every step is recorded, and everything the model or a caller reads back encodes."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import toolgym.env  # noqa: F401  (registers toolgym/ToolUse-v0)
from toolgym.env.parsers import TEMPLATES

_chars = st.characters(min_codepoint=0, max_codepoint=0x10FFFF)
_pieces = st.sampled_from([
    '<tool_call>{"name": "ls", "arguments": {}}</tool_call>', '<tool_call>{"name": "mkdir", "arguments": {"dir_name": "',
    '<tool_call>{"name": "python", "arguments": {"code": "print(', '"}}</tool_call>', ')"}}</tool_call>', "\\ud800", "\\udfff",
    "\ud800", "\udc00", "[ls()]", "[mkdir(dir_name='", "')]", "Action: ls\nAction Input: {}", "<think>", "</think>", "中文",
    '{"tool_calls": [{"function": {"name": "ls", "arguments": "{}"}}]}', "\x00",
])
_actions = st.lists(st.one_of(_pieces, st.text(_chars, max_size=6)), min_size=0, max_size=12).map("".join)


@pytest.fixture(scope="module")
def envs():
    made = {t: gym.make("toolgym/ToolUse-v0", template=t, max_steps=50) for t in TEMPLATES}
    yield made
    for e in made.values():
        e.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(actions=st.lists(_actions, min_size=1, max_size=3), template=st.sampled_from(TEMPLATES),
       task_id=st.sampled_from(["multi_turn_base_0", "toolgym_python_0"]))
def test_arbitrary_text_through_the_env(envs, actions, template, task_id):
    env = envs[template]
    obs, info = env.reset(options={"task_id": task_id})
    for i, action in enumerate(actions):
        obs, reward, term, trunc, info = env.step(action)
        obs.encode("utf-8")
        json.dumps(info, ensure_ascii=False).encode("utf-8")
        assert reward == reward  # not NaN
        assert len(env.unwrapped._episode.steps) == i + 1  # recorded, whatever it held
        if term or trunc:
            assert info["valid"] in (True, False) and "total" in info
            break

