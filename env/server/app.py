"""The toolgym gRPC server: RewardService, EnvService, EvalService, health and reflection.

``start_server`` runs it in-process (tests, notebooks, the bundled trainer); ``serve`` runs it
in the foreground and drains in-flight requests on SIGTERM/SIGINT before exiting.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from toolgym.env.reward.config import RewardConfig
from toolgym.env.server.reward_service import RewardServicer
from toolgym.env.tasks.suite import Suite, load_suite
from toolgym.v1 import env_pb2, env_pb2_grpc, reward_pb2, reward_pb2_grpc

log = logging.getLogger("toolgym.server")


@dataclass
class ServerConfig:
    """How `toolgym serve` runs. Every field is also a CLI flag."""

    host: str = field(default="127.0.0.1", metadata={"help": "Address to bind. Loopback by default: expose it only with TLS/auth."})
    port: int = field(default=50051, metadata={"help": "Port to bind; 0 picks a free port (see RunningServer.port)."})
    suite: str = field(default="default", metadata={"help": "Task suite: 'default' (BFCL v4 + toolgym_python), 'bfcl', 'bfcl-single', 'bfcl-multi' or a JSONL file."})
    categories: tuple[str, ...] = field(default=(), metadata={"help": "Restrict the suite to these categories (empty = all)."})
    max_workers: int = field(default=32, metadata={"help": "gRPC handler threads."})
    max_output_chars: int = field(default=1 << 20, metadata={"help": "Largest model output accepted per Score/Step (RESOURCE_EXHAUSTED above)."})
    max_batch_items: int = field(default=10_000, metadata={"help": "Largest ScoreBatch accepted (RESOURCE_EXHAUSTED above)."})
    max_message_bytes: int = field(default=64 << 20, metadata={"help": "Largest gRPC message in either direction."})
    max_sessions: int = field(default=4096, metadata={"help": "Concurrent env sessions; Reset beyond it is RESOURCE_EXHAUSTED."})
    session_ttl_s: float = field(default=900.0, metadata={"help": "Idle sessions are closed after this many seconds (0 disables)."})
    max_steps: int = field(default=20, metadata={"help": "Default step limit per episode (truncated beyond)."})
    default_template: str = field(default="hermes", metadata={"help": "Template used when a Reset names none."})
    sandbox_workers: int = field(default=0, metadata={"help": "Sandbox worker processes (0 = one per CPU, at least 2)."})
    drain_grace_s: float = field(default=10.0, metadata={"help": "On SIGTERM, seconds to let in-flight requests finish."})
    reward: RewardConfig = field(default_factory=RewardConfig, metadata={"help": "Reward weights and penalties."})
    enable_env: bool = field(default=True, metadata={"help": "Serve EnvService (starts the sandbox pool on first use)."})


class RunningServer:
    """A started server. ``stop`` drains in-flight RPCs for ``grace`` seconds, then closes."""

    def __init__(self, server: grpc.Server, port: int, host: str, health_servicer: health.HealthServicer, closers: list[Any]):
        self._server = server
        self.port = port
        self.host = host
        self._health = health_servicer
        self._closers = closers
        self._stopped = threading.Event()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self, grace: float | None = 1.0) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._health.enter_graceful_shutdown()  # health says NOT_SERVING while we drain
        self._server.stop(grace).wait()
        for close in self._closers:
            try:
                close()
            except Exception:
                log.exception("error while closing %r", close)

    def wait(self) -> None:
        self._server.wait_for_termination()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server(config: ServerConfig | None = None, *, suite: Suite | None = None) -> RunningServer:
    """Build, bind and start the server; returns once it accepts connections."""
    cfg = config or ServerConfig()
    suite = suite or load_suite(cfg.suite, categories=list(cfg.categories) or None)
    opts = [
        ("grpc.max_receive_message_length", cfg.max_message_bytes),
        ("grpc.max_send_message_length", cfg.max_message_bytes),
        ("grpc.so_reuseport", 0),
    ]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=cfg.max_workers, thread_name_prefix="toolgym-rpc"), options=opts)
    closers: list[Any] = []

    reward = RewardServicer(suite, cfg.reward, max_output_chars=cfg.max_output_chars, max_batch_items=cfg.max_batch_items)
    reward_pb2_grpc.add_RewardServiceServicer_to_server(reward, server)
    names = [reward_pb2.DESCRIPTOR.services_by_name["RewardService"].full_name]

    if cfg.enable_env:
        from toolgym.env.server.env_service import EnvServicer

        env = EnvServicer(suite, cfg)
        env_pb2_grpc.add_EnvServiceServicer_to_server(env, server)
        names.append(env_pb2.DESCRIPTOR.services_by_name["EnvService"].full_name)
        closers.append(env.close)

    # EvalService is part of the distribution: a broken install fails loudly here.
    from toolgym.evals.service import add_to_server as add_eval

    names.extend(add_eval(server))

    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ["", *names]:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)

    port = server.add_insecure_port(f"{cfg.host}:{cfg.port}")
    if port == 0:
        raise OSError(f"could not bind {cfg.host}:{cfg.port} (in use?) — pick another --port, or 0 for any free port")
    server.start()
    log.info("toolgym serving %s on %s:%d (%d tasks)", ", ".join(names), cfg.host, port, len(suite))
    return RunningServer(server, port, cfg.host, health_servicer, closers)


def serve(config: ServerConfig) -> int:
    """Run in the foreground until SIGTERM/SIGINT; drain in-flight requests, then exit 0."""
    running = start_server(config)
    print(f"toolgym server listening on {running.address} (suite {config.suite!r}); Ctrl-C or SIGTERM to stop", flush=True)
    done = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %d: draining for up to %.1fs", signum, config.drain_grace_s)
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    done.wait()
    running.stop(config.drain_grace_s)
    print("toolgym server stopped", flush=True)
    return 0


def default_workers() -> int:
    return max(2, os.cpu_count() or 2)
