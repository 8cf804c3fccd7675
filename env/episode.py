"""One tool-use episode: prompt rendering, action parsing, sandboxed execution and reward.

The in-process :class:`~toolgym.env.gym_env.ToolUseEnv` and the gRPC EnvService both drive
this class, so a remote episode is the same episode as a local one for the same seed.

Episode shapes by task kind:

- ``ast`` / ``irrelevance`` / ``relevance`` (BFCL single-turn): one action ends the episode;
  its calls are scored, not executed (BFCL ships no implementations for them).
- ``multi_turn`` (BFCL stateful): calls run on the task's backends in the sandbox and their
  results come back as the observation; an action without calls ends the user's turn and the
  next user message follows; after the last turn the episode terminates.
- ``final_answer``: calls run on the task's toolset (e.g. ``python``) until a final answer.

Every episode also ends on a give-up or at ``max_steps`` (``truncated``). The terminal step
carries the contract reward; intermediate steps carry optional shaping (immediate penalties
scaled by ``shaping``; 0 by default, so the episode return equals the contract reward).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np

from toolgym.env.dispatch import classify, run_calls
from toolgym.env.executor import ToolExecutor, ToolSession, toolset_of
from toolgym.env.parsers import TEMPLATES, parse, render_observation, render_system_prompt
from toolgym.env.parsers.feedback import render_parse_errors
from toolgym.env.reward.config import RewardConfig
from toolgym.env.reward.engine import score_trajectory
from toolgym.env.reward.multi_turn import GroundTruthReplay, MultiTurnVerdict, TurnRecord, check_multi_turn
from toolgym.env.reward.trajectory import CallOutcome, ScoreResult, StepRecord, Trajectory
from toolgym.env.retrieval.episode_retrieval import SEARCH_TOOL, EpisodeRetrieval, check_retrieval_options
from toolgym.env.retrieval.source import RetrievalSource
from toolgym.env.textsafe import clean_json, clean_text
from toolgym.env.types import Task, ToolCall, ToolSpec

SINGLE_STEP_KINDS = frozenset({"ast", "irrelevance", "relevance"})
#: ``EpisodeOptions.on_parse_error`` values (see the README, "Malformed tool calls").
PARSE_ERROR_MODES = ("observe", "end_turn")
#: Issue kinds that mean "no call was attempted" rather than "a call was malformed".
PROSE_ISSUES = frozenset({"no_structure"})


@dataclass(frozen=True)
class EpisodeOptions:
    """What a reset asks for. The same options and seed always give the same episode."""

    task_id: str | None = field(default=None, metadata={"help": "Fixed task id; None picks one with the seed."})
    categories: tuple[str, ...] = field(default=(), metadata={"help": "Pick among these categories (empty = all)."})
    seed: int | None = field(default=None, metadata={"help": "Seed for task and template choice."})
    template: str | None = field(default=None, metadata={"help": "Prompt/parse template; None = default or random."})
    randomize_template: bool = field(default=False, metadata={"help": "Draw the template per episode (Meta-Agent diversity)."})
    max_steps: int = field(default=32, metadata={"help": "Actions per episode before truncation."})
    shaping: float = field(default=0.0, metadata={"help": "Scale of per-step shaping (immediate penalties); 0 = terminal reward only."})
    on_parse_error: str = field(default="observe", metadata={"help": (
        "What an output that does not parse cleanly does: 'observe' = the parse error comes back as the observation "
        "and the turn goes on; 'end_turn' = the output is taken as it parsed (no well-formed call ends the turn)")})
    tool_pool: str = field(default="task", metadata={"help": (
        "Where the task's tools are hidden: 'task' = its own tools only, 'full_catalogue' = among every catalogue "
        "tool, 'k_distractors:N' = among N other catalogue tools (README, 'Tool retrieval')")})
    retrieval: str = field(default="none", metadata={"help": (
        "How the model gets the pool's tools: 'none' = all offered in the prompt, 'search' = only search_tools(query, k) "
        "is offered and what it returns becomes callable, 'pre_retrieved' = the top retrieval_k per user turn are offered")})
    retriever: str = field(default="", metadata={"help": "Retriever behind search / pre_retrieved: bm25 (empty), dense, finetuned, hybrid, auto."})
    retrieval_k: int = field(default=5, metadata={"help": "pre_retrieved: tools offered per user turn (1-20)."})

    def __post_init__(self) -> None:
        if self.on_parse_error not in PARSE_ERROR_MODES:
            raise ValueError(f"on_parse_error must be one of {list(PARSE_ERROR_MODES)}, got {self.on_parse_error!r}")
        check_retrieval_options(self.tool_pool, self.retrieval, self.retriever, self.retrieval_k)


def select_task(tasks: Sequence[Task], seed: int) -> Task:
    """Deterministic choice shared by local and remote envs (tasks sorted by id first)."""
    if not tasks:
        raise ValueError("no task matches the requested categories; check the names with `toolgym tasks`")
    ordered = sorted(tasks, key=lambda t: t.id)
    return ordered[int(np.random.default_rng(seed).integers(len(ordered)))]


def select_template(seed: int, template: str | None, randomize: bool, default: str) -> str:
    if template:
        if template not in TEMPLATES:
            raise ValueError(f"unknown template {template!r}; use one of {list(TEMPLATES)}")
        return template
    if randomize:
        return TEMPLATES[int(np.random.default_rng([seed, 1]).integers(len(TEMPLATES)))]
    return default


@dataclass
class StepOutcome:
    observation: str
    reward: float
    terminated: bool
    truncated: bool
    info: dict[str, Any]
    score: ScoreResult | None = None


class Episode:
    """A single episode. Not thread-safe: the caller serialises steps of one episode."""

    def __init__(self, task: Task, template: str, options: EpisodeOptions, reward: RewardConfig,
                 executor: ToolExecutor | None, gt_replay: Any = None, retrieval: RetrievalSource | None = None):
        self.task = task
        self.template = template
        self.options = options
        self.reward_config = reward
        self._executor = executor
        self._gt_replay = gt_replay  # callable(task) -> GroundTruthReplay, for multi_turn
        self._session: ToolSession | None = None
        self.steps: list[StepRecord] = []
        self.turn = 0
        self._turn_calls: list = []
        self._turn_results: list[str] = []
        self._turn_records: list[TurnRecord] = []
        self.done = False
        self.final_score: ScoreResult | None = None
        self._retrieval_source = retrieval
        self._retr: EpisodeRetrieval | None = None  # set by start() for a retrieval episode
        self._search_only: set[int] = set()  # indices of steps that only searched (not scored calls)

    # ------------------------------------------------------------------ prompts
    def _held(self, turn: int) -> frozenset[str]:
        """Tools still withheld at ``turn`` (BFCL miss_func holds some back until a later turn)."""
        held: set[str] = set()
        for t_idx, names in (self.task.missed_function or {}).items():
            if int(t_idx) > turn:
                held.update(names)
        return frozenset(held)

    def _offered_tools(self, turn: int) -> list[ToolSpec]:
        """Tools offered at ``turn``: the task's (less the withheld), or what retrieval offers."""
        held = self._held(turn)
        if self._retr is not None:
            return self._retr.offered(held)
        return [t for t in self.task.tools if t.name not in held]

    def _turn_text(self, turn: int) -> str:
        msgs = self.task.turns[turn] if turn < len(self.task.turns) else ()
        return "\n".join(m.get("content", "") for m in msgs if m.get("role") != "system")

    def start(self) -> tuple[str, dict[str, Any]]:
        o = self.options
        self._retr = EpisodeRetrieval.build(self.task, tool_pool=o.tool_pool, mode=o.retrieval, retriever=o.retriever,
                                            k=o.retrieval_k, seed=o.seed or 0, source=self._retrieval_source)
        if self._retr is not None:
            self._retr.pre_retrieve(self._turn_text(0), self._held(0))
        tools = self._offered_tools(0)
        system = render_system_prompt(tools, self.template)
        extra_system = "\n".join(m.get("content", "") for m in (self.task.turns[0] if self.task.turns else ()) if m.get("role") == "system")
        if extra_system:
            system = extra_system + "\n\n" + system
        user = self._turn_text(0)
        spec = toolset_of(self.task)
        if spec is not None and self.task.kind not in SINGLE_STEP_KINDS:
            if self._executor is None:
                raise RuntimeError(f"task {self.task.id!r} needs the {spec[0]!r} toolset but no sandbox executor is configured")
            self._session = self._executor.open(spec[0], spec[1])
        info = {
            "task_id": self.task.id,
            "category": self.task.category,
            "kind": self.task.kind,
            "template": self.template,
            "tools": [t.to_dict() for t in tools],
            "system_prompt": system,
            "user_prompt": user,
            "turn": 0,
            "num_turns": len(self.task.turns),
        }
        if self._retr is not None:
            info["retrieval"] = {"mode": o.retrieval, "tool_pool": o.tool_pool, "pool_size": len(self._retr.pool),
                                 "retriever": o.retriever or "bm25"}
        # Task text can come from a client (inline tasks): made encodable like every observation.
        return clean_text(f"{system}\n\nUser: {user}"), clean_json(info)

    # ------------------------------------------------------------------ stepping
    def _execute(self, calls: tuple[ToolCall, ...], offered: list[ToolSpec]) -> tuple[CallOutcome, ...]:
        if self._session is None:
            return ()
        stateful = self.task.kind == "multi_turn"
        names = [t.name for t in offered]
        toolset = frozenset(self._session.names())
        verdicts = [classify(c, names, toolset, bfcl=stateful) for c in calls]
        deadline = self._session.step_deadline()

        def execute(call: ToolCall) -> CallOutcome:
            r = self._session.call(call.name, call.arguments, digest=stateful, deadline=deadline)
            out, err = clean_text(r.output or ""), (clean_text(r.error) if r.error else None)
            return CallOutcome(call=call, ok=r.ok, output=out, error=err, timed_out=r.timed_out, state_digest=r.state_digest,
                               failed_precondition=bool(err) and _looks_precondition(err))

        def refused(call: ToolCall, error: str) -> CallOutcome:
            return CallOutcome(call=call, ok=False, error=error)

        def failed(call: ToolCall, e: BaseException) -> CallOutcome:
            return CallOutcome(call=call, ok=False, error=clean_text(f"the sandbox failed to run this call: {type(e).__name__}: {e}"))

        outcomes = tuple(run_calls(calls, verdicts, execute, refused, failed))
        for o in outcomes:
            self._turn_calls.append(o.call)
            self._turn_results.append(o.output if o.ok else (o.error or "error"))
        return outcomes

    def _end_turn(self) -> None:
        state: dict[str, Any] = {}
        if self._session is not None:
            try:
                state = self._session.state()
            except Exception as e:  # noqa: BLE001 - the step is still recorded; the state check fails visibly
                state = {"__state_error__": f"{type(e).__name__}: {e}"}
        self._turn_records.append(TurnRecord(calls=tuple(self._turn_calls), results=tuple(self._turn_results), state=state))
        self._turn_calls, self._turn_results = [], []

    def step(self, action: str) -> StepOutcome:
        """Run one action. Its calls are parsed, screened (:mod:`toolgym.env.textsafe`), run or
        refused (:mod:`toolgym.env.dispatch`) and the step is recorded in every case: nothing
        here raises for model text, so a step is never lost after some of its calls ran."""
        if self.done:
            raise RuntimeError("episode is over; reset to start a new one")
        offered = self._offered_tools(self.turn)
        held = self._held(self.turn)
        parsed = parse(action, self.template, self._retr.parse_specs(held) if self._retr is not None else offered)
        # search_tools is the env's own meta-tool: answered here, in order, and not a scored call.
        searching = self._retr is not None and self._retr.mode == "search"
        found = {i: self._retr.search(c, held) for i, c in enumerate(parsed.calls) if c.name == SEARCH_TOOL} if searching else {}
        scored = replace(parsed, calls=tuple(c for i, c in enumerate(parsed.calls) if i not in found)) if found else parsed
        outcomes = self._execute(scored.calls, offered) if scored.calls else ()
        offered_names = frozenset(t.name for t in offered)
        rec = StepRecord(output=action, parsed=scored, outcomes=outcomes, turn=self.turn,
                         timed_out=any(o.timed_out for o in outcomes), offered=offered_names)
        self.steps.append(rec)
        search_only = bool(found) and not scored.calls
        if search_only:
            self._search_only.add(len(self.steps) - 1)

        kind = self.task.kind
        # Prose with no call structure at all (``no_structure``: react, toolllama, autogpt) is a
        # message to the user, as in BFCL: it ends the turn in both modes (its error is still shown).
        attempted = any(i.kind not in PROSE_ISSUES for i in parsed.issues)
        observe = attempted and self.options.on_parse_error == "observe"
        errors = render_parse_errors(parsed.issues, self.template, ran=len(outcomes))
        terminated = False
        observation = ""
        if (kind in SINGLE_STEP_KINDS and not search_only) or parsed.give_up:
            terminated = True
            observation = errors
        elif parsed.calls or observe:
            results = self._results(parsed.calls, found, outcomes)
            observation = "\n\n".join(x for x in (render_observation(results, self.template) if results else "", errors) if x)
        elif kind == "multi_turn":
            self._end_turn()
            self.turn += 1
            if self.turn >= len(self.task.turns):
                terminated = True
                observation = errors
            else:
                if self._retr is not None:
                    self._retr.pre_retrieve(self._turn_text(self.turn), self._held(self.turn))
                now = self._offered_tools(self.turn)
                new_tools = [t for t in now if t not in offered]
                observation = f"User: {self._turn_text(self.turn)}"
                if new_tools:
                    observation = render_system_prompt(new_tools, self.template, instructions="New tools are available:") + "\n\n" + observation
                if errors:
                    observation = errors + "\n\n" + observation
        else:
            terminated = True  # a final answer (or plain text) ends a final_answer task
            observation = errors
        truncated = not terminated and len(self.steps) >= self.options.max_steps
        info: dict[str, Any] = {"turn": self.turn, "step": len(self.steps), "calls": [c.name for c in parsed.calls]}
        unoffered = [c.name for c in parsed.calls if c.name not in offered_names]
        if unoffered:
            info["unoffered_calls"] = unoffered  # names the model wrote itself; scored as hallucinated
        if parsed.issues:
            info["parse_issues"] = [str(i) for i in parsed.issues]
        if found:
            info["searches"] = len(found)
        if terminated or truncated:
            return self._safe(self._finish(observation, terminated, truncated, info))
        reward = 0.0 if search_only else self._shaping(rec)
        return self._safe(StepOutcome(observation, reward, False, False, info))

    @staticmethod
    def _results(calls: tuple[ToolCall, ...], found: dict[int, tuple[bool, str]],
                 outcomes: tuple[CallOutcome, ...]) -> list[tuple[str, str]]:
        """(name, result text) per call in the order written: search answers and executed calls."""
        ran = iter(outcomes)
        results = []
        for i, c in enumerate(calls):
            if i in found:
                results.append((c.name, found[i][1]))
                continue
            o = next(ran, None)
            results.append((c.name, "this task's tools are not executable") if o is None
                           else (o.call.name, o.output if o.ok else (o.error or "error")))
        return results

    @staticmethod
    def _safe(out: StepOutcome) -> StepOutcome:
        # Observations and info out: the one place they are made encodable (U+FFFD), for every
        # caller (in-process env, gRPC, streams) alike.
        out.observation = clean_text(out.observation)
        out.info = clean_json(out.info)
        return out

    def _shaping(self, rec: StepRecord) -> float:
        if not self.options.shaping:
            return 0.0
        single = score_trajectory(self.task, Trajectory(steps=(rec,), multi_turn=_dummy_verdict(self.task)), self.reward_config)
        return self.options.shaping * sum(single.penalties.values())

    def _finish(self, observation: str, terminated: bool, truncated: bool, info: dict[str, Any]) -> StepOutcome:
        verdict: MultiTurnVerdict | None = None
        failure = ""
        if self.task.kind == "multi_turn":
            if len(self._turn_records) <= self.turn < len(self.task.turns):
                self._end_turn()  # the turn in progress (truncation / give-up) is judged as it stands
            try:
                replay: GroundTruthReplay = self._gt_replay(self.task)
                verdict = check_multi_turn(self._turn_records, replay)
            except Exception as e:  # noqa: BLE001 - the step stays recorded; the score says it is not valid
                verdict = None
                failure = f"the ground-truth replay of {self.task.id!r} failed: {type(e).__name__}: {e}"
        steps = tuple(s for i, s in enumerate(self.steps) if i not in self._search_only)
        traj = Trajectory(steps=steps, truncated=truncated, multi_turn=verdict,
                          retrieved=self._retr.seen() if self._retr is not None else None)
        if self.task.kind == "multi_turn" and verdict is None:
            score = ScoreResult(total=0.0, components={k: 0.0 for k in self.reward_config.weights}, penalties={},
                                valid=False, feedback=failure, details={"error": failure})
        else:
            score = score_trajectory(self.task, traj, self.reward_config)
        self.final_score = score
        self.done = True
        self.close()
        # The weights applied (task overrides merged, renormalised): total = sum(w_k * c_k) + penalties.
        weights = self.reward_config.for_task(self.task.weights, self.task.penalties).weights
        info.update({"total": score.total, "components": dict(score.components), "penalties": dict(score.penalties),
                     "valid": score.valid, "feedback": score.feedback, "weights": dict(weights)})
        return StepOutcome(observation, score.total, terminated, truncated, info, score)

    def close(self) -> None:
        if self._session is not None:
            try:
                self._session.close()
            finally:
                self._session = None


def _dummy_verdict(task: Task) -> MultiTurnVerdict | None:
    # Shaping scores only the step's penalties; completion is not judged mid-episode.
    return MultiTurnVerdict(ok=False, turns_ok=(), score=0.0) if task.kind == "multi_turn" else None


_PRECONDITION_MARKERS = ("no such file", "not found", "does not exist", "no such", "not exist", "unknown id", "invalid id")


def _looks_precondition(error: str) -> bool:
    low = error.lower()
    return any(m in low for m in _PRECONDITION_MARKERS)
