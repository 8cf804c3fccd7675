"""EnvService latency and throughput over loopback, and server memory at many open sessions.

For a stateful BFCL multi-turn call (``ls`` on GorillaFileSystem) and for the sandboxed
``python`` tool, with 1, 64 and 256 concurrent sessions: Reset and Step latency (p50/p99) and
steps/s. Then the server's RSS (and its sandbox workers') with 1,000 open sessions, against the
idle server measured in the same run. The server runs in its own process, as in production.

    python bench/bench_env.py [--steps 20] [--sessions 1,64,256] [--open 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time

import grpc

from toolgym.env.procinfo import descendants, process_stats
from toolgym.v1 import env_pb2, env_pb2_grpc

SCENARIOS = {
    "bfcl-stateful": ("multi_turn_base_0", '<tool_call>{"name": "ls", "arguments": {}}</tool_call>'),
    "python-tool": ("toolgym_python_0", '<tool_call>{"name": "python", "arguments": {"code": "print(sum(range(10)))"}}</tool_call>'),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int) -> int:
    return process_stats(pid)["rss_kib"]


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000


async def run_scenario(addr: str, task_id: str, action: str, n_sessions: int, steps: int) -> dict:
    async with grpc.aio.insecure_channel(addr) as ch:
        stub = env_pb2_grpc.EnvServiceStub(ch)
        reset_lat: list[float] = []
        step_lat: list[float] = []

        async def reset() -> str:
            t = time.perf_counter()
            # room for the warm-up step and every measured one (the server caps max_steps at --max-steps-limit)
            r = await stub.Reset(env_pb2.ResetRequest(task_id=task_id, template="hermes", max_steps=steps + 2), timeout=120)
            reset_lat.append(time.perf_counter() - t)
            return r.session_id

        sids = await asyncio.gather(*[reset() for _ in range(n_sessions)])
        # One warm-up step per session (first state digest, worker caches), not measured.
        await asyncio.gather(*[stub.Step(env_pb2.StepRequest(session_id=s, action=action), timeout=120) for s in sids])

        async def loop(sid: str) -> None:
            for _ in range(steps):
                t = time.perf_counter()
                r = await stub.Step(env_pb2.StepRequest(session_id=sid, action=action), timeout=120)
                step_lat.append(time.perf_counter() - t)
                assert not r.terminated, r.observation

        t0 = time.perf_counter()
        await asyncio.gather(*[loop(s) for s in sids])
        wall = time.perf_counter() - t0
        await asyncio.gather(*[stub.Close(env_pb2.CloseRequest(session_id=s), timeout=60) for s in sids])
    return {"sessions": n_sessions, "reset_p50_ms": pct(reset_lat, .5), "reset_p99_ms": pct(reset_lat, .99),
            "step_p50_ms": pct(step_lat, .5), "step_p99_ms": pct(step_lat, .99), "steps_per_s": len(step_lat) / wall}


async def open_many(addr: str, n: int) -> list[str]:
    async with grpc.aio.insecure_channel(addr) as ch:
        stub = env_pb2_grpc.EnvServiceStub(ch)
        sem = asyncio.Semaphore(64)

        async def one(i: int) -> str:
            async with sem:
                r = await stub.Reset(env_pb2.ResetRequest(task_id=f"multi_turn_base_{i % 200}", template="hermes"), timeout=300)
                await stub.Step(env_pb2.StepRequest(session_id=r.session_id, action=SCENARIOS["bfcl-stateful"][1]), timeout=300)
                return r.session_id

        return await asyncio.gather(*[one(i) for i in range(n)])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20, help="measured steps per session")
    ap.add_argument("--sessions", default="1,64,256")
    ap.add_argument("--open", type=int, default=1000, help="sessions held open for the RSS measurement")
    args = ap.parse_args()
    port = free_port()
    addr = f"127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "toolgym.env.cli.main", "--log-level", "WARNING", "serve", "--port", str(port),
                             "--max-sessions", str(max(args.open, 512) + 16), "--max-workers", "64"], stdout=subprocess.DEVNULL)
    try:
        with grpc.insecure_channel(addr) as ch:
            grpc.channel_ready_future(ch).result(timeout=120)
        results = []
        for name, (task_id, action) in SCENARIOS.items():
            for n in [int(x) for x in args.sessions.split(",")]:
                r = asyncio.run(run_scenario(addr, task_id, action, n, args.steps))
                r["scenario"] = name
                results.append(r)
                print(f"{name:14s} sessions={n:4d}  reset p50 {r['reset_p50_ms']:7.2f} ms p99 {r['reset_p99_ms']:7.2f} ms  "
                      f"step p50 {r['step_p50_ms']:7.2f} ms p99 {r['step_p99_ms']:7.2f} ms  {r['steps_per_s']:8.0f} steps/s", flush=True)
        idle_server = rss_kib(proc.pid)
        idle_workers = sum(rss_kib(p) for p in descendants(proc.pid))
        asyncio.run(open_many(addr, args.open))
        held_server = rss_kib(proc.pid)
        held_workers = sum(rss_kib(p) for p in descendants(proc.pid))
        print(f"RSS with {args.open} open sessions: server {held_server / 1024:.0f} MiB (idle {idle_server / 1024:.0f} MiB, "
              f"ratio {held_server / max(idle_server, 1):.2f}); sandbox workers {held_workers / 1024:.0f} MiB "
              f"(idle {idle_workers / 1024:.0f} MiB); total {(held_server + held_workers) / 1024 / 1024:.2f} GiB (target < 2 GiB)")
        warm = {r["scenario"]: r for r in results if r["sessions"] == 1}
        print(json.dumps({"targets": {"bfcl_step_p50_ms<=2": warm["bfcl-stateful"]["step_p50_ms"],
                                      "python_step_p50_ms<=10": warm["python-tool"]["step_p50_ms"],
                                      "steps_per_s@64>=1000": [r["steps_per_s"] for r in results if r["sessions"] == 64]}}))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
