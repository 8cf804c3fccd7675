"""Length-prefixed JSON frames over pipes: a 4-byte big-endian length, then UTF-8 JSON.

JSON and never pickle: a worker is untrusted once model code ran near it, and whatever it
sends back is only ever decoded as data. Only the standard library is used here because
this module also runs inside the sandbox.
"""

from __future__ import annotations

import json
import os
import select
import struct
import time
from typing import Any

HEADER = struct.Struct(">I")
MAX_FRAME = 1 << 30


class FrameError(Exception):
    """The peer closed the pipe, sent garbage, or sent a frame that is too large."""


class FrameTimeout(Exception):
    """No complete frame arrived before the deadline."""


def encode(obj: Any) -> bytes:
    data = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    if len(data) > MAX_FRAME:
        raise FrameError(f"frame of {len(data)} bytes is too large")
    return HEADER.pack(len(data)) + data


def write_frame(fd: int, obj: Any) -> None:
    """Write one frame to ``fd`` (blocking). Raises ``OSError`` (e.g. BrokenPipeError)."""
    view = memoryview(encode(obj))
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_exact_blocking(fd: int, n: int) -> bytes:
    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise FrameError("pipe closed")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, max_bytes: int = MAX_FRAME) -> Any:
    """Read one frame from ``fd`` (blocking)."""
    (n,) = HEADER.unpack(_read_exact_blocking(fd, HEADER.size))
    if n > max_bytes:
        raise FrameError(f"frame of {n} bytes exceeds the limit of {max_bytes}")
    try:
        return json.loads(_read_exact_blocking(fd, n).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:  # pragma: no cover - peer bug or hostile peer
        raise FrameError(f"undecodable frame: {e}") from e


class FrameReader:
    """Reads frames from a pipe with a deadline; keeps partial data between calls."""

    def __init__(self, fd: int, max_bytes: int = MAX_FRAME) -> None:
        self.fd = fd
        self.max_bytes = max_bytes
        self.buf = bytearray()

    def _fill(self, n: int, deadline: float | None) -> None:
        while len(self.buf) < n:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise FrameTimeout()
                r, _, _ = select.select([self.fd], [], [], left)
                if not r:
                    raise FrameTimeout()
            chunk = os.read(self.fd, max(65536, n - len(self.buf)))
            if not chunk:
                raise FrameError("pipe closed")
            self.buf += chunk

    def read(self, timeout: float | None = None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        self._fill(HEADER.size, deadline)
        (n,) = HEADER.unpack_from(self.buf)
        if n > self.max_bytes:
            raise FrameError(f"frame of {n} bytes exceeds the limit of {self.max_bytes}")
        self._fill(HEADER.size + n, deadline)
        data = bytes(self.buf[HEADER.size : HEADER.size + n])
        del self.buf[: HEADER.size + n]
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise FrameError(f"undecodable frame: {e}") from e
