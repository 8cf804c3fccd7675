"""The toolgym gRPC server: RewardService, EnvService, EvalService, health and reflection.

``start_server`` runs it in-process (tests, notebooks, the bundled trainer); ``serve`` runs it
in the foreground and drains in-flight requests on SIGTERM/SIGINT before exiting.

Every RPC passes :class:`~toolgym.env.server.guard.Guard` first (authentication, actionable
decode errors, per-client limits). The server binds loopback by default and refuses a
non-loopback address without TLS and a token unless told ``--allow-insecure-remote``.

Scale-out: run several replicas on one shared ``--session-store redis://...``; any replica then
serves any session (toolgym.env.sessions restores a session it has no live state for by replaying
its stored log), so any balancer works. With ``--replica-id`` session ids carry the replica
(``"<replica>.<hex>"``) and Reset's info names its ``--advertise-address``, so
:class:`~toolgym.env.client.ToolgymClient` can send a session's steps back to it and save the other
replicas a replay. Replicas with private stores (memory, one SQLite file each) need that pinning:
a Step that reaches another one is NOT_FOUND naming the right one.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from toolgym.env import procinfo
from toolgym.env.reward.config import RewardConfig
from toolgym.env.server.credentials import SecurityConfigError, Tokens, is_loopback, load_tokens, server_credentials
from toolgym.env.server.guard import Guard, Limits
from toolgym.env.server.redaction import install_redaction
from toolgym.env.server.reward_service import RewardServicer
from toolgym.env.server.health import HealthServicer
from toolgym.env.server.reflection import enable_reflection
from toolgym.env.tasks.suite import Suite, load_suite
from toolgym.v1 import env_pb2, env_pb2_grpc, reward_pb2, reward_pb2_grpc

log = logging.getLogger("toolgym.server")


@dataclass
class ServerConfig:
    """How `toolgym serve` runs. Every field is also a CLI flag."""

    host: str = field(default="127.0.0.1", metadata={"help": "Address to bind. Loopback by default: expose it only with TLS/auth."})
    port: int = field(default=50051, metadata={"help": "Port to bind; 0 picks a free port (see RunningServer.port)."})
    http_port: int = field(default=-1, metadata={"help": "Also serve the OpenEnv-compatible HTTP/WebSocket gateway (/ws, /reset, /step, /schema, ...) on this port, same sessions as gRPC; 0 picks a free port, -1 (default) serves none."})
    suite: str = field(default="default", metadata={"help": "Task suite: 'default' (BFCL v4 + toolgym_python), 'bfcl', 'bfcl-single', 'bfcl-multi' or a JSONL file."})
    categories: tuple[str, ...] = field(default=(), metadata={"help": "Restrict the suite to these categories (empty = all)."})
    max_workers: int = field(default=32, metadata={"help": "gRPC handler threads."})
    max_output_chars: int = field(default=1 << 20, metadata={"help": "Largest model output accepted per Score/Step (RESOURCE_EXHAUSTED above)."})
    max_batch_items: int = field(default=10_000, metadata={"help": "Largest ScoreBatch accepted (RESOURCE_EXHAUSTED above)."})
    max_message_bytes: int = field(default=64 << 20, metadata={"help": "Largest gRPC message in either direction (RESOURCE_EXHAUSTED above, before any decoding)."})
    max_sessions: int = field(default=4096, metadata={"help": "Concurrent env sessions; Reset beyond it is RESOURCE_EXHAUSTED."})
    session_ttl_s: float = field(default=900.0, metadata={"help": "Idle sessions are closed after this many seconds (0 disables)."})
    max_steps: int = field(default=20, metadata={"help": "Default step limit per episode (truncated beyond)."})
    max_steps_limit: int = field(default=1000, metadata={"help": "Largest max_steps a Reset may ask for (INVALID_ARGUMENT above): one client cannot hold a session's history and sandbox state without bound."})
    default_template: str = field(default="hermes", metadata={"help": "Template used when a Reset names none."})
    sandbox_workers: int = field(default=0, metadata={"help": "Sandbox worker processes (0 = one per CPU, at least 2)."})
    tool_wall_s: float = field(default=5.0, metadata={"help": "Wall-clock limit of one tool call in seconds (timeout penalty beyond)."})
    drain_grace_s: float = field(default=10.0, metadata={"help": "On SIGTERM, seconds to let in-flight requests finish."})
    reward: RewardConfig = field(default_factory=RewardConfig, metadata={"help": "Reward weights and penalties."})
    enable_env: bool = field(default=True, metadata={"help": "Serve EnvService (starts the sandbox pool on first use)."})
    # -- security (credentials.py, guard.py)
    tls_cert: str = field(default="", metadata={"help": "PEM certificate chain: serve TLS (with --tls-key)."})
    tls_key: str = field(default="", metadata={"help": "PEM private key of --tls-cert."})
    tls_client_ca: str = field(default="", metadata={"help": "PEM CA bundle: require client certificates it signed (mTLS)."})
    auth_token_file: str = field(default="", metadata={"help": "File of accepted bearer tokens ('TOKEN' or 'NAME TOKEN' per line); else $TOOLGYM_AUTH_TOKEN if set. Health and reflection stay open."})
    allow_insecure_remote: bool = field(default=False, metadata={"help": "Allow a non-loopback --host without TLS and a token (trusted networks only)."})
    max_inflight_per_client: int = field(default=0, metadata={"help": "Requests one client may have in flight (0 = unlimited); RESOURCE_EXHAUSTED beyond (HTTP 429 with Retry-After on the gateway)."})
    http_rate_limit: float = field(default=0.0, metadata={"help": "Gateway (--http-port) requests per second one client may send: resets, steps and tool searches over HTTP, /ws and MCP (0 = unlimited); HTTP 429 with Retry-After beyond, an error frame on a socket."})
    http_rate_burst: int = field(default=0, metadata={"help": "Requests a client may send at once before --http-rate-limit applies (token-bucket size; 0 = one second's worth)."})
    max_sessions_per_client: int = field(default=0, metadata={"help": "Env sessions one client may hold (0 = only --max-sessions applies)."})
    max_streams: int = field(default=0, metadata={"help": "Streaming calls open at once, server-wide (0 = max_workers/2, so unary calls always keep threads)."})
    keepalive_s: float = field(default=30.0, metadata={"help": "Ping idle connections this often; a peer that does not answer within --keepalive-timeout-s is dropped (half-open streams end)."})
    keepalive_timeout_s: float = field(default=10.0, metadata={"help": "Seconds to wait for a keepalive ping's answer."})
    # -- durable sessions (toolgym.env.sessions)
    session_store: str = field(default="memory", metadata={"help": "Where sessions and rollouts live: 'memory' (this process), 'sqlite:///PATH.db' (survives restarts and kill -9; one server per file) or 'redis://HOST:PORT/DB' (shared: any replica serves any session)."})
    session_lease_s: float = field(default=10.0, metadata={"help": "With a shared store, how long one step holds its session's lease (and how long another replica's step waits for it)."})
    rollout_max_count: int = field(default=100_000, metadata={"help": "Rollout table retention: keep the newest this many finished episodes (0 = no cap)."})
    rollout_max_age_s: float = field(default=0.0, metadata={"help": "Rollout table retention: drop finished episodes older than this many seconds (0 = keep)."})
    # -- scale-out and observability
    replica_id: str = field(default="", metadata={"help": "Name of this replica; session ids become '<replica>.<hex>' so clients pin Steps to it."})
    advertise_address: str = field(default="", metadata={"help": "HOST:PORT clients reach this replica at (default: the bound address)."})
    stats_file: str = field(default="", metadata={"help": "Write a JSON stats snapshot (sessions, sandbox, RSS, fds, RPC counters) here every --stats-interval-s."})
    stats_interval_s: float = field(default=5.0, metadata={"help": "Seconds between --stats-file snapshots."})


def process_stats() -> dict[str, Any]:
    """RSS, open descriptors and threads of this process (from /proc; zeros where unavailable)."""
    return {**procinfo.process_stats(), "threads": threading.active_count()}


class RunningServer:
    """A started server. ``stop`` drains in-flight RPCs for ``grace`` seconds, then closes."""

    def __init__(self, server: grpc.Server, port: int, host: str, health_servicer: health.HealthServicer, closers: list[Any],
                 *, stats: Callable[[], dict[str, Any]] | None = None, stats_file: str = "", stats_interval_s: float = 5.0,
                 env: Any = None, guard: Guard | None = None):
        self._server = server
        self.port = port
        self.host = host
        self._health = health_servicer
        self._closers = closers
        self._stopped = threading.Event()
        self._stats_fn = stats
        self._stats_file = stats_file
        self.env = env  # the EnvServicer (None with enable_env=False)
        self.http: Any = None  # the HTTP gateway (HttpGateway: .port, .url) when --http-port was given
        self.guard = guard
        self._stats_thread: threading.Thread | None = None
        if stats_file:
            self._stats_thread = threading.Thread(target=self._stats_loop, args=(stats_interval_s,), name="toolgym-stats", daemon=True)
            self._stats_thread.start()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def stats(self) -> dict[str, Any]:
        d = self._stats_fn() if self._stats_fn else {}
        d["draining"] = self._stopped.is_set()
        return d

    def write_stats(self) -> None:
        """Atomically replace the stats file with a fresh snapshot (readers never see half a file)."""
        if not self._stats_file:
            return
        tmp = f"{self._stats_file}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w") as fh:
                json.dump(self.stats(), fh, sort_keys=True, default=str)
            os.replace(tmp, self._stats_file)
        except OSError as e:
            log.warning("could not write --stats-file %s: %s", self._stats_file, e)

    def _stats_loop(self, interval: float) -> None:
        while not self._stopped.wait(max(0.1, interval)):
            self.write_stats()

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
        self.write_stats()  # the final snapshot: what was left open at shutdown

    def wait(self) -> None:
        self._server.wait_for_termination()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _check_limits(cfg: ServerConfig) -> None:
    """Reject step limits that contradict each other before anything starts."""
    if cfg.max_steps_limit < 1:
        raise ValueError(f"--max-steps-limit must be >= 1, got {cfg.max_steps_limit}")
    if not 1 <= cfg.max_steps <= cfg.max_steps_limit:
        raise ValueError(f"--max-steps (the default step limit) must be between 1 and --max-steps-limit "
                         f"({cfg.max_steps_limit}), got {cfg.max_steps}; lower it or raise --max-steps-limit")


def _check_exposure(cfg: ServerConfig, tls: bool, tokens: Tokens | None) -> None:
    if is_loopback(cfg.host) or cfg.allow_insecure_remote:
        return
    missing = [what for what, ok in (("TLS (--tls-cert/--tls-key)", tls), ("a bearer token (--auth-token-file or $TOOLGYM_AUTH_TOKEN)", tokens is not None)) if not ok]
    if missing:
        raise SecurityConfigError(
            f"--host {cfg.host} is reachable from other machines, but {' and '.join(missing)} is not configured; "
            "configure them, bind 127.0.0.1, or pass --allow-insecure-remote on a trusted network")


def _grpc_options(cfg: ServerConfig) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_receive_message_length", cfg.max_message_bytes),
        ("grpc.max_send_message_length", cfg.max_message_bytes),
        ("grpc.so_reuseport", 0),
        # Dead or frozen peers (a killed host, a stopped process) do not answer pings: their
        # connections are closed and their streams cancelled instead of holding threads forever.
        ("grpc.keepalive_time_ms", int(cfg.keepalive_s * 1000)),
        ("grpc.keepalive_timeout_ms", int(cfg.keepalive_timeout_s * 1000)),
        # gRPC >= 1.5x closes a transport whose ping goes unanswered after http2.ping_timeout_ms
        # (keepalive_timeout_ms alone no longer does; measured here: a SIGSTOPped peer stayed up).
        ("grpc.http2.ping_timeout_ms", int(cfg.keepalive_timeout_s * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 5000),
    ]


def _executor(cfg: ServerConfig) -> Any:
    from toolgym.env.executor import ToolExecutor
    from toolgym.env.sandbox import SandboxConfig, SandboxLimits

    base = SandboxConfig()
    limits = SandboxLimits(**{**base.limits.to_dict(), "wall_s": cfg.tool_wall_s})
    return ToolExecutor(SandboxConfig(workers=cfg.sandbox_workers or base.workers, limits=limits))


def start_server(config: ServerConfig | None = None, *, suite: Suite | None = None) -> RunningServer:
    """Build, bind and start the server; returns once it accepts connections."""
    cfg = config or ServerConfig()
    _check_limits(cfg)
    creds = server_credentials(cfg.tls_cert, cfg.tls_key, cfg.tls_client_ca)
    tokens = load_tokens(cfg.auth_token_file)
    _check_exposure(cfg, creds is not None, tokens)
    suite = suite or load_suite(cfg.suite, categories=list(cfg.categories) or None)
    guard = Guard(tokens, Limits(max_inflight_per_client=cfg.max_inflight_per_client,
                                                   max_streams=cfg.max_streams or max(1, cfg.max_workers // 2)))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=cfg.max_workers, thread_name_prefix="toolgym-rpc"),
                         options=_grpc_options(cfg), interceptors=[guard])
    closers: list[Any] = []

    # One tool catalogue and retriever memo for the whole server: Score, retrieval episodes and
    # RetrieveTools (gRPC and the gateway) all search the same index. Built on first use.
    from toolgym.env.retrieval.source import RetrievalSource

    retrieval = RetrievalSource(lambda: list(suite))
    reward = RewardServicer(suite, cfg.reward, max_output_chars=cfg.max_output_chars, max_batch_items=cfg.max_batch_items,
                            retrieval=retrieval)
    reward_pb2_grpc.add_RewardServiceServicer_to_server(reward, server)
    names = [reward_pb2.DESCRIPTOR.services_by_name["RewardService"].full_name]

    env = None
    if cfg.enable_env:
        from toolgym.env.server.env_service import EnvServicer

        env = EnvServicer(suite, cfg, executor=_executor(cfg), retrieval=retrieval)
        env_pb2_grpc.add_EnvServiceServicer_to_server(env, server)
        names.append(env_pb2.DESCRIPTOR.services_by_name["EnvService"].full_name)
        closers.append(env.close)

    # EvalService is part of the distribution: a broken install fails loudly here.
    from toolgym.evals.service import add_to_server as add_eval

    names.extend(add_eval(server))

    health_servicer = HealthServicer()  # grpc_health's, plus List
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ["", *names]:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    enable_reflection([*names, health.SERVICE_NAME], server)  # v1 and v1alpha

    bind = f"{cfg.host}:{cfg.port}"
    try:
        port = server.add_secure_port(bind, creds) if creds is not None else server.add_insecure_port(bind)
    except RuntimeError as e:  # grpc raises instead of returning 0 on some failures (e.g. a key that does not match)
        raise OSError(f"could not bind {bind}: {e}") from None
    if port == 0:
        raise OSError(f"could not bind {bind} (in use?) — pick another --port, or 0 for any free port")
    if env is not None:
        env.advertise_address = cfg.advertise_address or f"{cfg.host}:{port}"
    if tokens is not None:
        closers.append(install_redaction(tokens.secrets()))
    http = None
    if cfg.http_port >= 0:  # the OpenEnv HTTP/WebSocket gateway, over the same EnvServicer and session store
        if env is None:
            raise ValueError("--http-port serves the env over HTTP/WebSocket: it cannot be combined with --no-env")
        from toolgym.env.server.http.runner import HttpGateway

        http = HttpGateway(env, cfg, tokens)
        closers.insert(0, http.stop)  # stop taking WebSocket frames before the sessions close
    server.start()

    def stats() -> dict[str, Any]:
        d: dict[str, Any] = {"time": time.time(), "pid": os.getpid(), "address": f"{cfg.host}:{port}", "replica_id": cfg.replica_id}
        d.update(process_stats())
        d["rpc"] = guard.snapshot()
        if env is not None:
            d.update(env.stats())
        return d

    log.info("toolgym serving %s on %s:%d (%d tasks; %s%s%s)", ", ".join(names), cfg.host, port, len(suite),
             "TLS" if creds is not None else "plaintext", ", mTLS" if cfg.tls_client_ca else "",
             ", token auth" if tokens is not None else "")
    running = RunningServer(server, port, cfg.host, health_servicer, closers, stats=stats, stats_file=cfg.stats_file,
                            stats_interval_s=cfg.stats_interval_s, env=env, guard=guard)
    running.http = http
    return running


def serve(config: ServerConfig) -> int:
    """Run in the foreground until SIGTERM/SIGINT; drain in-flight requests, then exit 0."""
    running = start_server(config)
    running.write_stats()
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
