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
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

GenerateFn = Callable[[list[list[int]], int], tuple[list[list[int]], list[list[float]] | None]]

COMPONENTS = ("task_completion", "tool_accuracy", "efficiency", "timing_quality", "format_compliance")
PENALTIES = ("wrong_tool", "hallucinated_tool", "redundant_call", "format_error", "timeout")
DEFAULT_WEIGHTS = {
    "task_completion": 0.40,
    "tool_accuracy": 0.25,
    "efficiency": 0.15,
    "timing_quality": 0.10,
    "format_compliance": 0.10,
}
"""The reward contract's default weights (design §4), used to log weighted components when the server's
response does not say which weights it applied."""


@dataclass(frozen=True)
class EpisodeSpec:
    """What to reset: a task, an episode seed and (optionally) a template. Rows of one GRPO group share all three."""

    task_id: str | None = None
    seed: int | None = None
    template: str | None = None


@dataclass
class Episode:
    spec: EpisodeSpec
    prompt_ids: list[int] = field(default_factory=list)
    completion_ids: list[int] = field(default_factory=list)
    env_mask: list[int] = field(default_factory=list)
    logprobs: list[float] | None = None
    actions: list[str] = field(default_factory=list)
    observations: list[str] = field(default_factory=list)
    prompt_messages: list[dict[str, str]] = field(default_factory=list)
    session_id: str | None = None
    template: str | None = None
    task_id: str | None = None
    terminated: bool = False
    truncated: bool = False
    budget_exhausted: bool = False
    total: float | None = None
    components: dict[str, float] = field(default_factory=dict)
    penalties: dict[str, float] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    valid: bool = False
    feedback: str = ""
    error: str | None = None

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated or self.error is not None

    @property
    def reward(self) -> float | None:
        """The server's total, or None when the score is invalid (dropped from updates, never counted as 0)."""
        return self.total if self.valid and self.total is not None and math.isfinite(self.total) else None

    @property
    def completion_text(self) -> str:
        return "\n".join(self.actions)


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


class ObservationTokenizer:
    """Chat-template-exact ids for an observation appended after a finished assistant turn."""

    def __init__(self, tokenizer: Any, chat_template: str | None = None, role: str = "user"):
        self.tok = tokenizer
        self.chat_template = chat_template
        self.role = role
        self.eos_id = tokenizer.eos_token_id
        self._prefix_cache: list[int] | None = None

    def _apply(self, messages: list[dict[str, str]], add_generation_prompt: bool) -> list[int]:
        out = self.tok.apply_chat_template(
            messages,
            tokenize=True,
            add_generation_prompt=add_generation_prompt,
            chat_template=self.chat_template,
            return_dict=False,
        )
        if isinstance(out, dict) or hasattr(out, "keys"):
            out = out["input_ids"]
        if out and isinstance(out[0], list):
            out = out[0]
        return list(out)

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        return self._apply(messages, add_generation_prompt=True)

    def suffix_ids(self, observation: str) -> list[int]:
        base = [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]
        if self._prefix_cache is None:
            prefix = self._apply(base, add_generation_prompt=False)
            eos = [i for i, t in enumerate(prefix) if t == self.eos_id]
            if eos:
                prefix = prefix[: eos[-1] + 1]
            self._prefix_cache = prefix
        prefix = self._prefix_cache
        full = self._apply(base + [{"role": self.role, "content": observation}], add_generation_prompt=True)
        if full[: len(prefix)] != prefix:
            raise ValueError("chat template is not prefix-preserving; cannot append observations token-exactly")
        return full[len(prefix) :]


class HFGenerator:
    """``GenerateFn`` over a transformers causal LM (left-padded batch generate, cut after the first EOS)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        do_sample: bool = True,
        temperature: float = 1.0,
        top_p: float = 1.0,
        batch_size: int = 64,
        return_logprobs: bool = False,
    ):
        self.model = model
        self.tok = tokenizer
        self.do_sample = do_sample
        self.temperature = temperature
        self.top_p = top_p
        self.batch_size = batch_size
        self.return_logprobs = return_logprobs

    def __call__(self, prompts: list[list[int]], max_new_tokens: int) -> tuple[list[list[int]], list[list[float]] | None]:
        import torch

        eos_ids = self.tok.eos_token_id
        eos_set = {eos_ids} if isinstance(eos_ids, int) else set(eos_ids or [])
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else next(iter(eos_set))
        device = next(self.model.parameters()).device
        outs: list[list[int]] = []
        lps: list[list[float]] | None = [] if self.return_logprobs else None
        was_training = self.model.training
        self.model.eval()
        try:
            for start in range(0, len(prompts), self.batch_size):
                chunk = prompts[start : start + self.batch_size]
                width = max(len(p) for p in chunk)
                ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                att = torch.zeros((len(chunk), width), dtype=torch.long)
                for i, p in enumerate(chunk):
                    ids[i, width - len(p) :] = torch.tensor(p, dtype=torch.long)
                    att[i, width - len(p) :] = 1
                kw: dict[str, Any] = dict(
                    max_new_tokens=max_new_tokens,
                    do_sample=self.do_sample,
                    pad_token_id=pad,
                    eos_token_id=list(eos_set),
                    return_dict_in_generate=True,
                    output_scores=self.return_logprobs,
                )
                if self.do_sample:
                    kw.update(temperature=self.temperature, top_p=self.top_p, top_k=0)
                else:
                    kw.update(temperature=None, top_p=None, top_k=None)
                with torch.no_grad():
                    res = self.model.generate(input_ids=ids.to(device), attention_mask=att.to(device), **kw)
                gen = res.sequences[:, width:].cpu()
                if self.return_logprobs:
                    scores = torch.stack(res.scores, dim=1).float().log_softmax(-1).cpu()  # (B, T, V)
                for i in range(len(chunk)):
                    row = gen[i].tolist()
                    cut = len(row)
                    for j, t in enumerate(row):
                        if t in eos_set:
                            cut = j + 1
                            break
                    row = row[:cut]
                    outs.append(row)
                    if lps is not None:
                        lps.append([float(scores[i, j, t]) for j, t in enumerate(row)])
        finally:
            if was_training:
                self.model.train()
        return outs, lps


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


def episode_metrics(episodes: Sequence[Episode], default_weights: dict[str, float] | None = None) -> dict[str, float]:
    """Aggregate the reward breakdown of finished episodes (valid ones only), as flat metric names.

    - ``reward/total``: mean server total.
    - ``reward/<component>``: mean raw component, in [0, 1].
    - ``reward_weighted/<component>``: mean ``w_k * c_k`` — the component's contribution to the total, with the
      weights the server applied (from its response) or the contract defaults.
    - ``penalty/<name>``: mean penalty contribution per episode (<= 0; penalties are added to the total as-is).
    - ``penalty_rate/<name>``: fraction of episodes where the penalty applied.
    - ``reward/valid_fraction``: share of episodes with a valid score; invalid ones are excluded above and from the
      policy update.
    """
    weights_default = dict(default_weights or DEFAULT_WEIGHTS)
    valid = [e for e in episodes if e.reward is not None]
    out: dict[str, float] = {"reward/valid_fraction": (len(valid) / len(episodes)) if episodes else 0.0}
    if not valid:
        return out
    out["reward/total"] = sum(e.reward for e in valid) / len(valid)  # type: ignore[misc]
    comps = sorted({k for e in valid for k in e.components} | set(COMPONENTS))
    for k in comps:
        vals = [e.components.get(k, 0.0) for e in valid]
        out[f"reward/{k}"] = sum(vals) / len(vals)
        wv = [e.components.get(k, 0.0) * (e.weights or weights_default).get(k, weights_default.get(k, 0.0)) for e in valid]
        out[f"reward_weighted/{k}"] = sum(wv) / len(wv)
    pens = sorted({k for e in valid for k in e.penalties} | set(PENALTIES))
    for k in pens:
        vals = [e.penalties.get(k, 0.0) for e in valid]
        out[f"penalty/{k}"] = sum(vals) / len(vals)
        out[f"penalty_rate/{k}"] = sum(1 for v in vals if v != 0.0) / len(vals)
    out["episode/turns"] = sum(len(e.actions) for e in valid) / len(valid)
    return out


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
