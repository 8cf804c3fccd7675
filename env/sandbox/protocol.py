"""Length-prefixed JSON frames over pipes: a 4-byte big-endian length, then UTF-8 JSON.

Frames are ASCII-escaped JSON (``ensure_ascii=True``): any Python ``str`` can be encoded,
lone surrogates (``"\ud800"``) included, so hostile text never makes a frame unencodable and
never kills a worker; they arrive as the same ``str`` on the other side. Text that leaves the
sandbox is made valid Unicode once, by :func:`safe_text`.

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
    # ensure_ascii: "\ud800" becomes the escape \ud800, never an UnicodeEncodeError.
    data = json.dumps(obj, ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode("ascii")
    if len(data) > MAX_FRAME:
        raise FrameError(f"frame of {len(data)} bytes is too large")
    return HEADER.pack(len(data)) + data


#: Put where :func:`safe_text` replaced text that is not valid Unicode.
UNENCODABLE_MARK = "[toolgym: text held {n} lone surrogate(s), shown as \\udXXX escapes]"


def unencodable_at(text: str) -> int | None:
    """Index of the first character of ``text`` that UTF-8 cannot encode (a lone surrogate)."""
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError as e:
        return e.start


def safe_text(text: str) -> str:
    """``text`` as valid Unicode: each lone surrogate becomes its ``\\udXXX`` escape, and a
    marker saying so is appended (so the model and a reader see what happened)."""
    if unencodable_at(text) is None:
        return text
    n = sum(1 for ch in text if 0xD800 <= ord(ch) <= 0xDFFF)
    return text.encode("utf-8", errors="backslashreplace").decode("utf-8") + "\n" + UNENCODABLE_MARK.format(n=n)


def find_unencodable(value: Any, path: str = "") -> tuple[str, int] | None:
    """Where in a JSON value (keys included) a string holds a lone surrogate: (path, index)."""
    if isinstance(value, str):
        i = unencodable_at(value)
        return None if i is None else (path or "(value)", i)
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str) and unencodable_at(k) is not None:
                return (f"{path}.{k!r}" if path else repr(k)) + " (a key)", unencodable_at(k) or 0
            hit = find_unencodable(v, f"{path}.{k}" if path else str(k))
            if hit:
                return hit
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            hit = find_unencodable(v, f"{path}[{i}]")
            if hit:
                return hit
    return None


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

    def pending(self) -> bool:
        """Whether a complete frame is already buffered (select() will not report it)."""
        if len(self.buf) < HEADER.size:
            return False
        (n,) = HEADER.unpack_from(self.buf)
        return len(self.buf) >= HEADER.size + n or n > self.max_bytes

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
