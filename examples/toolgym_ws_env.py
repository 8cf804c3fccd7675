"""A minimal synchronous client for toolgym's OpenEnv WebSocket gateway (``toolgym serve --http-port P``).

One :class:`ToolgymWSClient` holds one WebSocket (``/ws``) and, on it, at most one toolgym session:
each ``reset`` opens a new episode on the same socket (the gateway closes the socket's previous one),
``step`` sends the model's raw text, and closing the socket closes its session on the server at once.

Frames are OpenEnv's: ``{"type": "reset"|"step"|"state"|"close", "data": {...}}`` out, and
``{"type": "observation", "data": {"observation": {...}, "reward": ..., "done": ..., "metadata": {...}}}``
or ``{"type": "error", "data": {"message": ..., "code": ...}}`` back. ``reset``'s data takes gRPC
``ResetRequest``'s fields (``task_id``, ``template``, ``seed``, ...); a step's data is
``{"action": "<model text>"}``. The terminal observation carries the score in
``observation["metadata"]["reward_signals"]``: ``total``, ``components``, ``penalties``, ``valid``, ``feedback``.

This is what ``openenv``'s ``GenericEnvClient`` does over the same socket; it is written out here (with
only the ``websockets`` package) so the examples run in toolgym's own venv, where openenv is not installed.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect


class GatewayError(RuntimeError):
    """An ``{"type": "error"}`` reply: OpenEnv's error ``code`` (``VALIDATION_ERROR``, ``SESSION_ERROR``, ...)."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass
class StepResult:
    """One observation frame, unpacked."""

    text: str  # after reset: the rendered prompt with the tool specs; after a step: tool results or the next user turn
    reward: float | None
    done: bool
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def reward_signals(self) -> dict[str, Any] | None:
        """The terminal step's score (``total``, ``components``, ``penalties``, ``valid``, ``feedback``), else None."""
        return self.metadata.get("reward_signals")


def ws_url(http_url: str) -> str:
    """``http://host:port`` (the gateway's base URL) -> ``ws://host:port/ws``."""
    return http_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1).rstrip("/") + "/ws"


class ToolgymWSClient:
    """One WebSocket to the gateway; not thread-safe (one request in flight at a time, like a TRL rollout)."""

    def __init__(self, url: str, *, timeout_s: float = 120.0, headers: dict[str, str] | None = None):
        # ``url`` may be the gateway's base URL (http://...) or the socket's (ws://.../ws).
        self.url = url if url.startswith(("ws://", "wss://")) else ws_url(url)
        self._timeout_s = timeout_s
        # The gateway pings every 20 s; the sync client answers pings from its own background thread, so a
        # socket idle while the model generates stays open.
        # Entered as a context manager (websockets >= 17 warns when connect() is used bare), left in close().
        self._stack = contextlib.ExitStack()
        self._ws: ClientConnection = self._stack.enter_context(
            connect(self.url, additional_headers=headers, open_timeout=timeout_s, max_size=None))

    def _request(self, kind: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        self._ws.send(json.dumps({"type": kind, "data": data or {}}))
        frame = json.loads(self._ws.recv(timeout=self._timeout_s))
        if frame.get("type") == "error":
            err = frame.get("data") or {}
            raise GatewayError(str(err.get("code")), str(err.get("message")))
        return frame["data"]

    @staticmethod
    def _result(payload: dict[str, Any]) -> StepResult:
        obs = payload["observation"]
        return StepResult(text=obs.get("text", ""), reward=payload.get("reward"), done=bool(payload.get("done")),
                          metadata=obs.get("metadata") or {})

    def reset(self, **fields: Any) -> StepResult:
        """Start an episode: ``fields`` are ResetRequest's (``task_id``, ``template``, ``seed``, ``categories``, ...)."""
        return self._result(self._request("reset", fields))

    def step(self, action: str) -> StepResult:
        """Send one action: the model's raw output text, parsed by the episode's template."""
        return self._result(self._request("step", {"action": action}))

    def state(self) -> dict[str, Any]:
        return self._request("state")

    def close(self) -> None:
        """Say ``close`` (the server ends the session and closes the socket), then close our end."""
        try:
            self._ws.send(json.dumps({"type": "close", "data": {}}))
            # Let the server close first: it ends the session, then the socket. Closing our end at the same
            # moment races its close handshake (the gateway logs the race as an ASGI error).
            self._ws.recv(timeout=5.0)
        except (ConnectionClosed, TimeoutError):
            pass
        self._stack.close()

    def __enter__(self) -> ToolgymWSClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["GatewayError", "StepResult", "ToolgymWSClient", "ws_url"]
