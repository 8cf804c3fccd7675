"""Unit tests for the value rules of the BFCL AST matcher (``toolgym.env.reward.ast_values``, used
through ``toolgym.env.reward.ast_match``): string standardisation, types, lists, dicts, the plain
JSON Schema fallback, and adversarial values. Each single-parameter case is also run through BFCL's
own checker when it is importable (see ``one`` in ``ast_match_helpers.py``)."""

from __future__ import annotations

import json
import math
import re
import time

import pytest
from ast_match_helpers import call, node, ok, one
from toolgym.env.reward.ast_match import standardize_string
from toolgym.env.types import ToolSpec

# --------------------------------------------------------------------------- string standardisation


def _bfcl_standardize(s: str) -> str:
    return re.sub(r"[ \,\.\/\-\_\*\^]", "", s).lower().replace("'", '"')


def test_standardize_matches_bfcl_regex_on_every_code_point():
    chars = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    for k in range(0, len(chars), 4096):
        chunk = chars[k : k + 4096]
        assert standardize_string(chunk) == _bfcl_standardize(chunk)
    for c in ("İ", "ẞ", "Σ", "ﬃ", "'", "\t", "\u00a0"):
        assert standardize_string(c * 3 + " a_B") == _bfcl_standardize(c * 3 + " a_B")


@pytest.mark.parametrize(
    "given, allowed, accepted",
    [
        ("April 1, 2024", ["April 1,2024"], True),
        ("april 1 2024", ["April 1, 2024"], True),
        ("New_York", ["new york"], True),
        ("N.Y.-C/*^", ["nyc"], True),
        ("it's", ['it"s'], True),
        ("New\tYork", ["New York"], False),  # only the ASCII space is ignored
        ("New York!", ["New York"], False),
        ("NewYork", ["New York", "Boston"], True),
        ("", ["", "x"], True),  # an empty string given explicitly equals the "" marker
        ("Boston", ["New York"], False),
    ],
)


def test_string_values_standardised(given, allowed, accepted):
    assert one(given, "string", allowed).ok is accepted


# --------------------------------------------------------------------------- types


@pytest.mark.parametrize(
    "value, bfcl_type, allowed, accepted",
    [
        (5, "float", [5.0], True),  # int → float (python only)
        (5, "float", [5.5], False),
        (5.0, "integer", [5], False),  # no float → int
        (True, "integer", [1], False),  # bool is not int
        (1, "boolean", [True], False),
        ("5", "integer", [5], False),
        ("true", "boolean", [True], False),
        (True, "boolean", [True, ""], True),
        (None, "integer", [None, ""], True),  # allowed value of another type: a "variable"
        (5, "string", [5], True),  # ground truth of a non-string type for a string param
        ("5", "string", [5], False),
        ("abc", "any", ["ABC"], True),  # any → str semantics, standardised
        (3, "any", ["3"], False),
        ({"a": 1}, "dict", [{"a": [1]}], True),
        ([1], "dict", [{"a": [1]}], False),
        (1.5, "float", [1.5, 2.5], True),
    ],
)


def test_type_rules(value, bfcl_type, allowed, accepted):
    assert one(value, bfcl_type, allowed).ok is accepted


def test_tuple_is_a_list():
    assert one([1, 2], "tuple", [[1, 2]], items=node("integer")).ok
    assert not one([2, 1], "tuple", [[1, 2]], items=node("integer")).ok
    assert one([1, 2], "tuple", [[1, 2]]).ok  # without items (BFCL raises): no element check


def test_variables_are_compared_without_standardisation():
    # ground truth holds a variable name for an integer parameter
    assert one("my_var", "integer", ["my_var"]).ok
    assert not one("MY_VAR", "integer", ["my_var"]).ok
    assert not one("myvar", "integer", ["my_var"]).ok
    assert not one(3, "integer", ["my_var"]).ok


def test_type_error_message_says_what_was_expected():
    v = one("5", "integer", [5])
    assert "expected type integer, got str '5'" in v.errors[0]


# --------------------------------------------------------------------------- lists


def test_lists_elementwise_standardised_and_ordered():
    allowed = [["New York", "Boston"]]
    assert one(["new_york", "BOSTON"], "array", allowed, items={"type": "string", "x-bfcl-type": "string"}).ok
    assert not one(["Boston", "New York"], "array", allowed, items={"type": "string", "x-bfcl-type": "string"}).ok
    assert not one(["New York"], "array", allowed, items={"type": "string", "x-bfcl-type": "string"}).ok


def test_nested_element_types_one_level_no_int_to_float():
    items = {"type": "number", "x-bfcl-type": "float"}
    assert one([1.0, 2.0], "array", [[1.0, 2.0]], items=items).ok
    v = one([1, 2], "array", [[1.0, 2.0]], items=items)
    assert not v.ok and "elements" in v.errors[0]
    # an element of the allowed list's own type passes the element check (BFCL's variable rule)
    assert one([1, 2], "array", [[1, 2]], items=items).ok
    # "" among the allowed values lets any element types through, and [] equals the "" marker
    assert one([], "array", ["", [1.0]], items=items).ok
    # deeper levels are compared by value only (== semantics): [[1]] == [[1.0]]
    inner = {"type": "array", "x-bfcl-type": "array", "items": {"type": "integer", "x-bfcl-type": "integer"}}
    assert one([[1]], "array", [[[1.0]]], items=inner).ok


def test_list_of_dicts():
    items = {"type": "object", "x-bfcl-type": "dict", "properties": {}}
    allowed = [[{"name": ["Alice"], "age": [30]}, {"name": ["Bob"], "age": [25, ""]}]]
    assert one([{"name": "alice", "age": 30}, {"name": "BOB"}], "array", allowed, items=items).ok
    assert not one([{"name": "Bob"}, {"name": "alice", "age": 30}], "array", allowed, items=items).ok
    assert not one([{"name": "alice", "age": 30}], "array", allowed, items=items).ok
    assert not one([{"name": "alice", "age": 30}, {"name": "bob", "x": 1}], "array", allowed, items=items).ok


# --------------------------------------------------------------------------- dicts


def test_dict_values_keys_and_optional_keys():
    allowed = [{"city": ["San Francisco", "SF"], "unit": ["celsius", ""], "days": [3]}]
    assert one({"city": "san_francisco", "days": 3}, "dict", allowed).ok
    assert one({"city": "sf", "unit": "Celsius", "days": 3}, "dict", allowed).ok
    assert not one({"city": "sf"}, "dict", allowed).ok  # days missing, not optional
    assert not one({"city": "sf", "days": 3, "extra": 1}, "dict", allowed).ok
    assert not one({"city": "LA", "days": 3}, "dict", allowed).ok
    assert one({"city": "sf", "days": 3.0}, "dict", allowed).ok  # values compare with ==
    # several allowed dicts: any one may match
    assert one({"a": 2}, "dict", [{"a": [1]}, {"a": [2]}]).ok


# --------------------------------------------------------------------------- JSON Schema fallback


def test_plain_json_schema_without_x_bfcl_type():
    t = ToolSpec("f", "", {"type": "object", "properties": {
        "n": {"type": "number"}, "i": {"type": "integer"}, "o": {"type": "object"},
        "u": {}, "s": {"type": ["string", "null"]}}, "required": []})
    gt = lambda p, a: [{"f": {p: a}}]
    assert ok([call("f", n=2)], gt("n", [2.0]), [t])
    assert not ok([call("f", i=2.0)], gt("i", [2]), [t])
    assert ok([call("f", o={"k": "V"})], gt("o", [{"k": ["v"]}]), [t])
    assert ok([call("f", u="Hello World")], gt("u", ["hello world"]), [t])  # untyped: by value
    assert ok([call("f", u=2)], gt("u", [2.0]), [t])
    assert not ok([call("f", u=True)], gt("u", [1]), [t])
    assert ok([call("f", s=None)], gt("s", [None]), [t])
    assert ok([call("f", s="A b")], gt("s", ["ab"]), [t])


def test_unknown_x_bfcl_type_checked_by_value():
    assert one("x", "HashMap", ["X"]).ok
    assert not one(1, "HashMap", ["1"]).ok


# --------------------------------------------------------------------------- adversarial values


def test_nan_and_inf_values():
    assert not one(float("nan"), "float", [1.0]).ok
    assert not one(float("nan"), "float", [json.loads("NaN")]).ok  # NaN never equals NaN
    assert one(float("inf"), "float", [float("inf")]).ok
    assert not one(float("-inf"), "float", [float("inf")]).ok
    assert not one(float("nan"), "integer", [1]).ok
    v = one([float("nan"), float("inf")], "array", [[1.0, 2.0]], items={"type": "number", "x-bfcl-type": "float"})
    assert not v.ok and math.isfinite(v.arg_accuracy) and "nan" in v.errors[0]
    assert not one({"a": float("nan")}, "dict", [{"a": [1.0]}]).ok
    assert not one(10**400, "float", [1.0]).ok  # int too large for float: rejected, no crash


def test_huge_and_deeply_nested_arguments():
    deep: object = 1
    for _ in range(400):
        deep = [deep]
    wide = list(range(200_000))
    long = "x" * 1_000_000
    big_dict = {f"k{i}": [i] * 10 for i in range(10_000)}
    items = {"type": "integer", "x-bfcl-type": "integer"}
    for value, bfcl_type, allowed, extra in (
        (deep, "array", [[1]], {"items": items}),
        (wide, "array", [[1, 2]], {"items": items}),
        (wide, "array", [wide[:-1] + [-1]], {"items": items}),
        (long, "string", ["x"], {}),
        (big_dict, "dict", [{"k0": [[0] * 10]}], {}),
        (deep, "dict", [{"a": [1]}], {}),
    ):
        t0 = time.perf_counter()
        v = one(value, bfcl_type, allowed, **extra)
        assert not v.ok and 0.0 <= v.arg_accuracy <= 1.0
        assert all(len(e) < 1000 for e in v.errors)  # messages stay short
        assert time.perf_counter() - t0 < 2.0
    assert one(long, "string", [long.upper()]).ok
    assert one(wide, "array", [list(wide)], items=items).ok
