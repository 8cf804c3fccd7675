"""Decode a PNG's pixel bytes with the standard library (screenshot tests check they are not blank)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path


def png_pixels(path: Path) -> bytes:
    """The inflated IDAT stream of a PNG (filter bytes included): enough to tell a blank image from a real one."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    return zlib.decompress(idat)
