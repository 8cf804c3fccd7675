"""Load and soak: N concurrent sessions of mixed tasks over loopback for a bounded time.

The server runs as its own process (``toolgym serve --stats-file``). N asyncio workers each keep
one session busy: Reset a task drawn from a fixed mix (single-step BFCL, stateful multi-turn
BFCL in the sandbox, python-tool tasks), step it with ``step_index`` until it ends, Close,
repeat. Meanwhile a chaos loop starts short-lived client processes that open a Sessions stream,
reset sessions and are then SIGKILLed mid-stream, or SIGSTOPped (a half-open peer: the server's
keepalive must drop it) and killed later; their sessions are orphans the idle TTL must reap.
With ``--faults`` it also SIGKILLs random sandbox workers and sends tool calls that stall past
their limit.

Reported: steps/s, Step and Reset latency p50/p99/p999, errors by status, "lost" sessions (a
live session answered NOT_FOUND), server RSS and open descriptors over time (from /proc of the
server process), sandbox workers alive, and — after the load stops and the TTL has passed — the
server's own count of open sessions (``--stats-file``), which must be 0: nothing leaked.

    python bench/bench_soak.py                                   # 2 minutes, 64 sessions
    python bench/bench_soak.py --minutes 10 --sessions 256 --json soak.json
    python bench/bench_soak.py --minutes 3 --sessions 128 --faults
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc

from toolgym.env.procinfo import process_stats
from toolgym.v1 import env_pb2, env_pb2_grpc

HERMES_CALL = '<tool_call>{{"name": "{name}", "arguments": {args}}}</tool_call>'
PY_OK = HERMES_CALL.format(name="python", args=json.dumps({"code": "print(sum(i * i for i in range(1, 101)))"}))
PY_STALL = HERMES_CALL.format(name="python", args=json.dumps({"code": "while True: pass"}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]




def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(q * len(xs)))] * 1000, 2) if xs else 0.0


def task_mix() -> list[tuple[str, str]]:
    """(task id, kind) of the fixed mix: a bounded set, so caches fill during warm-up."""
    from toolgym.env.tasks.suite import load_suite

    suite = load_suite("default")
    single = [t.id for t in suite.filter(categories=["simple_python", "multiple", "parallel", "irrelevance", "live_simple"])][:60:2]
    multi = [t.id for t in suite.filter(kinds=["multi_turn"]) if {"ls", "pwd"} <= set(t.tool_names)][:24]
    python = [t.id for t in suite.filter(categories=["toolgym_python"])]
    return [(i, "single") for i in single] * 2 + [(i, "multi") for i in multi] * 2 + [(i, "python") for i in python]


class Load:
    def __init__(self, addr: str, mix: list[tuple[str, str]], faults: bool, max_steps: int):
        self.addr, self.mix, self.faults, self.max_steps = addr, mix, faults, max_steps
        self.step_lat: list[float] = []
        self.reset_lat: list[float] = []
        self.errors: collections.Counter[str] = collections.Counter()
        self.lost = 0
        self.episodes = 0
        self.timeouts_seen = 0
        self.stop = asyncio.Event()

    def action(self, kind: str, step: int, rng: random.Random) -> str:
        if kind == "single":
            return rng.choice(['<tool_call>{"name": "calculate_triangle_area", "arguments": {"base": 10, "height": 5}}</tool_call>',
                               "I cannot help with that.", "<give_up>no</give_up>"])
        if kind == "python":
            if step == 0:
                return PY_STALL if self.faults and rng.random() < 0.05 else PY_OK
            return "Final Answer: 338350"
        # multi-turn: a couple of cheap stateful calls per turn, then end the turn
        return [HERMES_CALL.format(name="ls", args="{}"), HERMES_CALL.format(name="pwd", args="{}"), "Done with this step."][step % 3]

    async def worker(self, wid: int, stub: env_pb2_grpc.EnvServiceStub) -> None:
        rng = random.Random(wid)
        while not self.stop.is_set():
            task_id, kind = rng.choice(self.mix)
            t = time.perf_counter()
            try:
                r = await stub.Reset(env_pb2.ResetRequest(task_id=task_id, template="hermes", max_steps=self.max_steps), timeout=120)
            except grpc.aio.AioRpcError as e:
                self.errors[f"Reset {e.code().name}"] += 1
                await asyncio.sleep(0.5)
                continue
            self.reset_lat.append(time.perf_counter() - t)
            step = 0
            while not self.stop.is_set():
                t = time.perf_counter()
                try:
                    s = await stub.Step(env_pb2.StepRequest(session_id=r.session_id, action=self.action(kind, step, rng), step_index=step), timeout=120)
                except grpc.aio.AioRpcError as e:
                    self.errors[f"Step {e.code().name}"] += 1
                    self.lost += e.code() == grpc.StatusCode.NOT_FOUND
                    break
                self.step_lat.append(time.perf_counter() - t)
                self.timeouts_seen += '"timeout"' in s.info_json
                step += 1
                if s.terminated or s.truncated:
                    self.episodes += 1
                    break
            try:
                await stub.Close(env_pb2.CloseRequest(session_id=r.session_id), timeout=60)
            except grpc.aio.AioRpcError as e:
                self.errors[f"Close {e.code().name}"] += 1
                self.lost += e.code() == grpc.StatusCode.NOT_FOUND

    async def run(self, sessions: int, seconds: float) -> None:
        async with grpc.aio.insecure_channel(self.addr) as ch:
            stub = env_pb2_grpc.EnvServiceStub(ch)
            tasks = [asyncio.create_task(self.worker(i, stub)) for i in range(sessions)]
            await asyncio.sleep(seconds)
            self.stop.set()
            await asyncio.gather(*tasks)


def stream_client(addr: str) -> None:
    """Hidden mode: a client that opens a Sessions stream and keeps it busy until it is killed."""
    ch = grpc.insecure_channel(addr)
    stub = env_pb2_grpc.EnvServiceStub(ch)

    def requests():
        for i in range(4):
            yield env_pb2.SessionRequest(tag=f"r{i}", reset=env_pb2.ResetRequest(task_id=f"multi_turn_base_{i}", template="hermes", max_steps=1000))
        while True:
            time.sleep(0.05)
            yield env_pb2.SessionRequest(tag="x", close=env_pb2.CloseRequest(session_id="none"))

    for _ in stub.Sessions(requests()):
        pass


def chaos(addr: str, server_pid: int, stats_file: Path, faults: bool, stop: threading.Event, counts: collections.Counter) -> None:
    rng = random.Random(7)
    while not stop.wait(rng.uniform(3, 8)):
        p = subprocess.Popen([sys.executable, __file__, "--stream-client", addr], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(1.5, 4))  # it has reset sessions and is mid-stream
        if rng.random() < 0.5:
            p.send_signal(signal.SIGSTOP)  # frozen: its TCP connection stays up, it just never answers pings
            counts["clients_stopped_half_open"] += 1
            threading.Timer(30, lambda p=p: (p.kill(), p.wait())).start()
        else:
            p.kill()
            p.wait()
            counts["clients_killed_mid_stream"] += 1
        if faults:
            try:
                pids = json.loads(stats_file.read_text())["sandbox"].get("worker_pids") or []
            except (OSError, ValueError, KeyError):
                pids = []
            if pids:
                try:
                    os.kill(rng.choice(pids), signal.SIGKILL)
                    counts["sandbox_workers_killed"] += 1
                except ProcessLookupError:
                    pass


def sampler(pid: int, stats_file: Path, stop: threading.Event, series: list[dict], t0: float) -> None:
    while not stop.wait(5):
        s = {"t": round(time.monotonic() - t0, 1), **process_stats(pid)}
        try:
            st = json.loads(stats_file.read_text())
            s.update(sessions_open=st.get("sessions_open"), workers_alive=st["sandbox"].get("workers_alive"),
                     inflight=st["rpc"].get("inflight"), streams=st["rpc"].get("streams"), threads=st.get("threads"))
        except (OSError, ValueError, KeyError):
            pass
        series.append(s)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=2.0, help="how long the load runs")
    ap.add_argument("--sessions", type=int, default=64, help="concurrent sessions (one asyncio worker each)")
    ap.add_argument("--max-steps", type=int, default=8, help="steps per episode before truncation")
    ap.add_argument("--ttl", type=float, default=30.0, help="server idle TTL: orphaned sessions must be gone this long after load stops")
    ap.add_argument("--faults", action="store_true", help="also kill random sandbox workers and stall tool calls")
    ap.add_argument("--json", default="", help="write the full report (with the RSS/fd series) here")
    ap.add_argument("--stream-client", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stream_client:
        stream_client(args.stream_client)
        return 0

    port = free_port()
    addr = f"127.0.0.1:{port}"
    stats_file = Path(tempfile.mkdtemp(prefix="toolgym-soak-")) / "stats.json"
    cmd = [sys.executable, "-m", "toolgym.env.cli.main", "--log-level", "WARNING", "serve", "--port", str(port), "--stats-file", str(stats_file),
           "--stats-interval-s", "2", "--session-ttl-s", str(args.ttl), "--max-sessions", str(args.sessions * 4 + 256),
           "--keepalive-s", "5", "--keepalive-timeout-s", "5", "--tool-wall-s", "2", "--max-workers", "64"]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    mix = task_mix()
    try:
        with grpc.insecure_channel(addr) as ch:
            grpc.channel_ready_future(ch).result(timeout=120)
        t0 = time.monotonic()
        stop = threading.Event()
        series: list[dict] = []
        counts: collections.Counter[str] = collections.Counter()
        threads = [threading.Thread(target=sampler, args=(server.pid, stats_file, stop, series, t0), daemon=True),
                   threading.Thread(target=chaos, args=(addr, server.pid, stats_file, args.faults, stop, counts), daemon=True)]
        for th in threads:
            th.start()
        load = Load(addr, mix, args.faults, args.max_steps)
        asyncio.run(load.run(args.sessions, args.minutes * 60))
        wall = time.monotonic() - t0
        stop.set()
        load_end = process_stats(server.pid)
        # Every live session was closed by its worker; the orphans of killed clients must expire.
        time.sleep(args.ttl + 12)
        final = json.loads(stats_file.read_text())
        end = process_stats(server.pid)
        report = summarize(args, load, series, counts, wall, load_end, end, final)
        print(json.dumps({k: v for k, v in report.items() if k != "series"}, indent=1))
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1))
        return 0 if report["pass"] else 1
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()


def summarize(args, load: Load, series: list[dict], counts, wall: float, load_end: dict, end: dict, final: dict) -> dict:
    warm = [s for s in series if s["t"] >= min(60.0, wall / 3)]  # skip warm-up (caches, first workers)
    first = [s["rss_kib"] for s in warm[: max(1, len(warm) // 5)]]
    last = [s["rss_kib"] for s in warm[-max(1, len(warm) // 5):]]
    rss_growth = (statistics.median(last) - statistics.median(first)) / 1024 if warm else 0.0
    fds_first = statistics.median([s["open_fds"] for s in warm[: max(1, len(warm) // 5)]]) if warm else 0
    leaked = final.get("sessions_open", -1)
    report = {
        "minutes": args.minutes, "sessions": args.sessions, "faults": args.faults,
        "steps": len(load.step_lat), "episodes": load.episodes, "steps_per_s": round(len(load.step_lat) / wall, 1),
        "step_ms": {"p50": pct(load.step_lat, .5), "p99": pct(load.step_lat, .99), "p999": pct(load.step_lat, .999)},
        "reset_ms": {"p50": pct(load.reset_lat, .5), "p99": pct(load.reset_lat, .99), "p999": pct(load.reset_lat, .999)},
        "errors": dict(load.errors), "lost_sessions": load.lost, "timeout_penalties_seen": load.timeouts_seen, **dict(counts),
        "rss_mib": {"first_warm": round(statistics.median(first) / 1024, 1) if warm else None,
                    "last": round(statistics.median(last) / 1024, 1) if warm else None,
                    "growth": round(rss_growth, 1), "max": round(max(s["rss_kib"] for s in series) / 1024, 1) if series else None,
                    "after_ttl": round(end["rss_kib"] / 1024, 1)},
        "open_fds": {"first_warm": fds_first, "load_end": load_end["open_fds"], "after_ttl": end["open_fds"]},
        "workers_alive": {"min": min((s.get("workers_alive") or 0) for s in series) if series else None, "end": final["sandbox"].get("workers_alive")},
        "sandbox": {k: final["sandbox"].get(k) for k in ("restarts", "rebuilds", "worker_deaths", "timeouts", "replay_mismatches", "sessions")},
        "sessions_left_open_after_ttl": leaked, "sessions_created": final.get("sessions_created"),
        "sessions_expired": final.get("sessions_expired"), "series": series,
    }
    # Flat: growth within noise (max(32 MiB, 10%)); no lost or leaked sessions; descriptors back to their warm level.
    report["pass"] = bool(leaked == 0 and final["sandbox"].get("sessions") == 0 and load.lost == 0
                          and rss_growth <= max(32.0, 0.10 * (report["rss_mib"]["first_warm"] or 0))
                          and end["open_fds"] <= fds_first + 8)
    return report


if __name__ == "__main__":
    sys.exit(main())
