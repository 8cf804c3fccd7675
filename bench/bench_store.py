"""What a durable session store costs: Step p50 and steps/s at 64 sessions for the memory,
sqlite and redis stores in one run, and restore time as a function of action-log length.

Each store gets its own `toolgym serve` process (as in production), all started up front;
the stores are then measured in interleaved rounds (memory, sqlite, redis, memory, ...) so
machine contention hits them alike, and each figure is the median over rounds. Every step
carries step_index (what a retrying client sends). Goal: sqlite <= 1.15x memory's step p50.

Restore: a session with L applied steps on a sqlite store, its server stopped and a fresh one
started on the file; the first Step rebuilds it by replaying the log (and checking every
reply); its latency minus a warm step's is the restore time.

    python bench/bench_store.py [--sessions 64] [--steps 10] [--rounds 3] [--log-lengths 0,8,32,128]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import grpc

from toolgym.v1 import env_pb2, env_pb2_grpc

TASK, ACTION = "multi_turn_base_0", '<tool_call>{"name": "ls", "arguments": {}}</tool_call>'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a process and its sandbox workers, from /proc: the cost
    per step that machine contention does not distort the way wall time is."""
    from toolgym.env.procinfo import descendants

    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in [pid, *descendants(pid)]:
        try:
            with open(f"/proc/{p}/stat") as fh:
                f = fh.read().rsplit(")", 1)[1].split()
            total += (int(f[11]) + int(f[12])) / tick
        except OSError:
            pass
    return total


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000


def serve(store: str, port: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "toolgym.env.cli.main", "--log-level", "WARNING", "serve", "--port", str(port),
                             "--suite", "bfcl-multi", "--session-store", store, "--max-workers", "64", "--max-sessions", "1024"],
                            stdout=subprocess.DEVNULL)


def ready(port: int) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        grpc.channel_ready_future(ch).result(timeout=120)


async def measure(port: int, pid: int, n: int, steps: int) -> tuple[float, float, float]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = env_pb2_grpc.EnvServiceStub(ch)
        sids = [r.session_id for r in await asyncio.gather(*[
            stub.Reset(env_pb2.ResetRequest(task_id=TASK, template="hermes", max_steps=steps + 2), timeout=120) for _ in range(n)])]
        await asyncio.gather(*[stub.Step(env_pb2.StepRequest(session_id=s, action=ACTION, step_index=0), timeout=120) for s in sids])
        lat: list[float] = []

        async def loop(sid: str) -> None:
            for i in range(1, steps + 1):
                t = time.perf_counter()
                await stub.Step(env_pb2.StepRequest(session_id=sid, action=ACTION, step_index=i), timeout=120)
                lat.append(time.perf_counter() - t)

        t0, c0 = time.perf_counter(), cpu_s(pid)
        await asyncio.gather(*[loop(s) for s in sids])
        wall, cpu = time.perf_counter() - t0, cpu_s(pid) - c0
        await asyncio.gather(*[stub.Close(env_pb2.CloseRequest(session_id=s), timeout=60) for s in sids])
    return pct(lat, 0.5), len(lat) / wall, cpu * 1000 / len(lat)


def restore_times(folder: str, lengths: list[int]) -> list[tuple[int, float, float]]:
    url, port = f"sqlite:///{folder}/restore.db", free_port()
    stub_of = lambda ch: env_pb2_grpc.EnvServiceStub(ch)  # noqa: E731
    proc = serve(url, port)
    ready(port)
    sessions = {}
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = stub_of(ch)
        for n in lengths:
            sid = stub.Reset(env_pb2.ResetRequest(task_id=TASK, template="hermes", max_steps=n + 8), timeout=60).session_id
            for i in range(n):
                stub.Step(env_pb2.StepRequest(session_id=sid, action=ACTION, step_index=i), timeout=60)
            sessions[n] = sid
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    proc = serve(url, port)
    out = []
    try:
        ready(port)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = stub_of(ch)
            # Warm the fresh server's sandbox pool first: its first session pays the workers' start.
            sid = stub.Reset(env_pb2.ResetRequest(task_id=TASK, template="hermes", max_steps=4), timeout=60).session_id
            stub.Step(env_pb2.StepRequest(session_id=sid, action=ACTION, step_index=0), timeout=60)
            for n in lengths:
                t = time.perf_counter()
                stub.Step(env_pb2.StepRequest(session_id=sessions[n], action=ACTION, step_index=n), timeout=120)
                first = time.perf_counter() - t
                warm = []
                for i in range(n + 1, n + 4):
                    t = time.perf_counter()
                    stub.Step(env_pb2.StepRequest(session_id=sessions[n], action=ACTION, step_index=i), timeout=60)
                    warm.append(time.perf_counter() - t)
                w = statistics.median(warm)
                out.append((n, (first - w) * 1000, w * 1000))
    finally:
        proc.terminate()
        proc.wait(60)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10, help="measured steps per session per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--log-lengths", default="0,8,32,128")
    args = ap.parse_args()
    folder = tempfile.mkdtemp(prefix="toolgym-bench-store-")
    procs: dict[str, subprocess.Popen] = {}
    redis_proc = None
    try:
        stores = {"memory": "memory", "sqlite": f"sqlite:///{folder}/sessions.db"}
        if shutil.which("redis-server"):
            rport = free_port()
            redis_proc = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--dir", folder, "--save", "",
                                           "--appendonly", "yes", "--appendfsync", "everysec"], stdout=subprocess.DEVNULL)
            from toolgym.env.sessions.redis_store import wait_for

            stores["redis"] = f"redis://127.0.0.1:{rport}/0"
            wait_for(stores["redis"])
        else:
            print("redis-server not installed: redis row skipped (make test-deps installs it)")
        ports = {name: free_port() for name in stores}
        procs = {name: serve(url, ports[name]) for name, url in stores.items()}
        for name in stores:
            ready(ports[name])
        res: dict[str, list[tuple[float, float, float]]] = {name: [] for name in stores}
        for _ in range(args.rounds):
            for name in stores:
                res[name].append(asyncio.run(measure(ports[name], procs[name].pid, args.sessions, args.steps)))

        def med(name: str, k: int) -> float:
            return statistics.median(r[k] for r in res[name])

        print(f"Step at {args.sessions} sessions, {args.rounds} interleaved rounds x {args.steps} steps/session (median of rounds):")
        for name in stores:
            print(f"  {name:7s} step p50 {med(name, 0):7.2f} ms ({med(name, 0) / med('memory', 0):5.2f}x memory)   "
                  f"{med(name, 1):6.0f} steps/s ({med(name, 1) / med('memory', 1):5.2f}x)   "
                  f"server CPU {med(name, 2):5.2f} ms/step ({med(name, 2) / med('memory', 2):5.2f}x)")
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            p.wait(60)
        procs = {}
        lengths = [int(x) for x in args.log_lengths.split(",")]
        print("Restore on a fresh sqlite server (replay + check of the whole log, then the step):")
        for n, restore_ms, warm_ms in restore_times(folder, lengths):
            per = f"{restore_ms / n:6.3f} ms/step" if n else ""
            print(f"  log length {n:4d}: restore {restore_ms:8.2f} ms (warm step {warm_ms:5.2f} ms) {per}")
    finally:
        for p in procs.values():
            p.kill()
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
