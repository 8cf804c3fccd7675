"""A type-keeping JSON image of backend state, compared the way BFCL's checker compares it.

BFCL's ``state_checker`` compares live Python objects with ``!=``: ``2 == 2.0`` and
``True == 1`` hold, ``"2" != 2`` and ``(1, 2) != [1, 2]`` hold, dict and set equality ignore
order, the file system's ``File`` / ``Directory`` compare by their own ``__eq__`` (name and
content / contents, never the parent link), and an object without an ``__eq__`` of its own
equals only itself. Toolgym's backend state lives in a sandbox worker and travels as JSON, so it
is snapshotted with :func:`encode` and compared after :func:`decode`:

- plain JSON (``None``, bool, int, finite float, str, list, a dict whose keys are all ``str``)
  stays as it is, so most of a snapshot reads naturally;
- everything else becomes ``{"__py__": KIND, ...}``: ``tuple``, ``set``, ``frozenset``,
  ``dict`` (non-``str`` keys, kept with their types as ``[key, value]`` pairs), ``float``
  (nan / inf), ``bytes``, ``datetime`` / ``date`` / ``time``, ``File``, ``Directory``,
  ``object`` (any other instance: its class, its public attributes and how it compares);
- :func:`decode` rebuilds real Python values (tuple-keyed dicts, sets, tuples, nan) and small
  images of ``File`` / ``Directory`` / objects whose ``==`` is theirs, so ``decode(a) ==
  decode(b)`` is exactly what BFCL computes on the originals. The one unavoidable difference:
  two snapshots of *the same* identity-compared object (or nan) compare unequal here, while
  BFCL would see one object equal to itself; no BFCL backend state holds such a value.

Encoding is deterministic (dict items, set members and pair lists in a canonical order), so
:func:`canonical_json` of a snapshot is a stable fingerprint.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["TAG", "StateImage", "canonical_json", "decode", "encode", "python_equal"]

#: The key that marks a non-JSON value. A real ``str``-keyed dict holding this key is itself
#: encoded as a tagged ``dict``, so nothing a backend stores can be mistaken for a tag.
TAG = "__py__"

_FS_MODULE_SUFFIX = "gorilla_file_system"


def canonical_json(value: Any) -> str:
    """Deterministic compact JSON text of an encoded value."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _order(items: list[Any]) -> list[Any]:
    return sorted(items, key=canonical_json)


def _is_fs(value: Any, name: str) -> bool:
    cls = type(value)
    return cls.__name__ == name and cls.__module__.endswith(_FS_MODULE_SUFFIX)


def _has_own_eq(cls: type) -> bool:
    return getattr(cls, "__eq__", object.__eq__) is not object.__eq__


def encode(value: Any, _seen: frozenset[int] = frozenset()) -> Any:
    """The JSON-able, type-keeping image of ``value`` (see the module docstring)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {TAG: "float", "value": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if isinstance(value, list):
        return [encode(v, _seen) for v in value]
    if isinstance(value, tuple):
        return {TAG: "tuple", "items": [encode(v, _seen) for v in value]}
    if isinstance(value, (set, frozenset)):
        kind = "frozenset" if isinstance(value, frozenset) else "set"
        return {TAG: kind, "items": _order([encode(v, _seen) for v in value])}
    if isinstance(value, Mapping):
        if all(type(k) is str for k in value) and TAG not in value:  # noqa: E721 - str subclasses get tagged
            return {k: encode(value[k], _seen) for k in sorted(value)}
        pairs = [[encode(k, _seen), encode(v, _seen)] for k, v in value.items()]
        return {TAG: "dict", "items": sorted(pairs, key=lambda kv: canonical_json(kv[0]))}
    if isinstance(value, _dt.datetime):
        return {TAG: "datetime", "iso": value.isoformat()}
    if isinstance(value, _dt.date):
        return {TAG: "date", "iso": value.isoformat()}
    if isinstance(value, _dt.time):
        return {TAG: "time", "iso": value.isoformat()}
    if isinstance(value, (bytes, bytearray)):
        return {TAG: "bytes", "hex": bytes(value).hex()}
    if id(value) in _seen:
        return {TAG: "cycle", "class": type(value).__name__}
    seen = _seen | {id(value)}
    if _is_fs(value, "File"):
        return {TAG: "File", "name": encode(value.name, seen), "content": encode(value.content, seen)}
    if _is_fs(value, "Directory"):
        return {TAG: "Directory", "name": encode(value.name, seen), "contents": encode(value.contents, seen)}
    attrs = getattr(value, "__dict__", None)
    public = {k: encode(v, seen) for k, v in sorted(attrs.items()) if not k.startswith("_")} if isinstance(attrs, dict) else {}
    # An object with its own __eq__ is compared by its public attributes (the closest a snapshot
    # can come to its __eq__); one without compares by identity in BFCL: never equal to a copy.
    return {TAG: "object", "class": type(value).__qualname__, "eq": "attrs" if _has_own_eq(type(value)) else "identity",
            "attrs": public, "repr": repr(value)[:200] if not public else ""}


class StateImage:
    """A decoded ``File`` / ``Directory`` / object: equal as the original class defines it."""

    __slots__ = ("kind", "fields")
    __hash__ = None  # type: ignore[assignment]  # like the originals: mutable, unhashable

    def __init__(self, kind: str, fields: dict[str, Any]):
        self.kind = kind
        self.fields = fields

    def __eq__(self, other: object) -> bool:
        if self.kind == "identity":
            return self is other
        return isinstance(other, StateImage) and other.kind == self.kind and other.fields == self.fields

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.fields.items())
        return f"{self.kind}({inner})"


class _Key:
    """A hashable stand-in for an unhashable decoded dict key (only a hostile snapshot has one)."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Key) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return self.text


def _hashable(key: Any, encoded: Any) -> Any:
    try:
        hash(key)
        return key
    except TypeError:
        return _Key(canonical_json(encoded))


def decode(value: Any) -> Any:
    """Python values back from :func:`encode`'s image, equal exactly where the originals are."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    kind = value.get(TAG)
    if not isinstance(kind, str):
        return {k: decode(v) for k, v in value.items()}
    items = value.get("items")
    if kind == "tuple":
        return tuple(decode(v) for v in items or ())
    if kind in ("set", "frozenset"):
        members = [decode(v) for v in items or ()]
        try:
            return set(members) if kind == "set" else frozenset(members)
        except TypeError:  # unhashable members cannot come from a real set; keep them comparable
            return StateImage(kind, {"items": sorted(map(repr, members))})
    if kind == "dict":
        return {_hashable(decode(k), k): decode(v) for k, v in items or ()}
    if kind == "float":
        return float(value.get("value", "nan"))
    if kind == "datetime":
        return _dt.datetime.fromisoformat(value["iso"])
    if kind == "date":
        return _dt.date.fromisoformat(value["iso"])
    if kind == "time":
        return _dt.time.fromisoformat(value["iso"])
    if kind == "bytes":
        return bytes.fromhex(value["hex"])
    if kind == "File":
        return StateImage("File", {"name": decode(value.get("name")), "content": decode(value.get("content"))})
    if kind == "Directory":
        return StateImage("Directory", {"name": decode(value.get("name")), "contents": decode(value.get("contents"))})
    if kind == "object":
        eq = "identity" if value.get("eq") == "identity" else str(value.get("class"))
        return StateImage(eq, {"attrs": decode(value.get("attrs") or {})})
    return StateImage("identity", {"value": kind})  # cycle marker or an unknown tag: equal to nothing


def python_equal(a: Any, b: Any) -> bool:
    """Whether two encoded images are equal under Python's ``==`` on what they encode."""
    return bool(decode(a) == decode(b))
