"""Where retrieval indexes live: ``<toolgym cache>/retrieval/<kind>-<key>``.

A key is a digest of everything an index depends on (the catalogue's content hash, the model's
fingerprint, this module's :data:`INDEX_VERSION`), so a stale index is never read: it is simply
not found, and rebuilt. Writes go to a temporary sibling renamed into place, so a concurrent reader
never sees half an index. An unwritable cache only costs speed (the index is rebuilt each time).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from toolgym.env.tasks.cache import cache_dir

__all__ = ["INDEX_VERSION", "index_key", "index_path", "model_fingerprint", "write_index_dir"]

log = logging.getLogger(__name__)

INDEX_VERSION = 1
"""Bump when an index's on-disk layout or the text it is built from changes."""


def index_key(*parts: str) -> str:
    return hashlib.sha256("\x00".join((str(INDEX_VERSION), *parts)).encode("utf-8")).hexdigest()[:20]


def index_path(kind: str, key: str) -> Path:
    return cache_dir() / "retrieval" / f"{kind}-{key}"


def model_fingerprint(model_dir: str | Path) -> str:
    """Path plus size and mtime of every file in a sentence-transformers dir: a retrained model
    gets new files, hence a new fingerprint, without hashing 90 MB of weights on every load."""
    root = Path(model_dir).resolve()
    h = hashlib.sha256(str(root).encode("utf-8"))
    for p in sorted(root.rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def write_index_dir(final: Path, build: Callable[[Path], None]) -> bool:
    """Run ``build(tmp_dir)`` and rename the result to ``final``; False when the cache is not
    writable (the caller keeps its in-memory index)."""
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=final.name + ".", suffix=".tmp", dir=final.parent))
    except OSError as e:
        log.warning("retrieval cache %s is not writable (%s); the index will be rebuilt next time", final.parent, e)
        return False
    try:
        build(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.exists():  # another process winning the race is fine; anything else is not
                raise
    except OSError as e:
        log.warning("could not write retrieval index %s (%s)", final, e)
        return False
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return True
