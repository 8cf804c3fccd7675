"""toolgym's JSONL task format: parsing, canonical round trip, BFCL records, error messages."""

from __future__ import annotations

import json

import pytest

from toolgym.env.tasks.jsonl import (
    TaskFormatError,
    dump_jsonl,
    is_bfcl_record,
    load_jsonl,
    task_from_bfcl_record,
    task_from_dict,
    task_to_dict,
)
from toolgym.env.types import AnswerCheck, Task, ToolSpec

WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
        "required": ["city"],
    },
}


def ast_task(**over):
    d = {
        "id": "w1",
        "kind": "ast",
        "turns": [[{"role": "user", "content": "Weather in Paris?"}]],
        "tools": [WEATHER],
        "ground_truth": [{"get_weather": {"city": ["Paris", "Paris, France"], "unit": ["c", ""]}}],
    }
    d.update(over)
    return d


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- parsing


def test_minimal_ast_task():
    t = task_from_dict(ast_task())
    assert t.kind == "ast" and t.id == "w1"
    assert t.turns == (({"role": "user", "content": "Weather in Paris?"},),)
    assert t.tools == (ToolSpec(**WEATHER),)
    assert t.ground_truth == ({"get_weather": {"city": ["Paris", "Paris, France"], "unit": ["c", ""]}},)
    assert t.optimal_steps == 1 and t.language == "python" and t.answer is None


def test_shorthands_and_aliases():
    t = task_from_dict(
        {
            "id": "q",
            "question": "What is 6*7?",
            "answer": {"mode": "numeric", "expected": "42", "tolerance": 0.5},
            "tools": [{"type": "function", "function": WEATHER}],
        }
    )
    assert t.kind == "final_answer"  # inferred from answer
    assert t.turns == (({"role": "user", "content": "What is 6*7?"},),)
    assert t.answer == AnswerCheck(mode="numeric", expected=("42",), tolerance=0.5)
    assert t.tools[0].name == "get_weather"
    t2 = task_from_dict({"id": "x", "kind": "irrelevance", "turns": ["hi", [{"role": "user", "content": "again"}]]})
    assert len(t2.turns) == 2 and t2.turns[0] == ({"role": "user", "content": "hi"},)
    t3 = task_from_dict({"id": "y", "category": "my_irrelevance", "turns": "hello", "tools": [WEATHER]})
    assert t3.kind == "irrelevance"


def test_multi_turn_task_with_tools_from_bfcl_docs():
    d = {
        "id": "mt",
        "kind": "multi_turn",
        "turns": ["go to docs", [], "list files"],
        "involved_classes": ["GorillaFileSystem"],
        "initial_config": {"GorillaFileSystem": {"root": {"r": {"type": "directory", "contents": {}}}}},
        "ground_truth": [["cd(folder='docs')"], [], ["ls()"]],
        "missed_function": {"1": ["ls"]},
        "metadata": {"excluded_function": ["rm"]},
    }
    try:
        t = task_from_dict(d)
    except TaskFormatError as exc:  # bfcl_eval missing
        pytest.skip(str(exc))
    assert t.optimal_steps == 2
    assert "cd" in t.tool_names and "rm" not in t.tool_names
    assert t.missed_function == {"1": ("ls",)}
    assert t.ground_truth == (["cd(folder='docs')"], [], ["ls()"])
    assert task_from_dict(task_to_dict(t)) == t


def test_round_trip_exact_all_fields(tmp_path):
    t = Task(
        id="full",
        kind="final_answer",
        turns=(({"role": "system", "content": "be brief"}, {"role": "user", "content": "2+2?"}),),
        tools=(ToolSpec(**WEATHER),),
        category="math",
        optimal_steps=2,
        answer=AnswerCheck(mode="regex", expected=(r"^4$", "four"), tolerance=0.0),
        weights={"task_completion": 0.6, "efficiency": 0.0},
        penalties={"wrong_tool": -0.5},
        language="python",
        metadata={"source": "handmade", "nested": {"a": [1, 2]}},
    )
    d = task_to_dict(t)
    assert task_from_dict(d) == t
    assert task_to_dict(task_from_dict(d)) == d
    assert json.loads(json.dumps(d)) == d
    path = tmp_path / "t.jsonl"
    dump_jsonl([t, task_from_dict(ast_task())], path)
    assert load_jsonl(path) == [t, task_from_dict(ast_task())]
    assert not list(tmp_path.glob("*.tmp*"))


def test_bfcl_tasks_round_trip_through_jsonl(bfcl_suite, tmp_path):
    # 40 tasks of every category (the whole suite takes ~1.4 s and adds nothing new)
    sample = []
    for c in bfcl_suite.categories():
        sample.extend(bfcl_suite.filter(categories=[c]).tasks[:40])
    path = tmp_path / "bfcl.jsonl"
    dump_jsonl(sample, path)
    loaded = load_jsonl(path)
    assert len(loaded) == len(sample)
    for a, b in zip(sample, loaded, strict=True):
        assert a == b, a.id


def test_canonical_dict_leaves_defaults_out():
    d = task_to_dict(task_from_dict(ast_task()))
    assert set(d) == {"id", "kind", "turns", "tools", "ground_truth", "optimal_steps"}


# --------------------------------------------------------------------------- BFCL records


def test_bfcl_record_single_turn():
    rec = {
        "id": "simple_python_9000",
        "question": [[{"role": "user", "content": "area of circle r=2"}]],
        "function": [
            {
                "name": "geometry.area_circle",
                "description": "Area of a circle.",
                "parameters": {
                    "type": "dict",
                    "properties": {"radius": {"type": "float"}, "units": {"type": "any"}},
                    "required": ["radius"],
                },
            }
        ],
        "ground_truth": [{"geometry.area_circle": {"radius": [2.0], "units": ["", "m"]}}],
        "source": "made up",
    }
    assert is_bfcl_record(rec)
    for t in (task_from_bfcl_record(rec), task_from_dict(rec)):
        assert t.kind == "ast" and t.category == "simple_python"
        props = t.tools[0].parameters["properties"]
        assert props["radius"] == {"type": "number", "x-bfcl-type": "float"}
        assert props["units"] == {"x-bfcl-type": "any"}
        assert t.ground_truth == tuple(rec["ground_truth"])
        assert t.metadata == {"source": "made up"}


@pytest.mark.parametrize(
    "category, kind",
    [
        ("irrelevance", "irrelevance"),
        ("live_irrelevance", "irrelevance"),
        ("live_relevance", "relevance"),
        ("live_simple", "ast"),
    ],
)
def test_bfcl_record_kind_from_category(category, kind):
    rec = {
        "id": "x_1",
        "category": category,
        "question": [[{"role": "user", "content": "hi"}]],
        "function": [
            {"name": "f", "description": "", "parameters": {"type": "dict", "properties": {}, "required": []}}
        ],
    }
    if kind == "ast":
        rec["ground_truth"] = [{"f": {}}]
    t = task_from_bfcl_record(rec)
    assert t.kind == kind and t.category == category


def test_bfcl_record_multi_turn(bfcl_suite):
    orig = bfcl_suite.get("multi_turn_miss_func_0")
    rec = {
        "id": orig.id,
        "question": [list(turn) for turn in orig.turns],
        "initial_config": orig.initial_config,
        "path": orig.metadata["path"],
        "involved_classes": list(orig.involved_classes),
        "missed_function": {k: list(v) for k, v in orig.missed_function.items()},
        "excluded_function": orig.metadata["excluded_function"],
        "ground_truth": list(orig.ground_truth),
    }
    assert task_from_bfcl_record(rec) == orig


def test_bfcl_record_errors():
    base = {
        "id": "simple_python_1",
        "question": [[{"role": "user", "content": "x"}]],
        "function": [{"name": "f", "parameters": {"type": "dict", "properties": {}}}],
    }
    with pytest.raises(TaskFormatError, match=r"field 'ground_truth': expected a non-empty list"):
        task_from_bfcl_record(base)
    with pytest.raises(TaskFormatError, match=r"calls 'g', which is not among the task's tools"):
        task_from_bfcl_record({**base, "ground_truth": [{"g": {}}]})
    with pytest.raises(TaskFormatError, match=r"field 'function': expected a list"):
        task_from_bfcl_record({**base, "function": "f"})
    with pytest.raises(TaskFormatError, match=r"field 'question'"):
        task_from_bfcl_record({**base, "question": []})
    with pytest.raises(TaskFormatError, match=r"involved_classes"):
        task_from_bfcl_record(
            {
                "id": "multi_turn_base_1",
                "question": [[{"role": "user", "content": "x"}]],
                "involved_classes": ["NoSuchAPI"],
            }
        )


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "over, fragment",
    [
        (
            {"kind": "astt"},
            "field 'kind': expected one of ast, irrelevance, relevance, multi_turn, final_answer, got string \"astt\"",
        ),
        ({"id": ""}, "field 'id': expected a non-empty string"),
        ({"id": None}, "missing required field 'id'"),
        ({"turns": 5}, "field 'turns': expected a list of turns"),
        (
            {"turns": [[{"role": "robot", "content": "x"}]]},
            "field 'turns[0][0].role': expected one of system, user, assistant, tool, got string \"robot\"",
        ),
        (
            {"turns": [[{"role": "user", "content": 3}]]},
            "field 'turns[0][0].content': expected a string, got integer 3",
        ),
        ({"tools": {"name": "x"}}, "field 'tools': expected a list of tools"),
        ({"tools": [WEATHER, WEATHER]}, "duplicate tool name 'get_weather'"),
        (
            {"tools": [{"name": "f", "parameters": {"type": "dict"}}]},
            "field 'tools[0].parameters.type': expected \"object\"",
        ),
        (
            {"ground_truth": [{"get_weather": {"city": "Paris"}}]},
            "field 'ground_truth[0].get_weather.city': expected a list of allowed values",
        ),
        (
            {"ground_truth": [{"get_weather": {}, "x": {}}]},
            "field 'ground_truth[0]': expected an object with exactly one function name",
        ),
        ({"ground_truth": []}, "field 'ground_truth': expected a non-empty list"),
        ({"optimal_steps": 0}, "field 'optimal_steps': expected an integer >= 1, got integer 0"),
        ({"weights": {"task_completon": 1}}, "did you mean 'task_completion'"),
        ({"penalties": {"wrong_tool": "high"}}, "field 'penalties.wrong_tool': expected a finite number"),
        (
            {"answer": {"mode": "fuzzy", "expected": "x"}},
            "field 'answer.mode': expected one of exact, contains, regex, numeric, got string \"fuzzy\"",
        ),
        ({"answer": {"mode": "numeric", "expected": "forty"}}, "field 'answer.expected[0]': expected a number"),
        ({"answer": {"mode": "regex", "expected": "("}}, "invalid regular expression"),
        ({"grond_truth": []}, "field 'grond_truth': unknown field (did you mean 'ground_truth'?"),
        ({"question": "dup"}, "give either 'turns' or 'question'"),
        ({"missed_function": {"0": ["nope"]}}, "field 'missed_function.0': 'nope' is not among the task's tools"),
        ({"kind": "irrelevance"}, "field 'ground_truth': expected an empty list"),
        ({"kind": "final_answer", "ground_truth": []}, "a 'final_answer' task needs an answer check"),
        ({"kind": "multi_turn", "ground_truth": [["f()"]]}, "a 'multi_turn' task needs its backend classes"),
    ],
)
def test_error_messages_name_field_got_and_expected(over, fragment):
    with pytest.raises(TaskFormatError) as info:
        task_from_dict(ast_task(**over))
    assert fragment in str(info.value)


def test_multi_turn_call_strings_checked():
    d = {
        "id": "mt",
        "kind": "multi_turn",
        "turns": ["a", "b"],
        "involved_classes": ["MathAPI"],
        "tools": [{"name": "add", "parameters": {"type": "object", "properties": {}}}],
        "ground_truth": [["add(a=1, b=2)"], []],
    }
    assert task_from_dict(d).optimal_steps == 1
    with pytest.raises(TaskFormatError, match=r"field 'ground_truth\[1\]\[0\]': calls 'mul', which is not among"):
        task_from_dict({**d, "ground_truth": [["add(a=1, b=2)"], ["mul(a=1)"]]})
    with pytest.raises(TaskFormatError, match=r"field 'ground_truth\[0\]\[0\]': expected a call string"):
        task_from_dict({**d, "ground_truth": [["add a b"], []]})
    with pytest.raises(TaskFormatError, match=r"has 1 turns of calls but the task has 2 turns"):
        task_from_dict({**d, "ground_truth": [["add(a=1, b=2)"]]})


def test_kind_cannot_be_inferred():
    with pytest.raises(TaskFormatError, match="missing field 'kind' and it cannot be inferred"):
        task_from_dict({"id": "a", "turns": "hi"})


def test_bad_json_on_line_3_names_line_3(tmp_path):
    good = json.dumps(ast_task())
    path = write_lines(tmp_path / "tasks.jsonl", [good, "", '{"id": "b", "kind": "ast",,}'])
    with pytest.raises(TaskFormatError) as info:
        load_jsonl(path)
    err = info.value
    assert err.line == 3 and err.path == str(path)
    assert str(err).startswith(f"{path}:3: invalid JSON")


def test_field_error_carries_line_and_field(tmp_path):
    lines = [json.dumps(ast_task(id="a")), json.dumps(ast_task(id="b", kind="nope"))]
    path = write_lines(tmp_path / "tasks.jsonl", lines)
    with pytest.raises(TaskFormatError) as info:
        load_jsonl(path)
    assert info.value.line == 2 and info.value.field == "kind"
    assert str(info.value).startswith(f"{path}:2: field 'kind'")


def test_duplicate_ids_and_non_objects(tmp_path):
    line = json.dumps(ast_task())
    with pytest.raises(TaskFormatError, match=r":2: duplicate id 'w1' \(first on line 1\)"):
        load_jsonl(write_lines(tmp_path / "d.jsonl", [line, line]))
    with pytest.raises(TaskFormatError, match=r":1: expected a JSON object \(one task per line\), got array"):
        load_jsonl(write_lines(tmp_path / "a.jsonl", ["[1, 2]"]))
    with pytest.raises(TaskFormatError, match=r":1: expected one JSON object per line"):
        load_jsonl(write_lines(tmp_path / "arr.json", ["[", line, "]"]))


def test_mixed_file_toolgym_and_bfcl_lines(tmp_path):
    bfcl_line = {
        "id": "irrelevance_77",
        "question": [[{"role": "user", "content": "tell me a joke"}]],
        "function": [
            {"name": "f", "description": "", "parameters": {"type": "dict", "properties": {}, "required": []}}
        ],
    }
    path = write_lines(tmp_path / "m.jsonl", [json.dumps(ast_task()), json.dumps(bfcl_line)])
    a, b = load_jsonl(path)
    assert a.kind == "ast" and b.kind == "irrelevance" and b.category == "irrelevance"


def test_error_is_a_value_error_and_picklable():
    import pickle

    e = TaskFormatError("f.jsonl", 4, "field 'x': bad", "x")
    assert isinstance(e, ValueError)
    e2 = pickle.loads(pickle.dumps(e))
    assert (e2.path, e2.line, e2.field, str(e2)) == ("f.jsonl", 4, "x", "f.jsonl:4: field 'x': bad")
