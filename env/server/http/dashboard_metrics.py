"""``GET /metrics``: :meth:`Board.numbers` in Prometheus' text format, on a registry of the board's own.

A custom collector renders the numbers at scrape time instead of mirroring them into live
``Counter`` objects: the dashboard and a scrape then read the same snapshot, and a private
:class:`CollectorRegistry` (not prometheus-client's global one) lets several servers live in one
process (the tests start many) without duplicate-metric errors.
"""

from __future__ import annotations

from typing import Any, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric,
                                    SummaryMetricFamily)
from prometheus_client.samples import Sample

from toolgym.env.server.http.dashboard_data import Board

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Sandbox stats that are levels, not running counts (everything else numeric in them only grows).
_SANDBOX_GAUGES = {"workers", "workers_alive", "sessions", "seccomp"}


def _cumulative(counts: list[int], bounds: list[float]) -> list[tuple[str, float]]:
    out, run = [], 0
    for le, n in zip([*(repr(float(b)) for b in bounds), "+Inf"], counts):
        run += n
        out.append((le, float(run)))
    return out


class BoardCollector:
    """Yields the board's counters, gauges, histograms and summaries on every scrape."""

    def __init__(self, board: Board):
        self.board = board

    def collect(self) -> Iterator[Metric]:
        d = self.board.numbers()
        yield from self._sessions(d["sessions"])
        yield CounterMetricFamily("toolgym_steps", "Env steps answered (gRPC and the HTTP gateway).", value=d["steps"]["total"])
        yield from self._episodes(d["reward"])
        pen = CounterMetricFamily("toolgym_penalties_applied", "Penalty occurrences in finished episodes, per kind.", labels=["kind"])
        for kind, n in d["penalties"]["applied"].items():
            pen.add_metric([kind], n)
        yield pen
        yield from self._sandbox(d["sandbox"])

    @staticmethod
    def _sessions(s: dict[str, Any]) -> Iterator[Metric]:
        yield GaugeMetricFamily("toolgym_sessions_open", "Env sessions open in the session store.", value=s["open"])
        yield GaugeMetricFamily("toolgym_sessions_max", "The server's --max-sessions.", value=s["max"])
        yield GaugeMetricFamily("toolgym_sessions_live", "Sessions with a live episode in this process.", value=s["live"])
        for key, help_ in (("created", "Sessions created by Reset."), ("closed", "Sessions closed by Close (or a dropped socket/stream)."),
                           ("expired", "Sessions closed by idle expiry (--session-ttl-s)."),
                           ("restored", "Sessions rebuilt from their stored log (a restart, another replica).")):
            yield CounterMetricFamily(f"toolgym_sessions_{key}", help_, value=s[key])

    @staticmethod
    def _episodes(r: dict[str, Any]) -> Iterator[Metric]:
        fin = CounterMetricFamily("toolgym_episodes_finished", "Episodes finished (terminated or truncated), per category.", labels=["category"])
        inv = CounterMetricFamily("toolgym_episodes_invalid", "Finished episodes whose scoring failed, per category.", labels=["category"])
        hist = HistogramMetricFamily("toolgym_episode_reward", "Terminal reward total of finished episodes, per category.", labels=["category"])
        mean = GaugeMetricFamily("toolgym_episode_reward_mean", "Mean terminal reward total of finished episodes, per category.",
                                 labels=["category"])
        for cat, dist in r["by_category"].items():
            fin.add_metric([cat], dist["n"])
            inv.add_metric([cat], dist["invalid"])
            buckets = _cumulative(dist["counts"], r["total_buckets"])
            # Totals can be negative, so there is no _sum (it would not be a counter: prometheus-client leaves it
            # out, and rate() would read a fall as a reset); _count still only grows. The mean is its own gauge.
            hist.add_metric([cat], buckets, sum_value=None)
            hist.samples.append(Sample("toolgym_episode_reward_count", {"category": cat}, buckets[-1][1], None))
            mean.add_metric([cat], dist["mean"] if dist["mean"] is not None else 0.0)
        comp = SummaryMetricFamily("toolgym_reward_component", "Reward components (each in [0, 1]) of finished episodes: "
                                   "sum and count per category and component.", labels=["category", "component"])
        for cc in r["by_category_component"].values():
            comp.add_metric([cc["category"], cc["component"]], count_value=cc["n"], sum_value=cc["sum"])
        yield from (fin, inv, hist, mean, comp)

    @staticmethod
    def _sandbox(sb: dict[str, Any]) -> Iterator[Metric]:
        for key, v in sorted(sb.items()):
            if isinstance(v, bool):
                v = int(v)
            if not isinstance(v, (int, float)):
                continue
            if key in _SANDBOX_GAUGES:
                yield GaugeMetricFamily(f"toolgym_sandbox_{key}", f"Sandbox pool: {key.replace('_', ' ')}.", value=v)
            else:
                yield CounterMetricFamily(f"toolgym_sandbox_{key}", f"Sandbox pool: {key.replace('_', ' ')}.", value=v)


def registry_for(board: Board) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(BoardCollector(board))  # type: ignore[arg-type]  # a duck-typed Collector (collect() only)
    return reg


def render(registry: CollectorRegistry) -> bytes:
    """The exposition text (blocking: a scrape reads the store)."""
    return generate_latest(registry)
