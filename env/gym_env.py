"""``toolgym/ToolUse-v0``: the Gymnasium tool-use environment, in-process or remote.

Observations and actions are text (:class:`~toolgym.env.spaces.UnicodeText`): the observation
is what the model reads next (the rendered prompt with tool specs on reset; tool results or
the next user turn on step), the action is the model's raw output. The terminal step's
``info`` carries the contract reward breakdown (``components``, ``penalties``, ``valid``,
``feedback``, ``total``).

The same seed gives the same episode locally and remotely: both draw a task seed from
``self.np_random`` and pick the task and template with the same functions
(:func:`~toolgym.env.episode.select_task`, :func:`~toolgym.env.episode.select_template`).
"""

from __future__ import annotations

import json
from typing import Any, Sequence, SupportsFloat

import gymnasium as gym
import numpy as np

from toolgym.env.episode import PARSE_ERROR_MODES, Episode, EpisodeOptions, select_task, select_template
from toolgym.env.reward.config import RewardConfig
from toolgym.env.retrieval.episode_retrieval import RETRIEVAL_DEFAULTS, retrieval_settings
from toolgym.env.spaces import UnicodeText
from toolgym.env.types import utf8_safe

MAX_TEXT = 1 << 22  # 4 Mi characters: long-context tool results fit, absurd ones do not
#: What ``reset(options=...)`` accepts (all optional): a fixed task, a template, how an output that
#: does not parse is handled for this episode (see EpisodeOptions.on_parse_error), and the retrieval
#: options (tool_pool, retrieval, retriever, retrieval_k; README "Tool retrieval").
RESET_OPTIONS = ("task_id", "template", "on_parse_error", *RETRIEVAL_DEFAULTS)


def _check_parse_error_mode(mode: Any) -> str:
    if mode not in PARSE_ERROR_MODES:
        raise ValueError(f"on_parse_error must be one of {list(PARSE_ERROR_MODES)}, got {mode!r}")
    return str(mode)


def _normalise(info: dict[str, Any]) -> dict[str, Any]:
    # One JSON round trip: local infos get exactly the types a remote env decodes. Keys keep
    # their order: a tool's parameters are listed in declared order, the order positional
    # arguments bind in.
    return json.loads(json.dumps(info, ensure_ascii=False, default=str))


def _pick_id(ids: Sequence[str], seed: int) -> str:
    ordered = sorted(ids)
    return ordered[int(np.random.default_rng(seed).integers(len(ordered)))]


class _TextEnvBase(gym.Env[str, str]):
    # render_fps is meaningless for a text transcript but gymnasium requires a positive value.
    metadata = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(self, *, categories: Sequence[str] | None, task_ids: Sequence[str] | None, template: str | None,
                 randomize_template: bool, max_steps: int, default_template: str, render_mode: str | None,
                 on_parse_error: str = "observe", retrieval: dict[str, Any] | None = None):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode {render_mode!r} is not supported; use one of {self.metadata['render_modes']} or None")
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        _check_parse_error_mode(on_parse_error)
        self.on_parse_error = on_parse_error
        self._episode_on_parse_error = on_parse_error
        self.retrieval = retrieval_settings(dict(RETRIEVAL_DEFAULTS), retrieval or {})
        self._episode_retrieval = dict(self.retrieval)
        self.render_mode = render_mode
        self.categories = tuple(categories or ())
        self.task_ids = tuple(task_ids or ())
        self.template = template
        self.randomize_template = randomize_template
        self.max_steps = max_steps
        self.default_template = default_template
        self.observation_space = UnicodeText(MAX_TEXT)
        self.action_space = UnicodeText(MAX_TEXT)
        self._transcript: list[str] = []

    def _draw(self, seed: int | None, options: dict[str, Any] | None) -> tuple[int, str | None, str | None]:
        super().reset(seed=seed)
        task_seed = int(self.np_random.integers(2**62))
        opts = dict(options or {})
        unknown = set(opts) - set(RESET_OPTIONS)
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; supported: {', '.join(RESET_OPTIONS)}")
        self._episode_on_parse_error = _check_parse_error_mode(opts.get("on_parse_error") or self.on_parse_error)
        self._episode_retrieval = retrieval_settings(self.retrieval, opts)
        task_id = opts.get("task_id") or (_pick_id(self.task_ids, task_seed) if self.task_ids else None)
        return task_seed, task_id, opts.get("template") or self.template

    def _check_action(self, action: Any) -> str:
        if not isinstance(action, str):
            raise TypeError(f"action must be the model's output text (str), got {type(action).__name__}")
        if not self.action_space.contains(action):
            # Nothing is run or recorded: the same action is refused by a server (RESOURCE_EXHAUSTED).
            raise ValueError(f"action is {len(action)} characters; the action space allows at most "
                             f"{self.action_space.max_length}: cut the model's output (max_new_tokens) before stepping")
        return action

    def render(self) -> str | None:
        if self.render_mode == "ansi":
            return "\n\n".join(self._transcript)
        return None


class ToolUseEnv(_TextEnvBase):
    """In-process env: tools run in this process's sandbox worker pool."""

    def __init__(self, suite: str = "default", categories: Sequence[str] | None = None, task_ids: Sequence[str] | None = None,
                 template: str | None = None, randomize_template: bool = False, max_steps: int = 32,
                 reward_config: RewardConfig | dict[str, Any] | None = None, shaping: float = 0.0,
                 default_template: str = "hermes", render_mode: str | None = None, on_parse_error: str = "observe",
                 tool_pool: str = "task", retrieval: str = "none", retriever: str = "", retrieval_k: int = 5):
        super().__init__(categories=categories, task_ids=task_ids, template=template, randomize_template=randomize_template,
                         max_steps=max_steps, default_template=default_template, render_mode=render_mode,
                         on_parse_error=on_parse_error,
                         retrieval={"tool_pool": tool_pool, "retrieval": retrieval, "retriever": retriever, "retrieval_k": retrieval_k})
        from toolgym.env.retrieval.source import RetrievalSource
        from toolgym.env.tasks.suite import load_suite

        self._suite = load_suite(suite)
        self._retrieval_source = RetrievalSource(lambda: list(self._suite))  # built on the first retrieval episode
        self._pool = list(self._suite.filter(categories=list(self.categories) or None))
        if not self._pool:
            raise ValueError(f"no task in suite {suite!r} matches categories {list(self.categories)}; known: {sorted(self._suite.categories())}")
        self.reward_config = reward_config if isinstance(reward_config, RewardConfig) else RewardConfig.from_dict(reward_config)
        self.shaping = shaping
        self._episode: Episode | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        from toolgym.env.executor import shared_executor

        task_seed, task_id, template = self._draw(seed, options)
        task = self._suite.get(task_id) if task_id else select_task(self._pool, task_seed)
        tmpl = select_template(task_seed, template, self.randomize_template, self.default_template)
        if self._episode is not None:
            self._episode.close()
        ex = shared_executor()
        opts = EpisodeOptions(task_id=task.id, seed=task_seed, template=tmpl, max_steps=self.max_steps, shaping=self.shaping,
                              on_parse_error=self._episode_on_parse_error, **self._episode_retrieval)  # type: ignore[arg-type]
        self._episode = Episode(task, tmpl, opts, self.reward_config, ex, gt_replay=ex.ground_truth,
                                retrieval=self._retrieval_source)
        obs, info = self._episode.start()
        obs = utf8_safe(obs)
        self._transcript = [obs]
        return obs, _normalise(info)

    def step(self, action: str) -> tuple[str, SupportsFloat, bool, bool, dict[str, Any]]:
        if self._episode is None:
            raise RuntimeError("call reset() before step()")
        out = self._episode.step(self._check_action(action))
        obs = utf8_safe(out.observation)
        self._transcript += [f"Assistant: {action}", obs]
        return obs, float(out.reward), out.terminated, out.truncated, _normalise(out.info)

    def close(self) -> None:
        if self._episode is not None:
            self._episode.close()
            self._episode = None


class RemoteToolUseEnv(_TextEnvBase):
    """The same env, served by a toolgym server (EnvService over gRPC)."""

    def __init__(self, server: str, categories: Sequence[str] | None = None, task_ids: Sequence[str] | None = None,
                 template: str | None = None, randomize_template: bool = False, max_steps: int = 32,
                 reward_config: dict[str, Any] | None = None, default_template: str = "hermes",
                 render_mode: str | None = None, timeout: float = 60.0, on_parse_error: str = "observe", shaping: float = 0.0,
                 tool_pool: str = "task", retrieval: str = "none", retriever: str = "", retrieval_k: int = 5):
        super().__init__(categories=categories, task_ids=task_ids, template=template, randomize_template=randomize_template,
                         max_steps=max_steps, default_template=default_template, render_mode=render_mode,
                         on_parse_error=on_parse_error,
                         retrieval={"tool_pool": tool_pool, "retrieval": retrieval, "retriever": retriever, "retrieval_k": retrieval_k})
        from toolgym.env.client import ToolgymClient

        self.server = server
        self.reward_config = reward_config
        self.shaping = shaping
        self._client = ToolgymClient(server, timeout=timeout)
        self._session: str | None = None
        self._steps = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        task_seed, task_id, template = self._draw(seed, options)
        self._close_session()
        tmpl = select_template(task_seed, template, self.randomize_template, self.default_template)
        r = self._client.reset(task_id, seed=task_seed, template=tmpl, categories=self.categories,
                               max_steps=self.max_steps, reward_config=self.reward_config,
                               on_parse_error=self._episode_on_parse_error, shaping=self.shaping,
                               retrieval=self._episode_retrieval)
        self._session, self._steps = r.session_id, 0
        self._transcript = [r.observation]
        return r.observation, r.info

    def step(self, action: str) -> tuple[str, SupportsFloat, bool, bool, dict[str, Any]]:
        if self._session is None:
            raise RuntimeError("call reset() before step()")
        s = self._client.step(self._session, self._check_action(action), step_index=self._steps)
        self._steps += 1
        self._transcript += [f"Assistant: {action}", s.observation]
        if s.terminated or s.truncated:
            self._close_session()
        return s.observation, float(s.reward), s.terminated, s.truncated, s.info

    def _close_session(self) -> None:
        if self._session is not None:
            sid, self._session = self._session, None
            try:
                self._client.close_session(sid)
            except Exception:
                pass  # already expired/closed server-side: nothing left to release

    def close(self) -> None:
        self._close_session()
        self._client.close()


def make_env(server: str | None = None, **kwargs: Any) -> gym.Env:
    """Entry point of ``toolgym/ToolUse-v0``: remote when ``server`` is given."""
    if server:
        kwargs.pop("suite", None)
        return RemoteToolUseEnv(server, **kwargs)
    return ToolUseEnv(**kwargs)
