"""Step latency and throughput of toolgym's transports, against OpenEnv's own server, in one run.

Four servers, each in its own process, each driven the same way (S sessions each stepping
sequentially, all sessions at once), at 1 and 64 sessions:

- **ws-gateway**: toolgym's OpenEnv-compatible WebSocket ``/ws`` (``toolgym serve --http-port``);
- **grpc-stream**: toolgym's multiplexed ``EnvService.Sessions`` stream (one stream, all sessions);
- **grpc-unary**: toolgym's unary ``EnvService.Step``;
- **openenv-echo**: openenv-core 0.3.0's own ``create_app`` over a trivial echo environment,
  installed from PyPI in its own venv (``make openenv-venv``) and started by this bench. It does no
  work: it is the floor of OpenEnv's protocol on this machine, not a like-for-like workload.

toolgym's step is real: an ``ls`` on BFCL's GorillaFileSystem backend in the sandbox (a stateful
multi-turn task), parsed and recorded like any step. Printed: p50/p99 step latency and steps/s per
transport and session count, then ratios (gateway vs gRPC stream: the target is >= 0.8x at 64
sessions; toolgym's real tool step vs OpenEnv's echo: the moonshot is >= 1.0x).

    python bench/bench_gateway.py [--steps 30] [--sessions 1,64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import websockets

from toolgym.v1 import env_pb2, env_pb2_grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_env import free_port, pct  # noqa: E402

TASK = "multi_turn_base_0"
ACTION = '<tool_call>{"name": "ls", "arguments": {}}</tool_call>'
OPENENV_PY = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "toolgym" / "venvs" / "openenv-core-0.3.0" / "bin" / "python"

ECHO_SERVER = """
import sys, uvicorn
from openenv.core.env_server import Environment, create_app
from openenv.core.env_server.types import Action, Observation, State

class EchoAction(Action):
    action: str = ""

class EchoObservation(Observation):
    text: str = ""

class EchoEnv(Environment):
    SUPPORTS_CONCURRENT_SESSIONS = True
    def __init__(self):
        super().__init__()
        self._state = State(episode_id="echo", step_count=0)
    def reset(self, seed=None, episode_id=None, **kw):
        self._state = State(episode_id=episode_id or "echo", step_count=0)
        return EchoObservation(text="ready")
    def step(self, action, timeout_s=None, **kw):
        self._state.step_count += 1
        return EchoObservation(text=action.action, reward=0.0)
    @property
    def state(self):
        return self._state

app = create_app(EchoEnv, EchoAction, EchoObservation, max_concurrent_envs=512)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", ws_max_size=16 * 1024 * 1024)
"""


def _wait_http(url: str, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up within {timeout:.0f} s")


def _stats(lat: list[float], n_steps: int, wall: float) -> dict[str, float]:
    return {"p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99), "steps_per_s": n_steps / wall}


async def ws_run(url: str, sessions: int, steps: int, reset: dict, step: dict) -> dict[str, float]:
    lat: list[float] = []
    socks = [await websockets.connect(url, max_size=None, ping_interval=None) for _ in range(sessions)]

    async def rpc(ws, kind: str, data: dict) -> dict:
        await ws.send(json.dumps({"type": kind, "data": data}))
        msg = json.loads(await ws.recv())
        if msg["type"] == "error":
            raise RuntimeError(f"{kind}: {msg['data']}")
        return msg

    await asyncio.gather(*[rpc(ws, "reset", reset) for ws in socks])

    async def play(ws) -> None:
        for _ in range(steps):
            t = time.perf_counter()
            await rpc(ws, "step", step)
            lat.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    await asyncio.gather(*[play(ws) for ws in socks])
    wall = time.perf_counter() - t0
    await asyncio.gather(*[ws.close() for ws in socks])
    return _stats(lat, sessions * steps, wall)


async def grpc_unary(addr: str, sessions: int, steps: int) -> dict[str, float]:
    lat: list[float] = []
    async with grpc.aio.insecure_channel(addr) as ch:
        stub = env_pb2_grpc.EnvServiceStub(ch)
        sids = [r.session_id for r in await asyncio.gather(*[
            stub.Reset(env_pb2.ResetRequest(task_id=TASK, template="hermes", max_steps=steps + 2)) for _ in range(sessions)])]

        async def play(sid: str) -> None:
            for i in range(steps):
                t = time.perf_counter()
                await stub.Step(env_pb2.StepRequest(session_id=sid, action=ACTION, step_index=i))
                lat.append(time.perf_counter() - t)

        t0 = time.perf_counter()
        await asyncio.gather(*[play(s) for s in sids])
        wall = time.perf_counter() - t0
        await asyncio.gather(*[stub.Close(env_pb2.CloseRequest(session_id=s)) for s in sids])
    return _stats(lat, sessions * steps, wall)


async def grpc_stream(addr: str, sessions: int, steps: int) -> dict[str, float]:
    lat: list[float] = []
    async with grpc.aio.insecure_channel(addr) as ch:
        call = env_pb2_grpc.EnvServiceStub(ch).Sessions()
        waiting: dict[str, asyncio.Future] = {}

        async def reader() -> None:
            async for resp in call:
                waiting.pop(resp.tag).set_result(resp)

        task = asyncio.create_task(reader())
        n = [0]
        write_lock = asyncio.Lock()  # grpc.aio takes one write at a time on a stream

        async def send(**op) -> env_pb2.SessionResponse:
            n[0] += 1
            tag = str(n[0])
            fut = asyncio.get_running_loop().create_future()
            waiting[tag] = fut
            async with write_lock:
                await call.write(env_pb2.SessionRequest(tag=tag, **op))
            resp = await fut
            if resp.HasField("error"):
                raise RuntimeError(resp.error.message)
            return resp

        resets = await asyncio.gather(*[send(reset=env_pb2.ResetRequest(task_id=TASK, template="hermes", max_steps=steps + 2))
                                        for _ in range(sessions)])

        async def play(sid: str) -> None:
            for i in range(steps):
                t = time.perf_counter()
                await send(step=env_pb2.StepRequest(session_id=sid, action=ACTION, step_index=i))
                lat.append(time.perf_counter() - t)

        t0 = time.perf_counter()
        await asyncio.gather(*[play(r.reset.session_id) for r in resets])
        wall = time.perf_counter() - t0
        await call.done_writing()
        await task
    return _stats(lat, sessions * steps, wall)


def bare_episode(steps: int) -> dict[str, float]:
    """The same step on the bare Episode in this process (no transport): the floor the others add to."""
    import gymnasium as gym

    import toolgym.env  # noqa: F401  (registers toolgym/ToolUse-v0)

    env = gym.make("toolgym/ToolUse-v0", template="hermes", max_steps=steps + 2)
    try:
        env.reset(options={"task_id": TASK})
        env.step(ACTION)  # warm the worker
        env.reset(options={"task_id": TASK})
        lat = []
        t0 = time.perf_counter()
        for _ in range(steps):
            t = time.perf_counter()
            env.step(ACTION)
            lat.append(time.perf_counter() - t)
        return _stats(lat, steps, time.perf_counter() - t0)
    finally:
        env.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=30, help="steps per session")
    ap.add_argument("--sessions", default="1,64", help="comma-separated session counts")
    args = ap.parse_args()
    counts = [int(x) for x in args.sessions.split(",")]

    gport, hport, eport = free_port(), free_port(), free_port()
    procs = [subprocess.Popen([sys.executable, "-m", "toolgym.env.cli.main", "serve", "--port", str(gport), "--http-port", str(hport),
                               "--max-sessions", "1024"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    echo = OPENENV_PY.exists()
    if echo:
        procs.append(subprocess.Popen([str(OPENENV_PY), "-c", ECHO_SERVER, str(eport)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    else:
        print(f"openenv-core venv missing at {OPENENV_PY} (`make openenv-venv`): the OpenEnv echo baseline is skipped")
    try:
        _wait_http(f"http://127.0.0.1:{hport}")
        if echo:
            _wait_http(f"http://127.0.0.1:{eport}")
        addr = f"127.0.0.1:{gport}"
        reset = {"task_id": TASK, "template": "hermes", "max_steps": args.steps + 2}
        runs = {
            "ws-gateway": lambda n: ws_run(f"ws://127.0.0.1:{hport}/ws", n, args.steps, reset, {"action": ACTION}),
            "grpc-stream": lambda n: grpc_stream(addr, n, args.steps),
            "grpc-unary": lambda n: grpc_unary(addr, n, args.steps),
        }
        if echo:
            runs["openenv-echo"] = lambda n: ws_run(f"ws://127.0.0.1:{eport}/ws", n, args.steps, {}, {"action": "ls"})
        asyncio.run(runs["grpc-unary"](4))  # warm the sandbox workers and the suite
        results: dict[str, dict[int, dict[str, float]]] = {k: {} for k in runs}
        for n in counts:
            for name, run in runs.items():
                r = results[name][n] = asyncio.run(run(n))
                print(f"{name:>12} {n:>3} sessions: p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  {r['steps_per_s']:8.1f} steps/s",
                      flush=True)
        bare = bare_episode(args.steps)
        print(f"bare Episode (in-process, 1 session): p50 {bare['p50_ms']:.2f} ms; per-step overhead at 1 session over it: "
              + ", ".join(f"{k} +{results[k][counts[0]]['p50_ms'] - bare['p50_ms']:.2f} ms" for k in ("ws-gateway", "grpc-stream", "grpc-unary")))
        for n in counts:
            gw, st, un = (results[k][n]["steps_per_s"] for k in ("ws-gateway", "grpc-stream", "grpc-unary"))
            line = f"{n:>3} sessions: gateway / gRPC stream x{gw / st:.2f} (target >= 0.8 at 64), gateway / gRPC unary x{gw / un:.2f}"
            if echo:
                line += f", toolgym real step (best transport) / OpenEnv echo x{max(gw, st, un) / results['openenv-echo'][n]['steps_per_s']:.2f}"
            print(line)
        print(json.dumps({"bare-episode": bare, **{k: {str(n): v for n, v in r.items()} for k, r in results.items()}}))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
