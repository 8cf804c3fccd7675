"""The standard gRPC health service (``protos/grpc/health/v1/health.proto``), ``List`` included.

grpcio-health-checking's servicer answers ``Check`` and ``Watch`` but not ``List``, which the
current health.proto (the one shipped in ``protos/`` for other languages) declares: a client
generated from it would get UNIMPLEMENTED. ``List`` here is the snapshot the proto describes.
"""

from __future__ import annotations

import threading

import grpc
from grpc_health.v1 import health, health_pb2

#: ``List`` answers RESOURCE_EXHAUSTED past this many services, as health.proto allows; a
#: toolgym server registers fewer than ten.
MAX_LISTED = 1000


class HealthServicer(health.HealthServicer):
    """``grpc_health``'s servicer, plus ``List`` over every service given a status."""

    def __init__(self) -> None:
        self._statuses: dict[str, int] = {}  # before the base's __init__, should it ever call set()
        self._list_lock = threading.Lock()
        super().__init__()

    def set(self, service: str, status: int) -> None:  # noqa: A003 - the base class's name
        with self._list_lock:
            self._statuses[service] = status
        super().set(service, status)

    def enter_graceful_shutdown(self) -> None:
        with self._list_lock:
            self._statuses = dict.fromkeys(self._statuses, health_pb2.HealthCheckResponse.NOT_SERVING)
        super().enter_graceful_shutdown()

    def List(self, request: health_pb2.HealthListRequest, context: grpc.ServicerContext) -> health_pb2.HealthListResponse:
        with self._list_lock:
            statuses = dict(self._statuses)
        if len(statuses) > MAX_LISTED:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"{len(statuses)} services have a health status; List returns at most {MAX_LISTED}: Check them one by one")
        resp = health_pb2.HealthListResponse()
        for name, status in statuses.items():
            resp.statuses[name].status = status
        return resp
