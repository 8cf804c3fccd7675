"""Token-exact multi-turn episodes on a toolgym server, for GRPO, PPO, DPO sampling and evaluation.

An episode is: ``Reset`` (the server picks the task's prompt in the episode's template) → the policy writes an
assistant turn → ``Step`` with that raw text (the server parses it with the episode's template parser, runs the
calls in its sandbox, and returns the rendered tool results, or the next user turn) → … until the server says
``terminated``/``truncated``, whose ``info`` carries the reward contract's score.

Token exactness: the prompt is tokenized once through the tokenizer's chat template; each assistant turn keeps
the exact ids the policy sampled; each observation is appended as the ids the chat template gives a following
``user`` message plus the next generation prompt (computed like TRL's ``_get_tool_suffix_ids``: render with and
without the message, keep the difference — special tokens stop BPE merges across the boundary, so the slice is
exact). ``env_mask`` is 1 on sampled tokens and 0 on observation tokens (and on an end-of-turn token the
rollout had to insert after a turn cut at its token budget), so observation tokens are never trained on.

Generation is a callable ``generate(prompt_ids_list, max_new_tokens) -> (completion_ids_list, logprobs|None)``;
:class:`HFGenerator` wraps ``model.generate``; the GRPO trainer plugs in TRL's own generation (transformers or
vLLM) instead. Nothing here imports vLLM.

This module holds the episode driver, :class:`RolloutEngine`; the episode record and its metrics are in
:mod:`toolgym.trainer.rollout_episode`, the observation tokenizer and :class:`HFGenerator` in
:mod:`toolgym.trainer.rollout_tokens`. All are re-exported here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from toolgym.trainer.rollout_episode import (
    COMPONENTS,
    DEFAULT_WEIGHTS,
    PENALTIES,
    Episode,
    EpisodeSpec,
    episode_metrics,
)
from toolgym.trainer.rollout_tokens import GenerateFn, HFGenerator, ObservationTokenizer

log = logging.getLogger(__name__)


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


class RolloutEngine:
    """Runs batches of episodes on a toolgym server through ``ToolgymClient`` (reset/step only)."""

    def __init__(
        self,
        client: Any,
        tokenizer: Any,
        generate: GenerateFn,
        *,
        max_turns: int = 4,
        max_turn_tokens: int = 128,
        max_completion_length: int = 256,
        chat_template: str | None = None,
        observation_role: str = "user",
        max_workers: int = 16,
        sync_fn: Callable[[bool], bool] | None = None,
    ):
        self.client = client
        self.tok = tokenizer
        self.generate = generate
        self.max_turns = max_turns
        self.max_turn_tokens = max_turn_tokens
        self.max_completion_length = max_completion_length
        self.obs_tok = ObservationTokenizer(tokenizer, chat_template=chat_template, role=observation_role)
        self.max_workers = max_workers
        self.sync_fn = sync_fn  # distributed: returns True while any rank still has active episodes
        eos = tokenizer.eos_token_id
        self.eos_ids = {eos} if isinstance(eos, int) else set(eos or [])
        self.eos_id = eos if isinstance(eos, int) else next(iter(self.eos_ids))

    # ------------------------------------------------------------------------------------------- helpers

    def _map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        if len(items) <= 1 or self.max_workers <= 1:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(items))) as ex:
            return list(ex.map(fn, items))

    def _text(self, ids: list[int]) -> str:
        ids = ids[:-1] if ids and ids[-1] in self.eos_ids else ids
        return self.tok.decode(ids, skip_special_tokens=False)

    @staticmethod
    def prompt_messages(reset: Any) -> list[dict[str, str]]:
        info = _get(reset, "info", {}) or {}
        system = info.get("system_prompt")
        user = info.get("user_prompt")
        if user is None and not system:
            return [{"role": "user", "content": str(_get(reset, "observation", ""))}]
        msgs = []
        if system:
            msgs.append({"role": "system", "content": str(system)})
        msgs.append({"role": "user", "content": str(user if user is not None else _get(reset, "observation", ""))})
        return msgs

    def _reset(self, ep: Episode) -> None:
        s = ep.spec
        try:
            r = self.client.reset(s.task_id, seed=s.seed, template=s.template, max_steps=self.max_turns)
        except Exception as exc:  # a failed reset: the episode has no valid score, it is dropped
            ep.error = f"reset failed: {type(exc).__name__}: {exc}"
            return
        info = _get(r, "info", {}) or {}
        ep.session_id = _get(r, "session_id")
        ep.template = info.get("template", s.template)
        ep.task_id = info.get("task_id", s.task_id)
        ep.prompt_messages = self.prompt_messages(r)
        ep.prompt_ids = self.obs_tok.prompt_ids(ep.prompt_messages)

    def _apply_terminal(self, ep: Episode, info: dict[str, Any]) -> None:
        ep.components = {k: float(v) for k, v in (info.get("components") or {}).items()}
        ep.penalties = {k: float(v) for k, v in (info.get("penalties") or {}).items()}
        ep.valid = bool(info.get("valid", False))
        ep.feedback = str(info.get("feedback", ""))
        total = info.get("total")
        ep.total = float(total) if total is not None else None
        w = info.get("weights") or (info.get("details") or {}).get("weights")
        ep.weights = {k: float(v) for k, v in w.items()} if isinstance(w, dict) else {}

    def _step(self, item: tuple[Episode, str], index: int | None = None) -> tuple[Episode, Any]:
        ep, action = item
        if index is None:  # the action just appended to ep.actions
            index = len(ep.actions) - 1
        last: Exception | None = None
        for _ in range(2):  # one retry; step_index makes a retried step idempotent on the server
            try:
                return ep, self.client.step(ep.session_id, action, step_index=index)
            except TypeError:  # a client without step_index
                try:
                    return ep, self.client.step(ep.session_id, action)
                except Exception as exc:
                    return ep, exc
            except Exception as exc:
                last = exc
        return ep, last

    def _close(self, ep: Episode) -> None:
        if ep.session_id is None:
            return
        try:
            self.client.close_session(ep.session_id)
        except Exception:  # best effort: the server also expires idle sessions
            pass

    # ------------------------------------------------------------------------------------------- run

    def run(self, specs: Sequence[EpisodeSpec], *, want_logprobs: bool = False) -> list[Episode]:
        eps = [Episode(spec=s, logprobs=[] if want_logprobs else None) for s in specs]
        self._map(self._reset, eps)
        active = [e for e in eps if not e.done]
        turn = 0
        while True:
            local_more = bool(active) and turn < self.max_turns
            if self.sync_fn is not None:
                if not self.sync_fn(local_more):
                    break
            elif not local_more:
                break
            turn += 1
            budgets = [self.max_completion_length - len(e.completion_ids) for e in active] if local_more else []
            max_new = max([min(self.max_turn_tokens, b) for b in budgets], default=1)
            prompts = [e.prompt_ids + e.completion_ids for e in active] if local_more else []
            if not prompts:  # another rank still generates: take part in the collective call, discard
                self.generate([[self.eos_id]], 1)
                continue
            outs, lps = self.generate(prompts, max(1, max_new))
            step_items: list[tuple[Episode, str]] = []
            for e, ids, b, k in zip(active, outs, budgets, range(len(active))):
                ids = list(ids)[: max(0, min(self.max_turn_tokens, b))]
                e.completion_ids += ids
                e.env_mask += [1] * len(ids)
                if e.logprobs is not None:
                    row = (lps[k] if lps is not None else [0.0] * len(ids))[: len(ids)]
                    e.logprobs += [float(x) if x is not None else 0.0 for x in row]
                text = self._text(ids)
                e.actions.append(text)
                step_items.append((e, text))
            for e, res in self._map(self._step, step_items):
                if isinstance(res, Exception):
                    e.error = f"step failed: {type(res).__name__}: {res}"
                    continue
                info = _get(res, "info", {}) or {}
                e.terminated = bool(_get(res, "terminated", False))
                e.truncated = bool(_get(res, "truncated", False))
                if e.done:
                    self._apply_terminal(e, info)
                    continue
                obs = str(_get(res, "observation", ""))
                e.observations.append(obs)
                last = e.completion_ids[-1] if e.completion_ids else None
                extra: list[int] = []
                if last not in self.eos_ids:  # the turn was cut by its budget: close it (not trained on)
                    extra.append(self.eos_id)
                extra += self.obs_tok.suffix_ids(obs)
                if len(e.completion_ids) + len(extra) + 1 > self.max_completion_length:
                    e.budget_exhausted = True
                    continue
                e.completion_ids += extra
                e.env_mask += [0] * len(extra)
                if e.logprobs is not None:
                    e.logprobs += [0.0] * len(extra)
            active = [e for e in active if not e.done and not e.budget_exhausted]
        # Episodes still open (turn or token budget spent before the server ended them) get the server's verdict on
        # what they did so far: ending the session scores it; a server without that leaves them unscored (dropped).
        for e in eps:
            if not e.done and e.error is None and e.session_id is not None:
                self._finish_unterminated(e)
        for e in eps:
            self._close(e)
        return eps

    def _finish_unterminated(self, ep: Episode) -> None:
        """End an episode whose token budget ran out before the server ended it.

        The server scores an episode when it terminates or reaches ``max_steps`` (set to ``max_turns`` at reset),
        so the rollout sends empty actions — "the model said nothing more" — until it does. Those actions add no
        tokens; the score judges what the model did within its budget (running out is not free).
        """
        sent = len(ep.actions)  # steps 0..sent-1 carried the policy's actions
        for k in range(self.max_turns + 1):
            # each empty action gets its own step_index: a repeated index would be answered from the server's record
            # of the earlier step (idempotent retries) instead of advancing the episode
            _, res = self._step((ep, ""), index=sent + k)
            if isinstance(res, Exception):
                ep.error = f"finish failed: {type(res).__name__}: {res}"
                return
            if bool(_get(res, "terminated", False)) or bool(_get(res, "truncated", False)):
                ep.truncated = True
                self._apply_terminal(ep, _get(res, "info", {}) or {})
                return
        ep.error = "episode did not terminate within the rollout budget"


__all__ = [
    "COMPONENTS",
    "DEFAULT_WEIGHTS",
    "Episode",
    "EpisodeSpec",
    "GenerateFn",
    "HFGenerator",
    "ObservationTokenizer",
    "PENALTIES",
    "RolloutEngine",
    "episode_metrics",
]
