"""MCP on the gateway: ``POST``/``DELETE``/``GET /mcp`` (Streamable HTTP, JSON bodies) and ``WebSocket /mcp``.

An MCP session (the ``Mcp-Session-Id`` issued on ``initialize``, or one WebSocket) is bound to at
most one toolgym episode at a time: created at ``initialize`` from the URL's query string
(``/mcp?task_id=multi_turn_base_0&template=hermes``) or later by ``openenv/session/create``. Its
``tools/list`` is the episode's offered tools, and ``tools/call`` is a *step* of that episode: the one
call is rendered in the episode's template and sent through ``EnvServicer.do_step`` like any other
action, so it runs in the sandbox against the session's state and is scored like gRPC's and /ws's
steps. A plain-text reply (what ends a user turn) is the ``end_turn`` meta-tool, or ``openenv/step``
with a raw action. ``params.session_id`` names another episode of the same client (OpenEnv's
convention), with or without an MCP session.

Episodes go through the gateway's reset/step/close, so they share the session store, the
``--max-sessions`` cap (``CAPACITY_REACHED`` comes back as a JSON-RPC error with the counts), idle
expiry and the owner check. Deleting the MCP session, or closing the socket, closes its episode.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, Response

from toolgym.env.parsers import render_calls, render_final_answer
from toolgym.env.server.errors import RequestError
from toolgym.env.server.http import mcp_wire as mw
from toolgym.env.server.http.mcp_wire import RpcError
from toolgym.env.server.http.wire import WireError
from toolgym.env.server.resolve import resolve_task
from toolgym.env.types import ToolCall

log = logging.getLogger("toolgym.server.http.mcp")

SESSION_HEADER = "mcp-session-id"
VERSION_HEADER = "mcp-protocol-version"


@dataclass
class McpSession:
    """One MCP session: its client, and the episode bound to it (closed with it)."""

    owner: str
    version: str = mw.LATEST_VERSION
    episode: str | None = None
    last_used: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # binds/unbinds one at a time


class McpServer:
    """The MCP methods over one :class:`~toolgym.env.server.http.gateway.Gateway`."""

    def __init__(self, gateway: Any):
        self.gw = gateway
        self.sessions: dict[str, McpSession] = {}  # Mcp-Session-Id -> session (HTTP); a socket holds its own
        self.reset_tools: dict[str, list[dict[str, Any]]] = {}  # episode -> tools offered at reset (retrieval episodes)
        self.closed_on_disconnect = 0

    # ------------------------------------------------------------------ episodes
    async def create(self, data: Any, owner: str) -> tuple[str, dict[str, Any]]:
        sid, payload = await self.gw.reset(data, owner)
        info = payload["observation"]["metadata"]["info"]
        self.reset_tools[sid] = list(info.get("tools") or [])
        return sid, payload

    async def close_episode(self, sid: str, owner: str) -> bool:
        self.reset_tools.pop(sid, None)
        return bool(await self.gw.close(sid, owner))

    async def stored(self, sid: str, owner: str) -> Any:
        st = await self.gw._call(self.gw.env.sessions.store.load, sid)  # a SQLite/Redis read: off the loop
        if st is None or st.owner != owner:  # another client's session reads as missing (as do_step does)
            raise mw.session_error(f"no open session {sid!r} for this client (closed, expired, or never created); "
                                   "call openenv/session/create or reconnect to /mcp?task_id=...")
        return st

    def offered(self, sid: str, st: Any) -> list[dict[str, Any]]:
        """The episode's tools at its current turn, in toolgym's spec form.

        Recomputed from the task (held-back tools of BFCL miss_func tasks join at their turn); a
        retrieval episode's offer depends on its searches, so it lists what its reset offered."""
        opts = st.spec.options
        suite = getattr(self.gw.env, "suite", None)
        if suite is None or opts.get("retrieval", "none") != "none" or opts.get("tool_pool", "task") != "task":
            return self.reset_tools.get(sid, [])
        try:
            task = resolve_task(suite, "" if st.spec.task_json else st.spec.task_id, st.spec.task_json)
        except RequestError:
            return self.reset_tools.get(sid, [])
        turn = int(st.entries[-1].reply["info"].get("turn", 0)) if st.entries else 0
        held = {n for t, names in (task.missed_function or {}).items() if int(t) > turn for n in names}
        return [t.to_dict() for t in task.tools if t.name not in held]

    def target(self, params: dict[str, Any], sess: McpSession | None) -> str:
        sid = params.get("session_id")
        if sid is not None:
            if not isinstance(sid, str) or not sid:
                raise RpcError(mw.INVALID_PARAMS, "'session_id' must be a non-empty string (an id from openenv/session/create)")
            return sid
        if sess is None or sess.episode is None:
            raise mw.session_error("no episode is bound to this MCP session yet: connect to /mcp?task_id=...&template=... "
                                   "before initialize, call openenv/session/create {task_id, template, ...}, or pass "
                                   "params.session_id")
        return sess.episode

    async def bind(self, sess: McpSession | None, data: Any, owner: str) -> tuple[str, dict[str, Any]]:
        """A new episode; bound to ``sess`` (replacing, and closing, the one it had) when there is one."""
        if sess is None:
            return await self.create(data, owner)
        async with sess.lock:
            if sess.episode is not None:
                await self.close_episode(sess.episode, owner)
                sess.episode = None
            sid, payload = await self.create(data, owner)
            sess.episode = sid
            return sid, payload

    async def step(self, sid: str, action: str, owner: str) -> dict[str, Any]:
        return await self.gw.step(sid, {"action": action}, owner)

    # ------------------------------------------------------------------ methods
    async def dispatch(self, method: str, params: dict[str, Any], sess: McpSession | None, owner: str) -> dict[str, Any]:
        if method == "ping":
            return {}
        if method == "tools/list":
            sid = self.target(params, sess)
            st = await self.stored(sid, owner)
            return {"tools": self.tool_list(sid, st)}
        if method == "tools/call":
            return await self.call_tool(params, sess, owner)
        if method == "openenv/step":
            action = params.get("action")
            if not isinstance(action, str):
                raise RpcError(mw.INVALID_PARAMS, "openenv/step needs params.action, the model's raw output text (a string)")
            sid = self.target(params, sess)
            payload = await self.step(sid, action, owner)
            return mw.call_result(payload, False)
        if method == "openenv/session/create":
            data = {k: v for k, v in params.items() if k != "_meta"}
            sid, payload = await self.bind(sess, data, owner)
            st = await self.stored(sid, owner)
            return {"session_id": sid, "observation": payload["observation"]["text"], "tools": self.tool_list(sid, st),
                    "info": payload["observation"]["metadata"]["info"]}
        if method == "openenv/session/close":
            sid = params.get("session_id")
            if not isinstance(sid, str) or not sid:
                raise RpcError(mw.INVALID_PARAMS, "openenv/session/close needs params.session_id (a string)")
            await self.stored(sid, owner)
            closed = await self.close_episode(sid, owner)
            if sess is not None and sess.episode == sid:
                sess.episode = None
            return {"session_id": sid, "closed": closed}
        raise RpcError(mw.METHOD_NOT_FOUND, f"Method not found: {method!r}; this server answers initialize, ping, tools/list, "
                                            "tools/call, openenv/step, openenv/session/create and openenv/session/close")

    def tool_list(self, sid: str, st: Any) -> list[dict[str, Any]]:
        tools = [mw.mcp_tool(t) for t in self.offered(sid, st)]
        return tools + ([mw.END_TURN_TOOL] if all(t["name"] != mw.END_TURN for t in tools) else [])

    async def call_tool(self, params: dict[str, Any], sess: McpSession | None, owner: str) -> dict[str, Any]:
        name, args = params.get("name"), params.get("arguments")
        if not isinstance(name, str) or not name:
            raise RpcError(mw.INVALID_PARAMS, "tools/call needs params.name, the tool's name (a string)")
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise RpcError(mw.INVALID_PARAMS, f"tools/call params.arguments must be a JSON object, got {type(args).__name__}")
        sid = self.target(params, sess)
        st = await self.stored(sid, owner)
        template = st.spec.template
        offered = {t["name"] for t in self.offered(sid, st)}
        if name == mw.END_TURN and name not in offered:  # a task tool of that name wins over the meta-tool
            message = args.get("message", "Done.")
            if not isinstance(message, str):
                raise RpcError(mw.INVALID_PARAMS, "end_turn's 'message' must be a string (your reply to the user)")
            payload = await self.step(sid, render_final_answer(message or "Done.", template), owner)
            return mw.call_result(payload, False)
        try:
            action = render_calls([ToolCall(name, args)], template)
        except ValueError as e:
            raise RpcError(mw.INVALID_PARAMS, f"tool {name!r} cannot be written in the episode's {template!r} template: {e}") from None
        payload = await self.step(sid, action, owner)
        info = payload["metadata"]["info"]
        return mw.call_result(payload, mw.step_failed(name, info, payload["observation"]["text"]))

    async def answer(self, msg: Any, sess: McpSession | None, owner: str,
                     on_initialize: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]) -> tuple[dict[str, Any] | None, int]:
        """One message's reply (None for notifications and responses) and the HTTP status to send it with."""
        msg_id = msg.get("id") if isinstance(msg, dict) else None
        try:
            kind, msg_id, method, params = mw.classify(msg)
            if kind != "request":
                return None, 202
            if method == "initialize":
                return mw.response(msg_id, await on_initialize(params)), 200
            if sess is not None:
                sess.last_used = time.monotonic()
            return mw.response(msg_id, await self.dispatch(method, params, sess, owner)), 200
        except RpcError as e:
            return mw.error_response(msg_id, e), e.http_status
        except WireError as e:
            err = mw.from_wire_error(e)
            return mw.error_response(msg_id, err), err.http_status
        except Exception as e:  # a bug: a JSON-RPC error naming it, never a 500 with a traceback
            log.exception("mcp request failed")
            return mw.error_response(msg_id, RpcError(mw.INTERNAL_ERROR, f"the server failed: {type(e).__name__}: {e}")), 200

    def init_result(self, version: str, sid: str | None, payload: dict[str, Any] | None) -> dict[str, Any]:
        result: dict[str, Any] = {"protocolVersion": version, "capabilities": {"tools": {}},
                                  "serverInfo": {"name": "toolgym", "version": self.gw.version or _version()}}
        if payload is not None:  # the episode's first observation: its prompt is what the agent acts on
            result["instructions"] = payload["observation"]["text"]
        if sid is not None:
            result["_meta"] = {"toolgym/session_id": sid}
        return result

    def prune(self) -> None:
        """Forget MCP sessions idle past the store's TTL (their episodes have expired there too), and
        the least recently used episode-less ones beyond a cap (those hold no --max-sessions slot)."""
        ttl = float(getattr(self.gw.env.sessions.limits, "ttl_s", 0.0) or 0.0)
        now = time.monotonic()
        stale = [k for k, s in self.sessions.items() if ttl > 0 and now - s.last_used > ttl]
        cap = max(1024, 4 * self.gw.limits.max_sessions)
        if len(self.sessions) - len(stale) >= cap:
            bare = sorted((s.last_used, k) for k, s in self.sessions.items() if s.episode is None and k not in stale)
            stale += [k for _, k in bare[: len(self.sessions) - len(stale) - cap + 1]]
        for key in stale:
            s = self.sessions.pop(key)
            if s.episode is not None:
                self.reset_tools.pop(s.episode, None)


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("toolgym")
    except Exception:  # noqa: BLE001 - a source checkout without metadata
        return "0"


def add_mcp_routes(app: FastAPI, gateway: Any) -> McpServer:
    """Serve MCP on ``app`` over ``gateway``'s reset/step/close (called by ``Gateway._build``)."""
    srv = McpServer(gateway)

    def peer(r: Request | WebSocket) -> str:
        return r.client.host if r.client else "unknown"

    def reply(body: dict[str, Any] | None, status: int, headers: dict[str, str] | None = None) -> Response:
        if body is None:
            return Response(status_code=202, headers=headers)
        return JSONResponse(body, status_code=status, headers=headers)

    @app.post("/mcp")
    async def mcp_post(request: Request) -> Response:
        try:
            owner = gateway.owner(request.headers, peer(request))
        except WireError as e:
            return reply(mw.error_response(None, mw.from_wire_error(e)), 401)
        raw = await request.body()  # BodyLimit has already answered 413 (as JSON-RPC) for a body over the limit
        try:
            msg = mw.parse_message(raw)
        except RpcError as e:
            return reply(mw.error_response(None, e), e.http_status)
        version = request.headers.get(VERSION_HEADER)
        if version is not None and version not in mw.SUPPORTED_VERSIONS:
            e = RpcError(mw.INVALID_REQUEST, f"unsupported MCP-Protocol-Version {version!r}; this server speaks "
                                             f"{', '.join(mw.SUPPORTED_VERSIONS)}")
            return reply(mw.error_response(msg.get("id") if isinstance(msg, dict) else None, e), 400)
        key = request.headers.get(SESSION_HEADER)
        sess = None
        if key is not None and not (isinstance(msg, dict) and msg.get("method") == "initialize"):
            sess = srv.sessions.get(key)
            if sess is None or sess.owner != owner:  # the spec's answer to an ended session: start a new one
                e = RpcError(mw.INVALID_REQUEST, f"no MCP session {key!r} (deleted, expired, or never created): initialize again")
                return reply(mw.error_response(msg.get("id") if isinstance(msg, dict) else None, e), 404)
        issued: dict[str, str] = {}

        async def on_initialize(params: dict[str, Any]) -> dict[str, Any]:
            negotiated = mw.negotiate(params)
            data = mw.reset_from_query(list(request.query_params.multi_items()))
            srv.prune()
            new = McpSession(owner, negotiated)
            sid, payload = (await srv.bind(new, data, owner)) if data else (None, None)
            token = secrets.token_urlsafe(24)
            srv.sessions[token] = new
            issued[SESSION_HEADER] = token
            return srv.init_result(negotiated, sid, payload)

        body, status = await srv.answer(msg, sess, owner, on_initialize)
        return reply(body, status, issued or None)

    @app.delete("/mcp")
    async def mcp_delete(request: Request) -> Response:
        try:
            owner = gateway.owner(request.headers, peer(request))
        except WireError as e:
            return reply(mw.error_response(None, mw.from_wire_error(e)), 401)
        key = request.headers.get(SESSION_HEADER, "")
        sess = srv.sessions.get(key)
        if sess is None or sess.owner != owner:
            return reply(mw.error_response(None, RpcError(mw.INVALID_REQUEST, f"no MCP session {key!r} to delete")), 404)
        del srv.sessions[key]
        async with sess.lock:
            if sess.episode is not None:
                await srv.close_episode(sess.episode, owner)
                sess.episode = None
        return Response(status_code=204)

    @app.get("/mcp")
    async def mcp_get() -> Response:
        # No server-initiated messages: the spec's answer is 405, and clients then only POST.
        return Response(status_code=405, headers={"Allow": "POST, DELETE"})

    @app.websocket("/mcp")
    async def mcp_ws(ws: WebSocket) -> None:
        await _serve_ws(srv, ws, peer(ws))

    return srv


async def _serve_ws(srv: McpServer, ws: WebSocket, peer: str) -> None:
    """One socket = one MCP session; its episode (from the query string or openenv/session/create)
    is closed as soon as the socket closes or drops."""
    gw = srv.gw
    try:
        owner = gw.owner(ws.headers, peer)
    except WireError as e:
        await ws.close(code=1008, reason=e.message[:120])
        return
    await ws.accept()
    sess = McpSession(owner)

    async def on_initialize(params: dict[str, Any]) -> dict[str, Any]:
        sess.version = mw.negotiate(params)
        return srv.init_result(sess.version, sess.episode, None)

    try:
        try:  # the query string's episode at connect: tools/* work with or without an initialize
            data = mw.reset_from_query(list(ws.query_params.multi_items()))
            if data:
                await srv.bind(sess, data, owner)
        except (RpcError, WireError) as e:
            err = e if isinstance(e, RpcError) else mw.from_wire_error(e)
            await ws.send_json(mw.error_response(None, err))
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                break
            text = msg.get("text")
            if text is None or len(text) > gw.limits.max_frame_chars:
                why = "binary frames are not accepted: send JSON-RPC text frames" if text is None else \
                    f"frame of {len(text)} characters is over the limit of {gw.limits.max_frame_chars}"
                await ws.send_json(mw.error_response(None, RpcError(mw.INVALID_REQUEST, why)))
                continue
            try:
                parsed = mw.parse_message(text)
            except RpcError as e:
                await ws.send_json(mw.error_response(None, e))
                continue
            body, _ = await srv.answer(parsed, sess, owner, on_initialize)
            if body is not None:
                await ws.send_json(body)
    except WebSocketDisconnect:
        pass
    finally:
        if sess.episode is not None and await srv.close_episode(sess.episode, owner):
            srv.closed_on_disconnect += 1
            log.info("mcp websocket gone: closed its episode %s", sess.episode)
        try:
            await ws.close()
        except RuntimeError:  # already closed by the peer
            pass
