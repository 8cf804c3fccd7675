"""Reward functions for TRL trainers, backed by the toolgym server.

- :class:`RemoteReward` — a reward function usable in any TRL trainer (``reward_funcs=[RemoteReward(addr)]``): it
  scores each completion with ``RewardService.ScoreBatch`` (one RPC per batch) against the task named in a dataset
  column (``task_id`` by default). Invalid scores come back as ``None`` — TRL turns them into NaN and leaves them
  out of the advantage baseline and the logged reward, instead of counting them as 0.
- :class:`EpisodeReward` — the reward of GRPO/PPO rollouts that ran as episodes on the server: the rollout already
  holds each episode's terminal score, so this only hands it to TRL (no second scoring).

Both log every component and penalty as its own metric (see :func:`toolgym.trainer.rollout.episode_metrics`):
``reward/<component>`` (raw, in [0, 1]), ``reward_weighted/<component>`` (``w_k * c_k``, its share of the total),
``penalty/<name>`` (mean amount added to the total, <= 0), ``penalty_rate/<name>``, ``reward/total`` and
``reward/valid_fraction``. TRL prefixes nothing to these names; it averages them per logging step.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any

from toolgym.trainer.rollout import DEFAULT_WEIGHTS, Episode, EpisodeSpec, episode_metrics


def completion_to_text(completion: Any) -> str:
    """A TRL completion (plain text, or a list of chat messages) as the raw action text the server parses."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    parts: list[str] = []
    import json

    for msg in completion or []:
        if not isinstance(msg, dict) or msg.get("role", "assistant") != "assistant":
            continue
        content = msg.get("content") or ""
        if isinstance(content, list):  # typed content blocks
            content = "".join(b.get("text", "") for b in content if isinstance(b, dict))
        text = str(content)
        for call in msg.get("tool_calls") or []:  # structured calls (TRL parse_response): render Hermes-style
            fn = call.get("function", call) if isinstance(call, dict) else {}
            args = fn.get("arguments", {})
            if isinstance(args, str):
                try:
                    args = json.loads(args)
                except ValueError:
                    pass
            text += ("\n" if text else "") + "<tool_call>\n" + json.dumps(
                {"name": fn.get("name", ""), "arguments": args}, ensure_ascii=False
            ) + "\n</tool_call>"
        parts.append(text)
    return "\n".join(parts)


def _log_all(log_metric: Any, metrics: dict[str, float]) -> None:
    if log_metric is None:
        return
    for k, v in metrics.items():
        if v is not None and math.isfinite(v):
            log_metric(k, float(v))


def _as_episode(total: Any, valid: Any, components: Any, penalties: Any, weights: Any = None) -> Episode:
    ep = Episode(spec=EpisodeSpec())
    ep.total = float(total) if total is not None else None
    ep.valid = bool(valid)
    ep.components = dict(components or {})
    ep.penalties = dict(penalties or {})
    ep.weights = dict(weights or {})
    ep.actions = [""]
    return ep


class RemoteReward:
    """Score completions on a toolgym server (``ScoreBatch``); usable as a TRL reward function.

    Args:
        address: ``host:port`` of the server, or an existing ``ToolgymClient``.
        task_id_column: dataset column with each row's task id (forwarded by TRL as a keyword argument).
        template_column: dataset column with each row's template (falls back to ``template``, then the server's).
        template: template when the dataset has no template column.
        reward_config: weights/penalties override sent with every request (also used to log weighted components).
        timeout: deadline of each RPC.
        log_metrics: log the component/penalty breakdown through TRL's ``log_metric``.
        tokenizer: when given, each completion's raw text is decoded from the ``completion_ids`` TRL passes (exactly
            what the model wrote, special tags included), instead of being rebuilt from TRL's parsed completion
            (which, for conversational data with a response parser, only keeps Hermes-style tool calls).
    """

    def __init__(
        self,
        address: Any,
        *,
        task_id_column: str = "task_id",
        template_column: str = "template",
        template: str | None = None,
        reward_config: dict[str, Any] | None = None,
        timeout: float = 60.0,
        log_metrics: bool = True,
        name: str = "toolgym",
        tokenizer: Any | None = None,
    ):
        self.address = address
        self.task_id_column = task_id_column
        self.template_column = template_column
        self.template = template
        self.reward_config = reward_config
        self.timeout = timeout
        self.log_metrics = log_metrics
        self.__name__ = name
        self.tokenizer = tokenizer
        self._client = None if isinstance(address, str) else address
        self._lock = threading.Lock()
        self.last_results: list[Any] = []

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    from toolgym.env.client import ToolgymClient

                    self._client = ToolgymClient(self.address, timeout=self.timeout)
        return self._client

    def __getstate__(self) -> dict[str, Any]:  # picklable (multiprocess data loaders, deepcopy of trainers)
        d = dict(self.__dict__)
        if isinstance(self.address, str):
            d["_client"] = None
        d["_lock"] = None
        return d

    def __setstate__(self, d: dict[str, Any]) -> None:
        self.__dict__.update(d)
        self._lock = threading.Lock()

    def _texts(self, completions: Sequence[Any], completion_ids: Sequence[Sequence[int]] | None) -> list[str]:
        tok = self.tokenizer
        if tok is None or completion_ids is None:
            return [completion_to_text(c) for c in completions]
        drop = {tok.pad_token_id, tok.eos_token_id} - {None}
        out = []
        for ids in completion_ids:
            ids = list(ids)
            while ids and ids[-1] in drop:
                ids.pop()
            out.append(tok.decode(ids, skip_special_tokens=False))
        return out

    def items(self, completions: Sequence[Any], kwargs: dict[str, Any], completion_ids: Any = None) -> list[dict[str, Any]]:
        n = len(completions)
        task_ids = kwargs.get(self.task_id_column)
        if task_ids is None:
            raise KeyError(
                f"RemoteReward needs the task id of each completion: add a {self.task_id_column!r} column to the "
                "dataset (or pass task_id_column=...)"
            )
        templates = kwargs.get(self.template_column) or [self.template] * n
        out = []
        for text, tid, tpl in zip(self._texts(completions, completion_ids), task_ids, templates):
            item: dict[str, Any] = {"output": text, "task_id": str(tid)}
            if tpl or self.template:
                item["template"] = tpl or self.template
            if self.reward_config:
                item["reward_config"] = self.reward_config
            out.append(item)
        return out

    def __call__(self, prompts: Sequence[Any] | None = None, completions: Sequence[Any] | None = None, **kwargs: Any) -> list[float | None]:
        completions = list(completions or [])
        if not completions:
            return []
        items = self.items(completions, kwargs, kwargs.get("completion_ids"))
        results = self.client.score_batch(items, timeout=self.timeout, raise_on_error=False)
        self.last_results = list(results)
        weights = dict(DEFAULT_WEIGHTS, **((self.reward_config or {}).get("weights") or {}))
        rewards: list[float | None] = []
        eps: list[Episode] = []
        for r in results:
            if isinstance(r, Exception) or not getattr(r, "valid", False) or not math.isfinite(getattr(r, "total", math.nan)):
                rewards.append(None)  # dropped from the update (NaN in TRL), never a silent 0
                eps.append(_as_episode(None, False, {}, {}))
                continue
            rewards.append(float(r.total))
            w = (r.details or {}).get("weights") if isinstance(getattr(r, "details", None), dict) else None
            eps.append(_as_episode(r.total, True, r.components, r.penalties, w or weights))
        if self.log_metrics:
            _log_all(kwargs.get("log_metric"), episode_metrics(eps, weights))
        return rewards


class EpisodeReward:
    """Hands the server's terminal score of each rollout episode to TRL (no re-scoring).

    Reads the ``toolgym_*`` fields the rollout function returns alongside the token ids; returns ``None`` for an
    episode whose score is invalid (or that failed), so TRL drops it from the baseline (its tokens are also masked
    out of the loss by the rollout's ``env_mask``).
    """

    def __init__(self, name: str = "toolgym", default_weights: dict[str, float] | None = None):
        self.__name__ = name
        self.default_weights = dict(default_weights or DEFAULT_WEIGHTS)

    def __call__(self, prompts: Sequence[Any] | None = None, completions: Sequence[Any] | None = None, **kwargs: Any) -> list[float | None]:
        totals = kwargs.get("toolgym_total")
        if totals is None:
            raise KeyError("EpisodeReward needs the toolgym rollout function's fields (toolgym_total, ...)")
        valid = kwargs.get("toolgym_valid") or [False] * len(totals)
        comps = kwargs.get("toolgym_components") or [{}] * len(totals)
        pens = kwargs.get("toolgym_penalties") or [{}] * len(totals)
        weights = kwargs.get("toolgym_weights") or [{}] * len(totals)
        eps = [_as_episode(t, v, c, p, w) for t, v, c, p, w in zip(totals, valid, comps, pens, weights)]
        turns = kwargs.get("toolgym_turns")
        if turns:
            for e, n in zip(eps, turns):
                e.actions = [""] * int(n)
        _log_all(kwargs.get("log_metric"), episode_metrics(eps, self.default_weights))
        return [e.reward for e in eps]


__all__ = ["EpisodeReward", "RemoteReward", "completion_to_text"]
