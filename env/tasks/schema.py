"""BFCL parameter schemas → JSON Schema, and a fast hand-written argument validator.

BFCL describes parameters with its own type names (``dict``, ``float``, ``tuple``, ``any``; Java
and JavaScript categories use ``String``, ``ArrayList``, ``HashMap``, ``long`` ...). Tools offered
to a model carry JSON Schema, so :func:`bfcl_to_json_schema` maps every node and records the
original name as ``"x-bfcl-type"`` on that node: the AST matcher needs BFCL's exact semantics
(``float`` vs ``integer``, ``tuple``, ``any``), which the JSON Schema type alone loses.

Mapping (every mapped node also gets ``"x-bfcl-type": <original>``):

==========================================================  =====================
BFCL type                                                   JSON Schema ``type``
==========================================================  =====================
``dict``, ``object``, ``HashMap``, ``Hashtable``            ``object``
``float``, ``double``, ``number``                           ``number``
``integer``, ``int``, ``long``, ``short``, ``byte``,        ``integer``
``Bigint``
``string``, ``str``, ``String``, ``char``                   ``string``
``boolean``, ``bool``, ``Boolean``                          ``boolean``
``array``, ``list``, ``tuple``, ``ArrayList``, ``Array``,   ``array``
``Queue``, ``Stack``, ``Set``
``any``, ``Any``, ``""``, unknown names                     no ``type`` (any value)
==========================================================  =====================

Java / JavaScript (``language="java"`` / ``"javascript"``): BFCL asks the model for every
*top-level* argument as a source-code string (``"new ArrayList<>()"``, ``"true"``) and converts it
when checking, so top-level properties get ``"type": "string"`` (their Java/JS type stays in
``x-bfcl-type``); nested ``items`` / ``properties`` are mapped with the table above.

Everything else on a node (``description``, ``enum``, ``default``, ``required``, ``optional``,
``format``, ``maximum`` ...) is copied unchanged. The input is never mutated.

:func:`validate_args` checks call arguments against such a schema in microseconds (no
``jsonschema`` dependency); see its docstring for the exact rules.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BFCL_TYPE_MAP", "STRING_REPR_LANGUAGES", "bfcl_to_json_schema", "validate_args"]

BFCL_TYPE_MAP: dict[str, str | None] = {
    # python / generic
    "dict": "object",
    "object": "object",
    "float": "number",
    "number": "number",
    "double": "number",
    "integer": "integer",
    "int": "integer",
    "string": "string",
    "str": "string",
    "boolean": "boolean",
    "bool": "boolean",
    "array": "array",
    "list": "array",
    "tuple": "array",
    "any": None,
    "": None,
    "null": "null",
    # Java
    "byte": "integer",
    "short": "integer",
    "long": "integer",
    "char": "string",
    "String": "string",
    "Boolean": "boolean",
    "Array": "array",
    "ArrayList": "array",
    "Queue": "array",
    "Stack": "array",
    "Set": "array",
    "HashMap": "object",
    "Hashtable": "object",
    "Any": None,
    # JavaScript
    "Bigint": "integer",
}
"""BFCL type name → JSON Schema type (``None``: no type constraint)."""

STRING_REPR_LANGUAGES = frozenset({"java", "javascript"})
"""Languages whose top-level arguments BFCL passes as source-code strings."""

_MISSING = object()


def _map_type(t: Any) -> Any:
    """JSON Schema type for a BFCL type value (a name or, rarely, a list of names)."""
    if isinstance(t, str):
        return BFCL_TYPE_MAP.get(t)
    if isinstance(t, list):
        mapped = []
        for x in t:
            m = BFCL_TYPE_MAP.get(x) if isinstance(x, str) else None
            if m is None:
                return None  # any member unconstrained → union unconstrained
            if m not in mapped:
                mapped.append(m)
        return mapped
    return None


def _convert(node: Any, string_repr: bool) -> Any:
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    orig = node.get("type", _MISSING)
    for key, value in node.items():
        if key == "type":
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: _convert(sub, False) for name, sub in value.items()}
        elif key == "items":
            if isinstance(value, list):
                out[key] = [_convert(sub, False) for sub in value]
            else:
                out[key] = _convert(value, False)
        elif key == "additionalProperties" and isinstance(value, dict):
            out[key] = _convert(value, False)
        else:
            out[key] = value
    if orig is not _MISSING:
        mapped = "string" if string_repr else _map_type(orig)
        if mapped is not None:
            out["type"] = mapped
        out["x-bfcl-type"] = orig
    elif string_repr:
        out["type"] = "string"
    return out


def bfcl_to_json_schema(params: dict[str, Any], language: str = "python") -> dict[str, Any]:
    """Map a BFCL ``parameters`` object to JSON Schema (see the module docstring).

    The root is always ``{"type": "object", "properties": {...}, ...}`` (with ``x-bfcl-type`` set
    to the root's original type, normally ``"dict"``), even when BFCL left ``properties`` out.
    """
    if not isinstance(params, dict):
        raise TypeError(f"BFCL parameters must be a dict, got {type(params).__name__}")
    string_repr = language in STRING_REPR_LANGUAGES
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key == "type":
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: _convert(sub, string_repr) for name, sub in value.items()}
        else:
            out[key] = _convert(value, False) if key in ("items", "additionalProperties") else value
    out.setdefault("properties", {})
    result: dict[str, Any] = {"type": "object"}
    result.update(out)
    result["x-bfcl-type"] = params.get("type", "dict")
    return result


# ---------------------------------------------------------------------------------------------
# validation

_JSON_NAME = {
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    list: "array",
    tuple: "array",
    dict: "object",
    type(None): "null",
}


def _type_name(value: Any) -> str:
    return _JSON_NAME.get(type(value), type(value).__name__)


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_type(value: Any, t: str) -> bool:
    vt = type(value)
    if t == "string":
        return vt is str
    if t == "integer":
        return vt is int or (vt is not bool and isinstance(value, int))
    if t == "number":
        return vt is float or vt is int or (vt is not bool and isinstance(value, (int, float)))
    if t == "boolean":
        return vt is bool
    if t == "object":
        return isinstance(value, dict)
    if t == "array":
        return isinstance(value, (list, tuple))
    if t == "null":
        return value is None
    return True  # unknown JSON type name: no constraint


def _in_enum(value: Any, enum: list[Any]) -> bool:
    vt = type(value)
    for e in enum:
        # ``True == 1`` in Python: a bool only matches a bool, a number never matches a bool.
        if e == value and (type(e) is bool) == (vt is bool):
            return True
    return False


def _kind(value: Any) -> int:
    vt = type(value)
    if vt is bool:
        return 0
    if vt is int or vt is float:
        return 1
    if vt is str:
        return 2
    return 3


def _enum_applies(value: Any, enum: list[Any]) -> bool:
    """An enum constrains values of the kinds (bool / number / string / other) it lists.

    BFCL has boolean parameters with enums of strings (``["True", "False", "dontcare"]``): a
    real ``true`` passes the type check and is not rejected by such an enum.
    """
    k = _kind(value)
    return any(_kind(e) == k for e in enum)


def _check(value: Any, schema: dict[str, Any], path: str, errors: list[str]) -> None:
    if not isinstance(schema, dict):
        return
    enum = schema.get("enum")
    if enum is not None and isinstance(enum, list) and _in_enum(value, enum):
        # A listed value is accepted whatever the declared type: BFCL has boolean-typed
        # parameters whose enum holds strings ("True", "False", "dontcare").
        return
    t = schema.get("type")
    if t is not None:
        if value is None and (schema.get("nullable") is True or ("default" in schema and schema["default"] is None)):
            return
        if isinstance(t, list):
            ok = any(_is_type(value, x) for x in t)
            expected = " or ".join(str(x) for x in t)
        else:
            ok = _is_type(value, t)
            expected = t
        if not ok:
            errors.append(f"parameter '{path}': expected {expected}, got {_type_name(value)} {_show(value)}")
            return
    if enum is not None and isinstance(enum, list):
        if isinstance(value, (list, tuple)):
            # BFCL puts ``enum`` on array nodes meaning "each item is one of".
            for i, item in enumerate(value):
                if _enum_applies(item, enum) and not _in_enum(item, enum):
                    errors.append(f"parameter '{path}[{i}]': {_show(item)} is not one of {_show(enum, 120)}")
            return
        if _enum_applies(value, enum):
            errors.append(f"parameter '{path}': {_show(value)} is not one of {_show(enum, 120)}")
            return
    if isinstance(value, dict):
        _check_object(value, schema, path, errors)
    elif isinstance(value, (list, tuple)):
        items = schema.get("items")
        if isinstance(items, dict):
            if items:
                for i, item in enumerate(value):
                    _check(item, items, f"{path}[{i}]", errors)
        elif isinstance(items, list):
            for i, item in enumerate(value):
                if i < len(items):
                    _check(item, items[i], f"{path}[{i}]", errors)


def _check_object(value: dict[str, Any], schema: dict[str, Any], path: str, errors: list[str]) -> None:
    props = schema.get("properties")
    required = schema.get("required")
    prefix = f"{path}." if path else ""
    if isinstance(required, list):
        for name in required:
            if name not in value:
                errors.append(f"missing required parameter '{prefix}{name}'")
    if not isinstance(props, dict):
        extra_schema = schema.get("additionalProperties")
        if isinstance(extra_schema, dict):
            for name, sub in value.items():
                _check(sub, extra_schema, f"{prefix}{name}", errors)
        return
    extra = schema.get("additionalProperties", False)
    for name, sub in value.items():
        sub_schema = props.get(name, _MISSING)
        if sub_schema is _MISSING:
            if extra is True:
                continue
            if isinstance(extra, dict):
                _check(sub, extra, f"{prefix}{name}", errors)
                continue
            allowed = ", ".join(props) if props else "none"
            errors.append(f"unexpected parameter '{prefix}{name}' (allowed: {allowed})")
            continue
        _check(sub, sub_schema, f"{prefix}{name}", errors)


def validate_args(args: Any, schema: dict[str, Any]) -> list[str]:
    """Check call arguments against a tool's JSON Schema; return human-readable violations.

    Rules (an empty list means valid):

    - ``args`` must be an object (dict).
    - every name in ``required`` must be present (at every nesting level);
    - where ``properties`` is given, a name not in it is *unexpected*, unless
      ``additionalProperties`` is ``true`` (anything goes) or a schema (extra values are checked
      against it). This is stricter than JSON Schema's default on purpose: an invented
      parameter is a model error;
    - ``type``: ``integer`` accepts ints but not bools; ``number`` accepts ints and floats but
      not bools; ``array`` accepts lists and tuples; a list of types is a union; no ``type``
      accepts anything. ``null`` is accepted where the schema says ``"nullable": true`` or its
      ``default`` is ``null``;
    - ``enum``: a value listed in the enum is accepted whatever the declared type (BFCL has
      boolean parameters with string enums); an enum only rejects values of a kind (boolean,
      number, string, other) it lists, so ``true`` passes ``{"type": "boolean", "enum":
      ["True", "False"]}``; on an array node, each item must be listed;
    - ``items`` (one schema, or a list for tuple-style positions) and nested ``properties``
      are checked recursively; paths in messages look like ``a.b[2].c``.
    """
    if not isinstance(args, dict):
        return [f"arguments must be an object, got {_type_name(args)} {_show(args)}"]
    errors: list[str] = []
    _check_object(args, schema if isinstance(schema, dict) else {}, "", errors)
    return errors
