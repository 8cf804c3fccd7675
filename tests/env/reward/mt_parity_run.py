"""Score multi-turn trajectories with BFCL's checker and with toolgym's env, back to back.

- BFCL: one long-lived :mod:`mt_parity_bfcl` worker in BFCL's own venv
  (``.cache/venvs/bfcl-2026.3.23``, ``make bfcl-venv``), fed one trajectory per line.
- toolgym: ``gym.make("toolgym/ToolUse-v0", template="pythonic")`` as an RL loop drives it,
  one action per model step with that step's calls in parallel (``[f(a=1), g(b=2)]``) and a
  plain-text action ending each user turn. By default one long-lived env (and sandbox worker
  pool) serves every episode; ``fresh=True`` builds a new env *and* a new worker pool per
  episode, which separates leaks between episodes from checker differences.

The trajectory is written to the BFCL worker before toolgym plays it, so BFCL's child scores
on the other core meanwhile.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
BFCL_VENV = REPO / ".cache" / "venvs" / "bfcl-2026.3.23"
BFCL_PYTHON = BFCL_VENV / "bin" / "python"
WORKER = Path(__file__).with_name("mt_parity_bfcl.py")
END_TURN = "I have done what I can for this request."


def bfcl_venv_problem() -> str | None:
    """Why BFCL's checker cannot run here, or None when its venv is ready."""
    if not BFCL_PYTHON.exists():
        return f"BFCL's venv is missing ({BFCL_VENV}); create it with `make bfcl-venv`"
    probe = subprocess.run([str(BFCL_PYTHON), "-c", "import bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker"],
                           capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        return f"BFCL's venv at {BFCL_VENV} cannot import the checker: {probe.stderr.strip()[-300:]}; recreate it with `make bfcl-venv`"
    return None


class BfclWorker:
    """BFCL's ``multi_turn_checker`` in a long-lived subprocess of its own venv."""

    def __init__(self, fork_per_trajectory: bool = True):
        argv = [str(BFCL_PYTHON), str(WORKER)] + ([] if fork_per_trajectory else ["--no-fork"])
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, env=env)

    def submit(self, item: dict[str, Any]) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(item) + "\n")
        self._proc.stdin.flush()

    def result(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"BFCL worker exited (code {self._proc.poll()})")
        return json.loads(line)

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait(timeout=30)


def actions_of(turns: list[list[list[str]]]) -> list[str]:
    """The model's actions: one per step (its calls in parallel), then a turn-ending text."""
    out = []
    for steps in turns:
        out.extend("[" + ", ".join(step) + "]" for step in steps if step)
        out.append(END_TURN)
    return out


def make_env(max_steps: int | None = None) -> Any:
    """The env as the held-out check builds it: the pythonic template, default options.

    ``max_steps`` stays the env's default unless given: a trajectory longer than that is
    truncated by toolgym (a failed episode) while BFCL only force-terminates a turn of over 20
    steps, and that difference is part of what the parity measures.
    """
    import gymnasium as gym

    import toolgym.env  # noqa: F401  (registers the env)

    kwargs = {} if max_steps is None else {"max_steps": max_steps}
    return gym.make("toolgym/ToolUse-v0", template="pythonic", **kwargs)


def play(env: Any, task_id: str, turns: list[list[list[str]]]) -> dict[str, Any]:
    """Play one trajectory on ``env``; toolgym's verdict, first failing turn and notes."""
    env.reset(options={"task_id": task_id})
    actions = actions_of(turns)
    info: dict[str, Any] = {}
    sent = 0
    done = cut = False
    for action in actions:
        _, _, terminated, truncated, info = env.step(action)
        sent += 1
        if terminated or truncated:
            done, cut = True, bool(truncated)
            break
    if not done:
        return {"valid": False, "turn": None, "note": f"episode still running after {sent} actions", "errors": []}
    score = getattr(env.unwrapped, "_episode").final_score  # details (turns_ok, errors) are not in info
    details = dict(score.details) if score is not None else {}
    turns_ok = details.get("turns_ok") or []
    first_bad = next((i for i, ok in enumerate(turns_ok) if not ok), None)
    note = "" if sent == len(actions) else f"episode ended after {sent} of {len(actions)} actions"
    if cut:
        note = f"truncated at max_steps after {sent} of {len(actions)} actions"
    if not info.get("valid", False):
        note = (note + "; " if note else "") + f"score invalid: {info.get('feedback', '')}"
    return {"valid": float(info.get("components", {}).get("task_completion", 0.0)) == 1.0 and bool(info.get("valid")),
            "turn": first_bad, "note": note, "errors": list(details.get("multi_turn_errors") or [])}


@dataclass
class Outcome:
    traj: Any
    bfcl: dict[str, Any]
    toolgym: dict[str, Any]

    @property
    def agree(self) -> bool:
        return bool(self.bfcl["valid"]) == bool(self.toolgym["valid"])

    @property
    def same_turn(self) -> bool:
        """Both fail at the same first turn (BFCL stops there), or both pass."""
        if self.bfcl["valid"] or self.toolgym["valid"]:
            return self.agree
        return self.bfcl.get("turn") == self.toolgym.get("turn") or self.bfcl.get("turn") is None


def score_all(trajectories: Iterable[Any], *, fresh: bool = False, fork_bfcl: bool = True) -> Iterator[Outcome]:
    """Both verdicts for every trajectory, in order (see the module docstring)."""
    from toolgym.env.executor import shared_executor

    worker = BfclWorker(fork_per_trajectory=fork_bfcl)
    env = None if fresh else make_env()
    try:
        for traj in trajectories:
            worker.submit(traj.bfcl_item())
            if fresh:
                shared_executor().close()  # a new worker pool: nothing of an earlier episode survives
                env = make_env()
            try:
                tg = play(env, traj.task_id, traj.turns)
            except Exception as e:  # noqa: BLE001 - a crash is a verdict to explain, not a reason to stop
                tg = {"valid": False, "turn": None, "note": f"toolgym raised {type(e).__name__}: {e}"[:300], "errors": []}
            finally:
                if fresh and env is not None:
                    env.close()
            yield Outcome(traj, worker.result(), tg)
    finally:
        if env is not None and not fresh:
            env.close()
        worker.close()


@dataclass
class Tally:
    """Agreement counts overall and per key (category, kind, ...)."""

    n: int = 0
    agree: int = 0
    same_turn: int = 0
    by: dict[str, list[int]] = field(default_factory=dict)
    disagreements: list[Outcome] = field(default_factory=list)

    def add(self, o: Outcome, *keys: str) -> None:
        self.n += 1
        self.agree += o.agree
        self.same_turn += o.same_turn
        for k in keys:
            row = self.by.setdefault(k, [0, 0])
            row[0] += 1
            row[1] += o.agree
        if not o.agree:
            self.disagreements.append(o)

    @property
    def rate(self) -> float:
        return self.agree / self.n if self.n else 0.0


def load_module(name: str) -> Any:
    """Import a sibling helper (``mt_parity_gen`` ...) by path: tests/ is not a package."""
    here = str(Path(__file__).parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    return __import__(name)
