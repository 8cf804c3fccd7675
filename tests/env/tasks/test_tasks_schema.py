"""BFCL → JSON Schema mapping and the hand-written argument validator."""

from __future__ import annotations

import copy
import time

import pytest

from toolgym.env.tasks.schema import BFCL_TYPE_MAP, bfcl_to_json_schema, validate_args


def _params(**props):
    return {"type": "dict", "properties": props, "required": list(props)}


# --------------------------------------------------------------------------- mapping


@pytest.mark.parametrize(
    "bfcl_type, json_type",
    [
        ("dict", "object"),
        ("float", "number"),
        ("integer", "integer"),
        ("tuple", "array"),
        ("string", "string"),
        ("boolean", "boolean"),
        ("array", "array"),
        ("any", None),
        ("", None),
        ("long", "integer"),
        ("double", "number"),
        ("char", "string"),
        ("String", "string"),
        ("Boolean", "boolean"),
        ("ArrayList", "array"),
        ("Array", "array"),
        ("HashMap", "object"),
        ("Bigint", "integer"),
        ("SomethingNew", None),
    ],
)
def test_every_type_maps_and_keeps_original(bfcl_type, json_type):
    out = bfcl_to_json_schema(_params(x={"type": bfcl_type, "description": "d"}))
    node = out["properties"]["x"]
    assert node.get("type") == json_type
    assert node["x-bfcl-type"] == bfcl_type
    assert node["description"] == "d"


def test_root_is_object_and_keeps_fields():
    src = {"type": "dict", "properties": {}, "required": [], "optional": ["a"]}
    out = bfcl_to_json_schema(src)
    assert out == {"type": "object", "properties": {}, "required": [], "optional": ["a"], "x-bfcl-type": "dict"}
    # properties missing altogether
    assert bfcl_to_json_schema({"type": "dict"})["properties"] == {}


def test_nested_items_and_properties_and_extras_kept():
    src = _params(
        pts={"type": "array", "items": {"type": "tuple", "items": {"type": "float"}}, "description": "points"},
        cfg={
            "type": "dict",
            "properties": {"mode": {"type": "string", "enum": ["a", "b"], "default": "a"}, "w": {"type": "any"}},
            "required": ["mode"],
            "optional": True,
        },
        objs={"type": "array", "items": {"type": "dict", "properties": {"n": {"type": "integer", "maximum": 3}}}},
    )
    before = copy.deepcopy(src)
    out = bfcl_to_json_schema(src)
    assert src == before, "input must not be mutated"
    pts = out["properties"]["pts"]
    assert pts["type"] == "array" and pts["x-bfcl-type"] == "array"
    assert pts["items"] == {
        "type": "array",
        "x-bfcl-type": "tuple",
        "items": {"type": "number", "x-bfcl-type": "float"},
    }
    cfg = out["properties"]["cfg"]
    assert cfg["type"] == "object" and cfg["required"] == ["mode"] and cfg["optional"] is True
    assert cfg["properties"]["mode"] == {"type": "string", "x-bfcl-type": "string", "enum": ["a", "b"], "default": "a"}
    assert cfg["properties"]["w"] == {"x-bfcl-type": "any"}
    assert out["properties"]["objs"]["items"]["properties"]["n"] == {
        "type": "integer",
        "x-bfcl-type": "integer",
        "maximum": 3,
    }


def test_java_and_javascript_top_level_are_strings():
    src = _params(
        m={"type": "HashMap", "description": "a map"},
        xs={"type": "ArrayList", "items": {"type": "String"}},
        b={"type": "boolean"},
        a={"type": "any"},
    )
    out = bfcl_to_json_schema(src, "java")
    props = out["properties"]
    for name, orig in [("m", "HashMap"), ("xs", "ArrayList"), ("b", "boolean"), ("a", "any")]:
        assert props[name]["type"] == "string"
        assert props[name]["x-bfcl-type"] == orig
    # nested nodes keep their own mapping (the AST matcher reads the element type)
    assert props["xs"]["items"] == {"type": "string", "x-bfcl-type": "String"}
    js = bfcl_to_json_schema(_params(o={"type": "dict", "properties": {"k": {"type": "float"}}}), "javascript")
    assert js["properties"]["o"]["type"] == "string"
    assert js["properties"]["o"]["properties"]["k"] == {"type": "number", "x-bfcl-type": "float"}


def test_type_map_covers_bfcl_gorilla_table():
    try:
        from bfcl_eval.constants.type_mappings import GORILLA_TO_OPENAPI
    except Exception:
        pytest.skip("bfcl_eval constants not importable")
    for name, openapi in GORILLA_TO_OPENAPI.items():
        assert name in BFCL_TYPE_MAP
        mapped = BFCL_TYPE_MAP[name]
        # BFCL sends "any" as string to providers; toolgym leaves it unconstrained
        assert mapped == openapi or (mapped is None and name.lower() == "any")


def test_all_real_bfcl_schemas_map(bfcl_suite):
    types_seen = set()

    def walk(node):
        if isinstance(node, dict):
            if "x-bfcl-type" in node:
                types_seen.add(node["x-bfcl-type"])
                if node["x-bfcl-type"] in ("dict", "float", "tuple"):
                    assert node.get("type") in ("object", "number", "array", "string")
            for k in ("properties",):
                for sub in (node.get(k) or {}).values():
                    walk(sub)
            if "items" in node:
                walk(node["items"])

    for task in bfcl_suite:
        for tool in task.tools:
            assert tool.parameters["type"] == "object"
            walk(tool.parameters)
    assert {"dict", "float", "integer", "string", "boolean", "array", "tuple", "any"} <= types_seen


# --------------------------------------------------------------------------- validation

SCHEMA = bfcl_to_json_schema(
    {
        "type": "dict",
        "properties": {
            "n": {"type": "integer"},
            "x": {"type": "float"},
            "s": {"type": "string", "enum": ["a", "b"]},
            "flag": {"type": "boolean"},
            "pt": {"type": "tuple", "items": {"type": "integer"}},
            "anything": {"type": "any"},
            "cfg": {
                "type": "dict",
                "properties": {"k": {"type": "string"}, "v": {"type": "float"}},
                "required": ["k"],
            },
            "rows": {
                "type": "array",
                "items": {"type": "dict", "properties": {"id": {"type": "integer"}}, "required": ["id"]},
            },
            "tags": {"type": "array", "items": {"type": "string"}, "enum": ["red", "blue"]},
            "free": {"type": "dict"},
        },
        "required": ["n"],
    }
)


def test_valid_args():
    assert validate_args({"n": 1}, SCHEMA) == []
    args = {
        "n": 3,
        "x": 2,  # int accepted for number
        "s": "a",
        "flag": False,
        "pt": (1, 2),
        "anything": {"whatever": [1]},
        "cfg": {"k": "key", "v": 1.5},
        "rows": [{"id": 1}, {"id": 2}],
        "tags": ["red", "blue"],
        "free": {"any": "keys"},
    }
    assert validate_args(args, SCHEMA) == []


@pytest.mark.parametrize(
    "args, fragment",
    [
        ({}, "missing required parameter 'n'"),
        ({"n": 1, "zzz": 2}, "unexpected parameter 'zzz'"),
        ({"n": "1"}, "parameter 'n': expected integer, got string"),
        ({"n": 1.5}, "parameter 'n': expected integer, got number"),
        ({"n": True}, "parameter 'n': expected integer, got boolean"),
        ({"n": 1, "x": True}, "parameter 'x': expected number, got boolean"),
        ({"n": 1, "x": "2.0"}, "parameter 'x': expected number, got string"),
        ({"n": 1, "s": "c"}, "parameter 's': 'c' is not one of ['a', 'b']"),
        ({"n": 1, "flag": 1}, "parameter 'flag': expected boolean, got integer"),
        ({"n": 1, "pt": [1, "2"]}, "parameter 'pt[1]': expected integer, got string"),
        ({"n": 1, "cfg": {"v": 1.0}}, "missing required parameter 'cfg.k'"),
        ({"n": 1, "cfg": {"k": "a", "q": 1}}, "unexpected parameter 'cfg.q'"),
        ({"n": 1, "cfg": {"k": 5}}, "parameter 'cfg.k': expected string, got integer"),
        ({"n": 1, "rows": [{"id": 1}, {}]}, "missing required parameter 'rows[1].id'"),
        ({"n": 1, "rows": [{"id": "x"}]}, "parameter 'rows[0].id': expected integer"),
        ({"n": 1, "tags": ["red", "green"]}, "parameter 'tags[1]': 'green' is not one of"),
        ({"n": 1, "cfg": []}, "parameter 'cfg': expected object, got array"),
    ],
)
def test_violations(args, fragment):
    errors = validate_args(args, SCHEMA)
    assert errors, f"expected a violation for {args}"
    assert any(fragment in e for e in errors), errors


def test_non_object_args_and_multiple_errors():
    assert validate_args([1, 2], SCHEMA) == ["arguments must be an object, got array [1, 2]"]
    errors = validate_args({"zzz": 1, "x": "no"}, SCHEMA)
    assert len(errors) == 3  # missing n, unexpected zzz, wrong type x


def test_enum_bool_vs_int_and_string_enum_on_boolean():
    schema = {"type": "object", "properties": {"e": {"type": "integer", "enum": [1, 2]}}}
    assert validate_args({"e": 1}, schema) == []
    assert validate_args({"e": True}, schema)  # True == 1 must not sneak through
    # BFCL has boolean parameters whose enum holds strings: a listed value is accepted
    b = {"type": "object", "properties": {"u": {"type": "boolean", "enum": ["True", "False", "dontcare"]}}}
    assert validate_args({"u": "dontcare"}, b) == []
    assert validate_args({"u": True}, b) == []
    assert validate_args({"u": "maybe"}, b)


def test_null_only_where_allowed_and_additional_properties():
    s = {
        "type": "object",
        "properties": {
            "a": {"type": "string", "default": None},
            "b": {"type": "string"},
            "c": {"type": "string", "nullable": True},
        },
    }
    assert validate_args({"a": None, "c": None}, s) == []
    assert validate_args({"b": None}, s) == ["parameter 'b': expected string, got null None"]
    open_schema = {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": True}
    assert validate_args({"a": "x", "extra": 1}, open_schema) == []
    typed_extra = {"type": "object", "properties": {}, "additionalProperties": {"type": "integer"}}
    assert validate_args({"q": 1}, typed_extra) == []
    assert validate_args({"q": "1"}, typed_extra) == ["parameter 'q': expected integer, got string '1'"]
    union = {"type": "object", "properties": {"u": {"type": ["string", "integer"]}}}
    assert validate_args({"u": 3}, union) == [] and validate_args({"u": "3"}, union) == []
    assert validate_args({"u": 3.5}, union)


def test_plain_json_schema_tools_work():
    s = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    }
    assert validate_args({"city": "Paris", "days": 3}, s) == []
    assert validate_args({"days": 3}, s) == ["missing required parameter 'city'"]
    assert validate_args({}, {}) == []


def test_validate_is_fast():
    args = {"n": 3, "x": 2.5, "s": "a", "cfg": {"k": "key", "v": 1.5}, "rows": [{"id": 1}, {"id": 2}]}
    validate_args(args, SCHEMA)
    n = 2000
    t0 = time.perf_counter()
    for _ in range(n):
        validate_args(args, SCHEMA)
    per_call = (time.perf_counter() - t0) / n
    assert per_call < 100e-6, f"{per_call * 1e6:.1f} µs per call"
