"""The gateway's request limits: body size (413), requests in flight and request rate per client (429).

One :class:`ClientLimiter` per gateway; every reset, step and tool search — over HTTP, the WebSocket
``/ws`` and MCP alike, since all of them go through ``Gateway._call`` — takes a slot first:

- **in flight** (``--max-inflight-per-client``, the flag gRPC's guard enforces too): at most that many
  requests of one client run at once;
- **rate** (``--http-rate-limit`` requests/s per client, ``--http-rate-burst``): a token bucket, full
  at start, holding ``burst`` tokens (0 = one second's worth, at least 1) and refilled at ``rate``/s.

A refusal is a :class:`~toolgym.env.server.http.wire.WireError` ``CAPACITY_REACHED``, HTTP 429, whose
data names the limit, the flag and ``retry_after_s``; the gateway answers it with a ``Retry-After``
header over HTTP and as an error frame on a socket (which stays open). Closing a session and reading
its state are never limited: freeing resources must always work, and ``state`` is what a client
polls to see that its socket is alive.

:class:`BodyLimit` is an ASGI middleware that refuses an HTTP body over the limit with 413 before the
route reads it: at once when ``Content-Length`` says so, else as soon as the streamed body passes the
limit — a client cannot make the gateway buffer more than the limit (the rest is read and dropped).
``/mcp`` gets the refusal as a JSON-RPC error, every other route as OpenEnv's ``{"type": "error", ...}``.

Input checks the gateway's fuzz (tests/hardening/test_hardening_fuzz_gateway.py) asked for:
:func:`~toolgym.env.server.http.wire.parse_json` turns every way a body or frame can fail to be usable JSON — syntax, nesting past
the parser's recursion limit, integers longer than Python converts, lone UTF-16 surrogate escapes
(``"\ud800"``: valid JSON, not Unicode text, unencodable downstream) — into an error reply instead
of a 500 or a dropped socket; :func:`error_response` writes error bodies as ASCII JSON (whatever an
error message quotes, it encodes), and :func:`http_error` gives routing errors (404 unknown path,
405 wrong method) the same documented shape, keeping FastAPI's ``detail``.
"""

from __future__ import annotations

import json
import math
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from toolgym.env.server.http import wire
from toolgym.env.server.http.wire import WireError

JSONRPC_INVALID_REQUEST = -32600  # JSON-RPC 2.0's "Invalid Request", what /mcp answers an oversize body with

_BUCKETS_KEPT = 10_000  # per-client buckets remembered; full (idle) ones are forgotten beyond this


class ClientLimiter:
    """Per-client in-flight cap and token-bucket rate (0 turns either off). Thread-safe."""

    def __init__(self, max_inflight: int = 0, rate: float = 0.0, burst: int = 0, clock: Callable[[], float] = time.monotonic):
        if max_inflight < 0:
            raise ValueError(f"--max-inflight-per-client must be >= 0 (0 = unlimited), got {max_inflight}")
        if rate < 0 or not math.isfinite(rate):
            raise ValueError(f"--http-rate-limit must be a finite number >= 0 (requests/s per client, 0 = off), got {rate}")
        if burst < 0:
            raise ValueError(f"--http-rate-burst must be >= 0 (0 = one second's worth of --http-rate-limit), got {burst}")
        self.max_inflight, self.rate = max_inflight, float(rate)
        self.burst = float(burst or max(1, math.ceil(rate)))
        self._clock = clock
        self._lock = threading.Lock()
        self._inflight: dict[str, int] = {}
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, at)
        self.rejected = {"inflight": 0, "rate": 0}

    @property
    def active(self) -> bool:
        return bool(self.max_inflight or self.rate)

    def inflight(self, who: str) -> int:
        with self._lock:
            return self._inflight.get(who, 0)

    def acquire(self, who: str) -> None:
        """Take a slot for one request of ``who``, or raise the 429 WireError saying which limit and when to retry."""
        if not self.active:
            return
        with self._lock:
            n = self._inflight.get(who, 0)
            if self.max_inflight and n >= self.max_inflight:
                self.rejected["inflight"] += 1
                raise WireError(wire.CAPACITY_REACHED, f"client {who} already has {n} requests in flight, the per-client "
                                f"limit (--max-inflight-per-client {self.max_inflight}); wait for their replies (one request "
                                "at a time per socket), or raise the limit", 429, limit="max_inflight_per_client",
                                max_inflight_per_client=self.max_inflight, retry_after_s=1.0)
            if self.rate:
                now = self._clock()
                tokens, at = self._buckets.get(who, (self.burst, now))
                tokens = min(self.burst, tokens + (now - at) * self.rate)
                if tokens < 1.0:
                    self._buckets[who] = (tokens, now)
                    self.rejected["rate"] += 1
                    wait = round((1.0 - tokens) / self.rate, 3)
                    raise WireError(wire.CAPACITY_REACHED, f"client {who} is over the request rate limit of {self.rate:g}/s "
                                    f"(--http-rate-limit, burst {self.burst:g}: --http-rate-burst); retry in {wait:g} s, "
                                    "send fewer requests per second, or raise the limit", 429, limit="http_rate_limit",
                                    http_rate_limit=self.rate, http_rate_burst=self.burst, retry_after_s=wait)
                if len(self._buckets) >= _BUCKETS_KEPT and who not in self._buckets:
                    self._forget_full(now)
                self._buckets[who] = (tokens - 1.0, now)
            self._inflight[who] = n + 1

    def release(self, who: str) -> None:
        if not self.active:
            return
        with self._lock:
            n = self._inflight.get(who, 0) - 1
            if n > 0:
                self._inflight[who] = n
            else:
                self._inflight.pop(who, None)

    @contextmanager
    def slot(self, who: str) -> Iterator[None]:
        self.acquire(who)
        try:
            yield
        finally:
            self.release(who)

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled (a forgotten client starts full, which is where it was anyway)."""
        full = [k for k, (tok, at) in self._buckets.items() if tok + (now - at) * self.rate >= self.burst]
        for k in full:
            del self._buckets[k]


# ---------------------------------------------------------------------------- input checks, error bodies
def error_response(e: WireError) -> Response:
    """OpenEnv's error body for ``e`` (ASCII JSON: always encodable), with ``Retry-After`` when it says when."""
    return Response(json.dumps({"type": "error", "data": e.data()}), status_code=e.http_status,
                    media_type="application/json", headers=retry_after_header(e))


async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """Starlette's own errors (no route, wrong method) in the documented shape, ``detail`` kept."""
    if exc.status_code == 404:
        msg = (f"no route {request.method} {request.url.path}: this gateway serves GET /health, /schema, /metadata, "
               "/state, POST /reset, /step, /close, /tools/search, /mcp and the WebSockets /ws and /mcp")
    elif exc.status_code == 405:
        allow = (exc.headers or {}).get("Allow", "")
        msg = f"{request.method} is not served on {request.url.path}" + (f": use {allow}" if allow else "")
    else:
        msg = f"{request.method} {request.url.path}: {exc.detail}"
    code = wire.UNKNOWN_TYPE if exc.status_code in (404, 405) else wire.VALIDATION_ERROR
    body = {"type": "error", "data": {"message": msg, "code": code}, "detail": exc.detail}
    return Response(json.dumps(body), status_code=exc.status_code, media_type="application/json", headers=exc.headers)


def retry_after_header(e: WireError) -> dict[str, str] | None:
    """``Retry-After`` (whole seconds, at least 1) for a refusal that says when to retry."""
    wait = e.extra.get("retry_after_s")
    if not isinstance(wait, (int, float)):
        return None
    return {"Retry-After": str(max(1, math.ceil(wait)))}


class BodyLimit:
    """ASGI middleware: an HTTP request body over ``max_bytes`` is 413 before the app sees it (module docstring)."""

    def __init__(self, app: Any, max_bytes: int, jsonrpc_paths: tuple[str, ...] = ("/mcp",)):
        self.app, self.max_bytes, self.jsonrpc_paths = app, max_bytes, jsonrpc_paths

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = None
        for k, v in scope.get("headers") or ():
            if k == b"content-length":
                try:
                    declared = int(v)
                except ValueError:
                    declared = None
                break
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, send, f"request body of {declared} bytes (Content-Length) is over the limit of {self.max_bytes}")
            return
        chunks, size = [], 0
        while True:  # buffer the body (at most the limit), then hand it to the app in one piece
            msg = await receive()
            if msg["type"] != "http.request":  # http.disconnect: the client is gone
                return
            body = msg.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._refuse(scope, send, f"request body of more than {self.max_bytes} bytes is over the limit of {self.max_bytes}")
                return
            chunks.append(body)
            if not msg.get("more_body", False):
                break
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the server's own receive does

        await self.app(scope, replay, send)

    async def _refuse(self, scope: dict[str, Any], send: Callable[..., Any], what: str) -> None:
        message = (f"{what}; send a smaller body (the limit is twice --max-output-chars, at least 64 KiB), or raise "
                   "--max-output-chars")
        if scope.get("path") in self.jsonrpc_paths:
            payload: dict[str, Any] = {"jsonrpc": "2.0", "id": None, "error": {"code": JSONRPC_INVALID_REQUEST, "message": message}}
        else:
            payload = {"type": "error", "data": {"message": message, "code": wire.VALIDATION_ERROR, "max_bytes": self.max_bytes}}
        raw = json.dumps(payload).encode()
        # No "Connection: close": the server discards the rest of the body unbuffered and keeps the
        # connection, so the client reads this reply instead of a reset from a close mid-upload.
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]})
        await send({"type": "http.response.body", "body": raw})
