"""Where a training stage's time goes: tokens/s, generation share, reward-server share and peak RSS.

On CPU a real model spends most of a GRPO step generating; the rest is the server (reset/step/score, which
includes sandboxed tool execution) and the policy update. :class:`StageMeter` accumulates the first two, and
:func:`instrument_grpo` wires it into a built GRPO trainer without changing TRL's code paths: the trainer's
single-turn generation method and the rollout's client are wrapped (an instance attribute each), and a
callback adds ``perf/*`` keys to every log row, so they land in ``metrics.jsonl`` beside the rewards:

- ``perf/gen_tokens_per_s``: completion tokens generated per second of generation;
- ``perf/train_tokens_per_s``: prompt+completion tokens processed per second of stage wall time;
- ``perf/generation_share`` / ``perf/reward_server_share``: fractions of the stage's wall time so far;
- ``perf/peak_rss_mb``: the process's peak resident set size so far (``ru_maxrss``; monotone, so the value
  at a stage's end is that stage's peak or an earlier stage's, whichever is larger).

SFT gets :func:`sft_perf_callback` (tokens/s from the trainer's ``num_tokens`` log, peak RSS).
"""

from __future__ import annotations

import resource
import sys
import threading
import time
from typing import Any

__all__ = ["StageMeter", "TimedClient", "instrument_grpo", "peak_rss_mb", "sft_perf_callback"]


def peak_rss_mb() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes
    return r / (1024 * 1024) if sys.platform == "darwin" else r / 1024


class StageMeter:
    """Seconds spent generating and waiting on the server, and tokens generated, since :meth:`start`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # rollout steps run on a thread pool
        self.start()

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self.gen_seconds = 0.0
        self.server_seconds = 0.0
        self.gen_tokens = 0
        self.server_calls = 0

    def add_gen(self, seconds: float, tokens: int) -> None:
        with self._lock:
            self.gen_seconds += seconds
            self.gen_tokens += int(tokens)

    def add_server(self, seconds: float) -> None:
        with self._lock:
            self.server_seconds += seconds
            self.server_calls += 1

    def snapshot(self) -> dict[str, float]:
        wall = max(1e-9, time.perf_counter() - self.t0)
        with self._lock:
            server = self.server_seconds
            return {
                "perf/wall_s": wall,
                "perf/gen_tokens": float(self.gen_tokens),
                "perf/gen_tokens_per_s": self.gen_tokens / self.gen_seconds if self.gen_seconds else 0.0,
                "perf/generation_share": self.gen_seconds / wall,
                # server calls overlap each other on the rollout's thread pool: cap the share at the wall time
                "perf/reward_server_share": min(1.0, server / wall),
                "perf/server_calls": float(self.server_calls),
                "perf/peak_rss_mb": peak_rss_mb(),
            }


class TimedClient:
    """A ``ToolgymClient`` stand-in that times every call it forwards (reset, step, close, score...)."""

    _TIMED = frozenset({"reset", "step", "close_session", "score", "list_tasks"})

    def __init__(self, client: Any, meter: StageMeter):
        self._client = client
        self._meter = meter

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name not in self._TIMED or not callable(attr):
            return attr

        def timed(*a: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return attr(*a, **kw)
            finally:
                self._meter.add_server(time.perf_counter() - t)

        return timed


def instrument_grpo(trainer: Any, meter: StageMeter | None = None) -> StageMeter:
    """Time a GRPO trainer's generation and its rollout's server calls; add ``perf/*`` to its logs."""
    from transformers import TrainerCallback

    meter = meter or StageMeter()
    gen = trainer._generate_single_turn

    def timed_generate(*a: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        out = gen(*a, **kw)
        ids = out[0] if isinstance(out, tuple) else out
        meter.add_gen(time.perf_counter() - t, sum(len(x) for x in ids))
        return out

    trainer._generate_single_turn = timed_generate
    rollout = getattr(trainer, "toolgym_rollout", None)
    if rollout is not None:
        rollout._client = TimedClient(rollout.client, meter)

    class _PerfCallback(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            meter.start()  # the held-out evaluation before training is not part of the stage's cost

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
            if logs is None:
                return
            snap = meter.snapshot()
            ntok = logs.get("num_tokens") or getattr(state, "num_input_tokens_seen", 0)
            if ntok:
                snap["perf/train_tokens_per_s"] = float(ntok) / snap["perf/wall_s"]
            logs.update(snap)

    # first, so the metrics-log callback (added at construction) sees the perf keys in the same row
    trainer.callback_handler.callbacks.insert(0, _PerfCallback())
    trainer.toolgym_meter = meter
    return meter


def sft_perf_callback() -> Any:
    """A ``TrainerCallback`` adding ``perf/train_tokens_per_s``, ``perf/wall_s`` and ``perf/peak_rss_mb`` to SFT logs."""
    from transformers import TrainerCallback

    class _SFTPerf(TrainerCallback):
        t0 = time.perf_counter()

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.t0 = time.perf_counter()

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
            if logs is None:
                return
            wall = max(1e-9, time.perf_counter() - self.t0)
            logs["perf/wall_s"] = wall
            ntok = logs.get("num_tokens") or getattr(state, "num_input_tokens_seen", 0)
            if ntok:
                logs["perf/train_tokens_per_s"] = float(ntok) / wall
            logs["perf/peak_rss_mb"] = peak_rss_mb()

    return _SFTPerf()
