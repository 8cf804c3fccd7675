"""The server interceptor every RPC passes first: authentication, safe decoding, per-client limits.

Everything hangs off one :class:`Guard` server interceptor, so every RPC passes the same
checks in the same order before any servicer code runs:

1. **Authentication** (when tokens are configured): the call must carry metadata
   ``authorization: Bearer <token>``; tokens are compared through SHA-256 digests with
   :func:`hmac.compare_digest` (constant time, and no length leak). Health checking and
   reflection stay open so load balancers and probes work without a secret. Unauthenticated
   payloads are never parsed (their deserializer is the identity).
2. **Request decoding** with an actionable error: a message protobuf cannot decode (most
   often a ``string`` field holding invalid UTF-8) is INVALID_ARGUMENT naming the message
   type, instead of gRPC's bare "Exception deserializing request!".
3. **Per-client limits**: requests in flight per client, and concurrent streaming RPCs
   server-wide (each stream holds a handler thread for its lifetime; capping streams keeps
   threads free for unary calls, so open streams can never starve Step or health).
   Per-client sessions are counted by the session store (see ``current_client``); message size
   is gRPC's own ``max_receive_message_length`` (RESOURCE_EXHAUSTED before any Python runs).

A client is identified by, in this order: the name of its bearer token (a token file may
hold several named tokens, one per tenant), the common name of its TLS client certificate
(mTLS), else its IP address. Nothing here logs metadata or the presented credential.

The tokens come from :mod:`toolgym.env.server.credentials`.
"""

from __future__ import annotations

import collections
import contextvars
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import grpc

from toolgym.env.server.credentials import TOKEN_ENV, Tokens

# The logger of the module this was split from, so log configuration and filters keep working.
log = logging.getLogger("toolgym.server.security")

OPEN_METHODS = frozenset({
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
})

_CLIENT: contextvars.ContextVar[str] = contextvars.ContextVar("toolgym_client", default="")


def current_client() -> str:
    """Identity of the client of the RPC running on this thread ("" outside a guarded RPC).

    gRPC runs every RPC in its own ``contextvars.Context``; :class:`Guard` sets this before the
    servicer runs, so servicers can attribute resources (sessions) to a client.
    """
    return _CLIENT.get()


# ---------------------------------------------------------------------------- the interceptor
class _BadRequest:
    """What the safe deserializer returns for bytes protobuf cannot decode."""

    __slots__ = ("message",)

    def __init__(self, message: str):
        self.message = message


def _safe_deserializer(deserialize: Callable[[bytes], Any] | None, method: str) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def run(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception as e:  # noqa: BLE001 - any decode failure is the client's malformed message
            detail = str(e)
            hint = ("a string field holds bytes that are not valid UTF-8 — decode model output with "
                    "errors='replace' before sending" if "UTF-8" in detail else "the bytes are not a valid protobuf message of this type")
            return _BadRequest(f"{method}: could not decode the request ({detail}); {hint}")

    return run


def _peer_ip(peer: str) -> str:
    if peer.startswith("ipv4:"):
        return peer[5:].rsplit(":", 1)[0]
    if peer.startswith("ipv6:"):
        return peer[5:].rsplit(":", 1)[0].strip("[]")
    return peer.split(":", 1)[0] or "unknown"


def identify(context: grpc.ServicerContext, token_name: str | None) -> str:
    if token_name:
        return f"token:{token_name}"
    try:
        cn = context.auth_context().get("x509_common_name")
    except Exception:  # noqa: BLE001 - no auth context on insecure ports
        cn = None
    if cn:
        return "cert:" + cn[0].decode("utf-8", "replace")
    return "ip:" + _peer_ip(context.peer() or "")


@dataclass
class Limits:
    max_inflight_per_client: int = 0  # 0 = unlimited
    max_streams: int = 0  # 0 = unlimited


class Guard(grpc.ServerInterceptor):
    """Authentication, safe decoding, client identity and limits for every RPC (module docstring)."""

    def __init__(self, tokens: Tokens | None, limits: Limits):
        self._tokens = tokens
        self._limits = limits
        self._lock = threading.Lock()
        self._inflight: collections.Counter[str] = collections.Counter()
        self._streams = 0
        self.counters: collections.Counter[str] = collections.Counter()
        self._last_auth_log = 0.0

    # -------------------------------------------------------------- accounting
    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"inflight": sum(self._inflight.values()), "inflight_clients": len(self._inflight), "streams": self._streams,
                    **dict(self.counters)}

    def _acquire(self, who: str, streaming: bool) -> str | None:
        """Reserve a slot; returns a RESOURCE_EXHAUSTED message instead when a limit is hit."""
        lim = self._limits
        with self._lock:
            if lim.max_inflight_per_client and self._inflight[who] >= lim.max_inflight_per_client:
                self.counters["rejected_inflight"] += 1
                return (f"client {who} already has {self._inflight[who]} requests in flight, the per-client limit "
                        f"(--max-inflight-per-client {lim.max_inflight_per_client}); wait for replies, batch (ScoreBatch) "
                        "or multiplex (EnvService.Sessions), or raise the limit")
            if streaming and lim.max_streams and self._streams >= lim.max_streams:
                self.counters["rejected_streams"] += 1
                return (f"the server has {self._streams} streaming calls open, its limit (--max-streams {lim.max_streams}); "
                        "close idle streams, multiplex many sessions over one Sessions stream, or retry later")
            self._inflight[who] += 1
            self._streams += int(streaming)
            self.counters["rpcs"] += 1
        return None

    def _release(self, who: str, streaming: bool) -> None:
        with self._lock:
            self._inflight[who] -= 1
            if self._inflight[who] <= 0:
                del self._inflight[who]
            self._streams -= int(streaming)

    # -------------------------------------------------------------- auth
    def _authenticate(self, method: str, metadata: Any) -> tuple[str | None, str | None]:
        """(token name, None) when allowed; (None, message) when not. Open methods pass as (None, None)."""
        if self._tokens is None or method in OPEN_METHODS:
            return None, None
        values = [v for k, v in (metadata or ()) if k == "authorization"]
        if not values:
            return None, ("this server requires a bearer token: send metadata 'authorization: Bearer <token>' "
                          f"(ToolgymClient(token=...) or set ${TOKEN_ENV})")
        value = values[0] if isinstance(values[0], str) else values[0].decode("utf-8", "replace")
        scheme, _, presented = value.partition(" ")
        name = self._tokens.match(presented.strip()) if scheme.lower() == "bearer" else None
        if name is None:
            return None, f"the bearer token was not accepted; check ${TOKEN_ENV} / --auth-token-file on client and server"
        return name, None

    def _note_auth_failure(self, method: str) -> None:
        with self._lock:
            self.counters["rejected_unauthenticated"] += 1
            n = self.counters["rejected_unauthenticated"]
            now = time.monotonic()
            loud = now - self._last_auth_log > 10.0
            if loud:
                self._last_auth_log = now
        # Rate-limited, and never the presented credential: only the method and a count.
        if loud:
            log.warning("rejected an unauthenticated call to %s (%d rejected so far)", method, n)

    # -------------------------------------------------------------- interception
    def intercept_service(self, continuation: Callable[[Any], grpc.RpcMethodHandler | None],
                          details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        if handler is None:
            return None  # unknown method: gRPC answers UNIMPLEMENTED
        method = details.method
        token_name, denied = self._authenticate(method, details.invocation_metadata)
        if denied is not None:
            self._note_auth_failure(method)
            return _deny(handler, grpc.StatusCode.UNAUTHENTICATED, denied)
        exempt = method in OPEN_METHODS
        streaming = handler.request_streaming or handler.response_streaming
        guard = self

        def enter(context: grpc.ServicerContext) -> str:
            who = identify(context, token_name)
            _CLIENT.set(who)
            if not exempt:
                msg = guard._acquire(who, streaming)
                if msg is not None:
                    context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, msg)
            return who

        def leave(who: str) -> None:
            if not exempt:
                guard._release(who, streaming)

        def check(request: Any, context: grpc.ServicerContext) -> Any:
            if isinstance(request, _BadRequest):
                with guard._lock:
                    guard.counters["bad_requests"] += 1
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
            return request

        def checked_iter(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
            for r in requests:
                if isinstance(r, _BadRequest):
                    # End the request stream; the servicer finishes and the status carries the error.
                    with guard._lock:
                        guard.counters["bad_requests"] += 1
                    context.set_code(grpc.StatusCode.INVALID_ARGUMENT)
                    context.set_details(r.message)
                    return
                yield r

        def failed(e: Exception, context: grpc.ServicerContext) -> None:
            """An exception the servicer did not turn into a status (a bug): INTERNAL naming the RPC,
            logged once — instead of gRPC's UNKNOWN "Exception calling application"."""
            if context.code() is not None:  # context.abort() raised it: its status stands
                raise e
            with guard._lock:
                guard.counters["internal_errors"] += 1
            log.error("%s failed inside the server", method, exc_info=e)
            context.abort(grpc.StatusCode.INTERNAL, f"{method} failed inside the server: {type(e).__name__}: {e}"[:2000])

        deser = _safe_deserializer(handler.request_deserializer, method)
        if handler.unary_unary is not None:
            inner_uu = handler.unary_unary

            def unary_unary(request: Any, context: grpc.ServicerContext) -> Any:
                check(request, context)
                who = enter(context)
                try:
                    return inner_uu(request, context)
                except Exception as e:  # noqa: BLE001
                    failed(e, context)
                finally:
                    leave(who)

            return handler._replace(request_deserializer=deser, unary_unary=unary_unary)
        if handler.stream_unary is not None:
            inner_su = handler.stream_unary

            def stream_unary(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
                who = enter(context)
                try:
                    return inner_su(checked_iter(requests, context), context)
                except Exception as e:  # noqa: BLE001
                    failed(e, context)
                finally:
                    leave(who)

            return handler._replace(request_deserializer=deser, stream_unary=stream_unary)
        if handler.unary_stream is not None:
            inner_us = handler.unary_stream

            def unary_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                check(request, context)
                who = enter(context)
                try:  # released when the stream ends, fails, or the client goes away (generator closed)
                    yield from inner_us(request, context)
                except Exception as e:  # noqa: BLE001
                    failed(e, context)
                finally:
                    leave(who)

            return handler._replace(request_deserializer=deser, unary_stream=unary_stream)
        inner_ss = handler.stream_stream

        def stream_stream(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
            who = enter(context)
            try:
                yield from inner_ss(checked_iter(requests, context), context)
            except Exception as e:  # noqa: BLE001
                failed(e, context)
            finally:
                leave(who)

        return handler._replace(request_deserializer=deser, stream_stream=stream_stream)


def _deny(handler: grpc.RpcMethodHandler, code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    """A handler of the same shape that answers ``code`` without decoding the request."""

    def unary(_request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(code, message)

    def streaming(_request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        context.abort(code, message)
        yield  # pragma: no cover - abort raised

    raw = (lambda b: b)  # noqa: E731 - never parse what an unauthenticated caller sent
    if handler.unary_unary is not None:
        return handler._replace(request_deserializer=raw, unary_unary=unary)
    if handler.stream_unary is not None:
        return handler._replace(request_deserializer=raw, stream_unary=unary)
    if handler.unary_stream is not None:
        return handler._replace(request_deserializer=raw, unary_stream=streaming)
    return handler._replace(request_deserializer=raw, stream_stream=streaming)
