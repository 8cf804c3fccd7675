"""The OpenEnv-compatible HTTP/WebSocket gateway (FastAPI), over the same EnvService core as gRPC.

Every reset, step and close goes through :class:`~toolgym.env.server.env_service.EnvServicer`'s
``do_reset``/``do_step``/``do_close`` — the functions gRPC's Reset/Step/Close call — so a session
behaves the same whichever protocol opened it, shares the one session store, caps and idle expiry,
and a session opened over gRPC can be stepped here (``/ws?session_id=``) and the other way round.
Only the wire format differs; :mod:`toolgym.env.server.http.wire` converts it.

Routes (OpenEnv's surface): ``GET /health``, ``GET /schema``, ``GET /metadata``, ``GET /state``,
``POST /reset``, ``POST /step``, ``POST /close`` and the WebSocket ``/ws``. Over HTTP a session is
named by ``session_id`` (``/reset`` returns it in ``observation.metadata``); a WebSocket holds one
session per connection and closes the one it opened as soon as the socket closes or drops.

Tool calls and scoring block (sandbox round trips, ground-truth replays), so they run on a thread
pool, never on the event loop: pings and other sockets are served while a long tool call runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from toolgym.env.server.errors import RequestError
from toolgym.env.server.retrieval_rpc import retrieve_tools
from toolgym.env.server.http import wire
from toolgym.env.server.http.limits import BodyLimit, ClientLimiter, error_response, http_error
from toolgym.env.server.http.wire import parse_json
from toolgym.env.server.http.mcp import add_mcp_routes
from toolgym.env.server.http.wire import WireError
from toolgym.v1 import env_pb2

log = logging.getLogger("toolgym.server.http")


@dataclass(frozen=True)
class GatewayLimits:
    """Sizes and pools of the gateway (taken from the server's flags of the same meaning)."""

    max_frame_chars: int = 4 << 20  # one WS frame / HTTP body; a step's action is bounded by the env's own limit too
    max_sessions: int = 4096
    workers: int = 32
    max_inflight_per_client: int = 0  # requests one client may have running (0 = unlimited); 429 beyond
    rate: float = 0.0  # requests/s per client, token bucket (0 = off); 429 beyond
    burst: int = 0  # the bucket's size (0 = one second's worth, at least 1)


class Gateway:
    """The FastAPI app and the blocking calls it makes off the event loop."""

    def __init__(self, env: Any, *, limits: GatewayLimits = GatewayLimits(), authenticate: Callable[[str], str | None] | None = None,
                 name: str = "toolgym", version: str = ""):
        self.env = env
        self.limits = limits
        self._auth = authenticate  # bearer token -> client name (None = refused); unset = no auth
        self._pool = ThreadPoolExecutor(max_workers=limits.workers, thread_name_prefix="toolgym-http")
        self.limiter = ClientLimiter(limits.max_inflight_per_client, limits.rate, limits.burst)
        self.ws_closed_sessions = 0
        self.name, self.version = name, version
        self.app = self._build()

    # ------------------------------------------------------------------ blocking core, off-loop
    async def _call(self, fn: Callable[..., Any], *args: Any, owner: str | None = None) -> Any:
        """``fn(*args)`` on the pool. With ``owner``, one request of that client: it takes an in-flight
        slot and a rate token first (429 when over, see limits.py); closes and store reads pass none."""
        try:
            if owner is None:
                return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
            with self.limiter.slot(owner):
                return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        except RequestError as e:
            err = wire.from_request_error(e)
            if err.code == wire.CAPACITY_REACHED:
                err.extra.update(active_sessions=len(self.env.sessions), max_sessions=self.limits.max_sessions)
            raise err from None

    async def reset(self, data: Any, owner: str) -> tuple[str, dict[str, Any]]:
        req = wire.reset_request(data)
        resp = await self._call(self.env.do_reset, req, owner, owner=owner)
        return resp.session_id, wire.reset_payload(resp)

    async def step(self, sid: str, data: Any, owner: str) -> dict[str, Any]:
        reply = await self._call(self.env.step_reply, wire.step_request(sid, data), owner, owner=owner)
        return wire.step_payload(sid, reply)

    async def close(self, sid: str, owner: str) -> bool:
        try:
            return (await self._call(self.env.do_close, env_pb2.CloseRequest(session_id=sid), owner)).closed
        except WireError:
            return False

    def state(self, sid: str | None) -> dict[str, Any]:
        if sid is None:
            return wire.state_payload(None, 0, False)
        stored = self.env.sessions.store.load(sid)
        if stored is None:
            raise WireError(wire.SESSION_ERROR, f"session {sid!r} is not open (closed, expired, or never created)", 404)
        return wire.state_payload(sid, len(stored.entries), stored.done)

    def owner(self, headers: Any, peer: str) -> str:
        """The client's identity (per-client caps); raises WireError 401 when a token is required and wrong."""
        if self._auth is None:
            return f"http:{peer}"
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        name = self._auth(token) if token else None
        if name is None:
            raise WireError(wire.SESSION_ERROR, "missing or wrong bearer token: send 'Authorization: Bearer <token>'", 401)
        return f"http:{name}"

    # ------------------------------------------------------------------ routes
    def _build(self) -> FastAPI:
        app = FastAPI(title="toolgym gateway", version=self.version or "0",
                      description="OpenEnv-compatible HTTP/WebSocket access to toolgym's tool-use environment.")

        @app.exception_handler(WireError)
        async def _wire_error(_: Request, e: WireError) -> Response:
            return error_response(e)

        app.add_exception_handler(StarletteHTTPException, http_error)  # 404/405 in the same shape

        async def body(request: Request) -> Any:
            raw = await request.body()  # BodyLimit has already answered 413 for a body over the limit
            if not raw.strip():
                return {}
            return parse_json(raw, "request body")

        def peer(request: Request | WebSocket) -> str:
            return request.client.host if request.client else "unknown"

        @app.get("/health")
        async def health() -> dict[str, Any]:
            return {"status": "healthy"}

        @app.get("/schema")
        async def schema() -> dict[str, Any]:
            return {"action": wire.ACTION_SCHEMA, "observation": wire.OBSERVATION_SCHEMA, "state": wire.STATE_SCHEMA}

        @app.get("/metadata")
        async def metadata() -> dict[str, Any]:
            return {"name": self.name, "version": self.version,
                    "description": "Tool-use environment: the model's raw text is parsed by the episode's template, its tool "
                                   "calls run in a sandbox, and the terminal step carries the weighted reward and its breakdown.",
                    "reset_fields": sorted(f.name for f in env_pb2.ResetRequest.DESCRIPTOR.fields) + ["task"],
                    "active_sessions": len(self.env.sessions), "max_sessions": self.limits.max_sessions}

        @app.post("/reset")
        async def http_reset(request: Request) -> dict[str, Any]:
            owner = self.owner(request.headers, peer(request))
            _, payload = await self.reset(await body(request), owner)
            return payload

        def session_of(data: Any) -> str:
            sid = data.pop("session_id", None) if isinstance(data, dict) else None
            if not isinstance(sid, str) or not sid:
                raise WireError(wire.VALIDATION_ERROR, "over HTTP a step names its session: send {\"session_id\": ..., "
                                "\"action\": ...} with the id from /reset's observation.metadata, or use the WebSocket /ws", 422)
            return sid

        @app.post("/step")
        async def http_step(request: Request) -> dict[str, Any]:
            owner = self.owner(request.headers, peer(request))
            data = await body(request)
            sid = session_of(data)
            return await self.step(sid, data, owner)

        @app.post("/close")
        async def http_close(request: Request) -> dict[str, Any]:
            owner = self.owner(request.headers, peer(request))
            return {"closed": await self.close(session_of(await body(request)), owner)}

        @app.post("/tools/search")
        async def tools_search(request: Request) -> dict[str, Any]:
            # RetrieveTools over HTTP: {"query": str, "k"?: int, "retriever"?: str}.
            owner = self.owner(request.headers, peer(request))
            data = await body(request)
            req = wire.retrieve_request(data)
            resp = await self._call(retrieve_tools, self.env.retrieval, req, owner=owner)
            return {"retriever": resp.retriever, "catalogue_size": resp.catalogue_size,
                    "tools": [{"name": t.name, "id": t.id, "score": t.score, "spec": json.loads(t.spec_json)} for t in resp.tools]}

        @app.get("/state")
        async def http_state(request: Request, session_id: str | None = None) -> dict[str, Any]:
            self.owner(request.headers, peer(request))
            return self.state(session_id)

        @app.websocket("/ws")
        async def ws(websocket: WebSocket, session_id: str | None = None) -> None:
            await self._serve_ws(websocket, session_id, peer(websocket))

        from toolgym.env.server.http.dashboard import add_dashboard_routes
        self.board = add_dashboard_routes(app, self)
        self.mcp = add_mcp_routes(app, self)
        app.add_middleware(BodyLimit, max_bytes=self.limits.max_frame_chars)  # 413 before any route buffers a body
        return app

    # ------------------------------------------------------------------ the WebSocket session
    async def _serve_ws(self, ws: WebSocket, attach: str | None, peer: str) -> None:
        try:
            owner = self.owner(ws.headers, peer)
        except WireError as e:
            await ws.close(code=1008, reason=e.message[:120])
            return
        await ws.accept()
        sid, owned = None, False  # the session of this socket; `owned`: opened here, so closed with the socket
        if attach:
            try:
                self.state(attach)
                sid = attach
            except WireError as e:
                await ws.send_json({"type": "error", "data": e.data()})
        try:
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    break
                text = msg.get("text")
                if text is None:
                    await self._send_error(ws, WireError(wire.INVALID_JSON, "binary frames are not accepted: send JSON text frames "
                                                                            "{\"type\": ..., \"data\": {...}}"))
                    continue
                if len(text) > self.limits.max_frame_chars:
                    await self._send_error(ws, WireError(wire.VALIDATION_ERROR, f"frame of {len(text)} characters is over the "
                                                                                f"limit of {self.limits.max_frame_chars}"))
                    continue
                try:
                    frame = parse_json(text, "frame")
                except WireError as e:
                    await self._send_error(ws, e)
                    continue
                kind = frame.get("type") if isinstance(frame, dict) else None
                data = frame.get("data") if isinstance(frame, dict) else None
                try:
                    if kind == "reset":
                        if sid is not None and owned:
                            await self.close(sid, owner)  # a new episode replaces this socket's old one
                        sid, owned = None, False
                        sid, payload = await self.reset(data, owner)
                        owned = True
                        await ws.send_json({"type": "observation", "data": payload})
                    elif kind == "step":
                        if sid is None:
                            raise WireError(wire.SESSION_ERROR, "step before reset: send {\"type\": \"reset\", \"data\": {...}} first")
                        await ws.send_json({"type": "observation", "data": await self.step(sid, data if data is not None else {}, owner)})
                    elif kind == "state":
                        await ws.send_json({"type": "state", "data": self.state(sid)})
                    elif kind == "close":
                        break
                    else:
                        raise WireError(wire.UNKNOWN_TYPE, f"Unknown message type: {kind!r}; use reset, step, state or close")
                except WireError as e:
                    await self._send_error(ws, e)
                except Exception as e:  # a bug: say so on the socket, keep serving
                    log.exception("ws %s failed", kind)
                    await self._send_error(ws, WireError(wire.EXECUTION_ERROR, f"{kind} failed inside the server: {type(e).__name__}: {e}"))
        except WebSocketDisconnect:
            pass
        finally:
            if sid is not None and owned and await self.close(sid, owner):
                self.ws_closed_sessions += 1
                log.info("websocket gone: closed its session %s (%d so far)", sid, self.ws_closed_sessions)
            try:
                await ws.close()
            except (RuntimeError, WebSocketDisconnect):  # already closed by the peer (no close frame sent)
                pass

    @staticmethod
    async def _send_error(ws: WebSocket, e: WireError) -> None:
        await ws.send_text(json.dumps({"type": "error", "data": e.data()}))  # ASCII: whatever the message quotes

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
