"""The on-disk cache of parsed BFCL categories (why loading a suite takes well under a second).

Parsing BFCL's JSON and mapping its types costs seconds; the parsed tasks are pickled once per
category under :func:`cache_dir`. A cache file is named by a digest of everything its content
depends on (this schema version, the ``bfcl_eval`` version, the dataclass layouts, the data files'
stamps), so a stale file is never read: it is simply not found. Only the server writes these files,
in the user's cache directory; an unreadable or foreign one is ignored and rebuilt.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import logging
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

from toolgym.env.tasks import bfcl as _bfcl
from toolgym.env.types import AnswerCheck, Task, ToolSpec

__all__ = ["CACHE_SCHEMA_VERSION", "NoGC", "cache_dir", "cache_key", "cache_path", "read_cache", "write_cache"]

# The suite module's logger: cache warnings have always been reported under it.
log = logging.getLogger("toolgym.env.tasks.suite")

CACHE_SCHEMA_VERSION = 1
"""Bump when the parsed form of a BFCL task changes (mapping, metadata, ...)."""


def cache_dir() -> Path:
    """``$TOOLGYM_CACHE_DIR``, else ``$XDG_CACHE_HOME/toolgym``, else ``~/.cache/toolgym``."""
    explicit = os.environ.get("TOOLGYM_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "toolgym"
    return Path.home() / ".cache" / "toolgym"


def _layout_fingerprint() -> str:
    return ";".join(
        f"{cls.__name__}:{','.join(f.name for f in dataclasses.fields(cls))}" for cls in (Task, ToolSpec, AnswerCheck)
    )


def _file_stamp(resource: Any) -> str:
    try:
        st = os.stat(os.fspath(resource))
        return f"{resource.name}:{st.st_size}:{st.st_mtime_ns}"
    except (TypeError, OSError):
        data = resource.read_bytes()  # not a plain file (zip): hash the content
        return f"{resource.name}:{hashlib.sha1(data).hexdigest()}"


def cache_key(category: str) -> str:
    parts = [
        f"schema={CACHE_SCHEMA_VERSION}",
        f"bfcl_eval={_bfcl.bfcl_version()}",
        f"layout={_layout_fingerprint()}",
        f"pickle={pickle.HIGHEST_PROTOCOL}",
        f"category={category}",
        *(_file_stamp(f) for f in _bfcl.data_files(category)),
    ]
    return "\n".join(parts)


def cache_path(category: str, key: str) -> Path:
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_dir() / f"bfcl-v4-{category}-{digest}.pkl"


class NoGC:
    """Pause the cyclic GC while allocating many containers (2-4x faster unpickling)."""

    def __enter__(self) -> None:
        self._was = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self._was:
            gc.enable()


def read_cache(path: Path, key: str) -> tuple[Task, ...] | None:
    try:
        with open(path, "rb") as fh, NoGC():
            payload = pickle.load(fh)
    except FileNotFoundError:
        return None
    except Exception as exc:  # corrupt / truncated / incompatible: rebuild
        log.warning("ignoring unreadable task cache %s (%s: %s); rebuilding", path, type(exc).__name__, exc)
        return None
    if (
        not isinstance(payload, dict)
        or payload.get("key") != key
        or not isinstance(payload.get("tasks"), tuple)
        or not all(isinstance(t, Task) for t in payload["tasks"])
    ):
        log.warning("ignoring task cache %s: unexpected content; rebuilding", path)
        return None
    return payload["tasks"]


def write_cache(path: Path, key: str, tasks: tuple[Task, ...]) -> None:
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            pickle.dump({"key": key, "tasks": tasks}, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        tmp = None
    except Exception as exc:  # read-only home, full disk ...: only costs speed
        log.info("could not write task cache %s (%s: %s)", path, type(exc).__name__, exc)
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
