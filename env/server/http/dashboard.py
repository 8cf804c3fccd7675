"""The gateway's live dashboard (``GET /``) and Prometheus endpoint (``GET /metrics``).

Routes: ``GET /`` (the page, :file:`static/dashboard.html`), ``GET /dashboard/static/<file>`` (its
script and style, shipped in the package: nothing is fetched from the internet),
``GET /dashboard/data`` (the JSON the page polls every second), ``GET /dashboard/episode/<id>``
(one recent episode with its transcript, loaded when a row is expanded) and ``GET /metrics``.

With bearer tokens configured, the data, episode and metrics routes ask for one like the env
routes do (they show transcripts); the page itself is static, and sends the token it finds in its
URL fragment (``/#token=...``: a fragment never reaches the server or its logs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from toolgym.env.server.http import wire
from toolgym.env.server.http.dashboard_data import Board, safe_config
from toolgym.env.server.http.dashboard_metrics import CONTENT_TYPE, registry_for, render
from toolgym.env.server.http.wire import WireError
from toolgym.env.sessions.errors import StoreUnavailable


STATIC = Path(__file__).parent / "static"
_FILES = {"dashboard.js": "text/javascript; charset=utf-8", "dashboard.css": "text/css; charset=utf-8"}
# The page is a bundled file, never a template filled from request data; it may run only its own script.
_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'"


def add_dashboard_routes(app: FastAPI, gateway: Any) -> Board:  # gateway: the Gateway (no import: it imports us)
    """Add the dashboard and /metrics to the gateway's app; returns the board (tests read it)."""
    env = gateway.env
    # The EnvServicer keeps the ServerConfig it was built from; only safe_config's fields leave the process.
    cfg = getattr(env, "config", None)
    board = Board(env, max_sessions=gateway.limits.max_sessions, name=gateway.name, version=gateway.version,
                  config=safe_config(cfg, auth=getattr(gateway, "_auth", None) is not None))
    registry = registry_for(board)

    async def off_loop(fn: Any, *args: Any) -> Any:
        try:
            return await gateway._call(fn, *args)  # the gateway's pool: a store read never blocks the event loop
        except StoreUnavailable as e:  # a durable store that is down: say so, like a step would
            raise WireError(wire.EXECUTION_ERROR, str(e), 503) from None

    def check(request: Request) -> None:
        gateway.owner(request.headers, request.client.host if request.client else "unknown")  # 401 without the token

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "dashboard.html", media_type="text/html; charset=utf-8",
                            headers={"Content-Security-Policy": _CSP, "Cache-Control": "no-cache"})

    @app.get("/dashboard/static/{name}", include_in_schema=False)
    async def static(name: str) -> FileResponse:
        if name not in _FILES:  # a fixed list: no path from the request ever reaches the filesystem
            raise WireError(wire.VALIDATION_ERROR, f"no dashboard file {name!r}", 404)
        return FileResponse(STATIC / name, media_type=_FILES[name], headers={"Cache-Control": "no-cache"})

    @app.get("/dashboard/data")
    async def data(request: Request) -> JSONResponse:
        check(request)
        return JSONResponse(await off_loop(board.snapshot), headers={"Cache-Control": "no-store"})

    @app.get("/dashboard/episode/{rid}")
    async def episode(request: Request, rid: str) -> dict[str, Any]:
        check(request)
        found = board.episode(rid)
        if found is None:
            raise WireError(wire.SESSION_ERROR, f"episode {rid!r} is not among the {len(board.book.recent)} recent ones", 404)
        return found

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        check(request)
        return Response(await off_loop(render, registry), media_type=CONTENT_TYPE)

    return board
