"""Run the gateway on uvicorn in a background thread of the gRPC server's process.

The socket is bound here, before uvicorn starts, so ``--http-port 0`` reports the real port and a
port in use fails start-up with one line (like gRPC's ``--port``). TLS and bearer tokens are the
gRPC server's own (``--tls-cert/--tls-key``, ``--auth-token-file``/``$TOOLGYM_AUTH_TOKEN``).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

log = logging.getLogger("toolgym.server.http")


class HttpGateway:
    """A started gateway: ``port``, ``url`` and :meth:`stop`."""

    def __init__(self, env: Any, cfg: Any, tokens: Any = None):
        try:
            import uvicorn

            from toolgym.env.server.http.gateway import Gateway, GatewayLimits
        except ImportError as e:  # the gateway's packages are the serve-http extra
            raise ValueError(f"--http-port needs the HTTP gateway's packages ({e.name} is missing): "
                             "pip install 'toolgym[serve-http]'") from None
        self._sock = socket.socket(socket.AF_INET6 if ":" in cfg.host else socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((cfg.host, cfg.http_port))
        except OSError as e:
            self._sock.close()
            raise OSError(f"could not bind the HTTP gateway to {cfg.host}:{cfg.http_port} ({e.strerror}) — pick another "
                          "--http-port, or 0 for any free port") from None
        self._sock.listen(1024)
        self.port = self._sock.getsockname()[1]
        self.tls = bool(cfg.tls_cert)
        self.url = f"{'https' if self.tls else 'http'}://{cfg.host}:{self.port}"
        auth = (lambda tok: tokens.match(tok)) if tokens is not None else None
        self.gateway = Gateway(env, limits=GatewayLimits(max_frame_chars=max(cfg.max_output_chars * 2, 1 << 16),
                                                          max_sessions=cfg.max_sessions, workers=cfg.max_workers,
                                                          max_inflight_per_client=cfg.max_inflight_per_client,
                                                          rate=cfg.http_rate_limit, burst=cfg.http_rate_burst),
                               authenticate=auth)
        ucfg = uvicorn.Config(self.gateway.app, log_level="warning", lifespan="off", ws_max_size=cfg.max_message_bytes,
                              ws_ping_interval=20.0, ws_ping_timeout=20.0, timeout_graceful_shutdown=2,
                              ssl_certfile=cfg.tls_cert or None, ssl_keyfile=cfg.tls_key or None)
        self._server = uvicorn.Server(ucfg)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="toolgym-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self._server.started:
            raise OSError(f"the HTTP gateway on {cfg.host}:{self.port} did not start")
        log.info("toolgym gateway (OpenEnv HTTP/WebSocket) on %s", self.url)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self.gateway.shutdown()
        self._sock.close()
