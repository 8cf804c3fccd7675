"""Helpers for the session-store tests: a real redis-server on loopback, ground-truth play,
and a `toolgym serve` subprocess (for faults that need a real process to kill)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from gym_helpers import gt_turn_action

DONE = "Done with this request."


def free_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gt_actions(task) -> list[str]:
    """A whole multi-turn ground-truth episode: each turn's calls, then the end of the turn."""
    out: list[str] = []
    for calls in task.ground_truth:
        a = gt_turn_action(calls, task.tools)
        if a is not None:
            out.append(a)
        out.append(DONE)
    return out


@dataclass
class RedisServer:
    port: int
    folder: Path
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        # appendonly: a stopped-and-restarted Redis keeps the sessions (what replicas rely on).
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
                                      "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--protected-mode", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        from toolgym.env.sessions.redis_store import wait_for

        wait_for(self.url)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)  # shutdown: flushes the append-only file
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def redis_server(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (make test-deps installs Debian's)")
    r = RedisServer(free_port(), tmp_path)
    r.start()
    yield r
    r.stop()


def serve_cmd(port: int, store: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "toolgym.env.cli.main", "serve", "--port", str(port), "--suite", "bfcl-multi",
            "--session-store", store, "--sandbox-workers", "2", *extra]


def start_serve(port: int, store: str, *extra: str, log: Path) -> subprocess.Popen:
    """`toolgym serve` in a subprocess, returned once its health check answers."""
    fh = open(log, "ab")
    proc = subprocess.Popen(serve_cmd(port, store, *extra), stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 120
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"toolgym serve exited {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == health_pb2.HealthCheckResponse.SERVING:
                    return proc
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"toolgym serve did not become healthy: {log.read_text()[-2000:]}")
            time.sleep(0.1)


def reference_rewards(suite, tasks) -> dict[str, list[float]]:
    """Per-step rewards of uninterrupted ground-truth episodes on a memory-store server."""
    from toolgym.env.client import ToolgymClient
    from toolgym.env.server.app import ServerConfig, start_server

    with start_server(ServerConfig(port=0, sandbox_workers=2, max_steps=64), suite=suite) as srv, \
            ToolgymClient(srv.address, timeout=60) as c:
        out = {}
        for t in tasks:
            sid = c.reset(t.id, template="hermes", max_steps=64).session_id
            out[t.id] = [c.step(sid, a, step_index=i).reward for i, a in enumerate(gt_actions(t))]
        return out
