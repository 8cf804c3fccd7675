"""Typed request errors and their gRPC status codes.

Servicers raise :class:`RequestError`; one decorator turns it into ``context.abort`` with the
right code, and any other exception into INTERNAL with a message that names the RPC — a
server thread never dies silently and a client never waits on a swallowed error.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable, TypeVar

import grpc

log = logging.getLogger("toolgym.server")

F = TypeVar("F", bound=Callable[..., Any])


class RequestError(Exception):
    """An error the client can act on; ``code`` is the gRPC status it maps to."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def not_found(msg: str) -> RequestError:
    return RequestError(grpc.StatusCode.NOT_FOUND, msg)


def invalid(msg: str) -> RequestError:
    return RequestError(grpc.StatusCode.INVALID_ARGUMENT, msg)


def exhausted(msg: str) -> RequestError:
    return RequestError(grpc.StatusCode.RESOURCE_EXHAUSTED, msg)


def precondition(msg: str) -> RequestError:
    return RequestError(grpc.StatusCode.FAILED_PRECONDITION, msg)


def unavailable(msg: str) -> RequestError:
    return RequestError(grpc.StatusCode.UNAVAILABLE, msg)


def code_number(code: grpc.StatusCode) -> int:
    return code.value[0]


def rpc_errors(method: F) -> F:
    """Wrap a unary servicer method: RequestError → its status; anything else → INTERNAL."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except RequestError as e:
            context.abort(e.code, e.message)
        except Exception as e:  # a bug: report it to the caller and the log, keep serving
            log.exception("%s failed", method.__name__)
            context.abort(grpc.StatusCode.INTERNAL, f"{method.__name__} failed inside the server: {type(e).__name__}: {e}")

    return wrapper  # type: ignore[return-value]
