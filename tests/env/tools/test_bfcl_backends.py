"""BFCL multi-turn backends as a toolset: dispatch, errors, rendering, state, ground-truth replay."""

from __future__ import annotations

import json
import os
from functools import lru_cache
from importlib import resources

import pytest

pytest.importorskip("bfcl_eval")

from toolgym.env.tools import registry  # noqa: E402
from toolgym.env.tools.bfcl_backends import (  # noqa: E402
    ERROR_PREFIX,
    BfclMultiTurnToolset,
    GroundTruthReplay,
    canonical_json,
    parse_ground_truth_call,
    render_result,
    replay_cache_key,
    replay_ground_truth,
    to_jsonable,
)
from toolgym.env.tools.registry import ToolError  # noqa: E402
from toolgym.env.types import ToolCall  # noqa: E402

CATEGORIES = ("base", "miss_func", "miss_param", "long_context")

FS_CONFIG = {
    "root": {
        "alice": {
            "type": "directory",
            "contents": {
                "docs": {
                    "type": "directory",
                    "contents": {
                        "b.txt": {"type": "file", "content": "zeta\nalpha\n"},
                        "a.txt": {"type": "file", "content": "hello world"},
                    },
                },
                "notes.md": {"type": "file", "content": "# notes"},
            },
        }
    }
}


@lru_cache(maxsize=None)
def load_category(category: str) -> tuple[dict, ...]:
    """BFCL v4 multi-turn entries of ``category``, each merged with its ground truth."""
    data = resources.files("bfcl_eval") / "data"
    entries = [json.loads(line) for line in (data / f"BFCL_v4_multi_turn_{category}.json").read_text().splitlines() if line.strip()]
    answers = {}
    for line in (data / "possible_answer" / f"BFCL_v4_multi_turn_{category}.json").read_text().splitlines():
        if line.strip():
            a = json.loads(line)
            answers[a["id"]] = a["ground_truth"]
    return tuple(dict(e, ground_truth=answers[e["id"]]) for e in entries)


def fs_toolset(tmp_path=None, **extra) -> BfclMultiTurnToolset:
    cfg = {"involved_classes": ["GorillaFileSystem", "MathAPI"], "initial_config": {"GorillaFileSystem": FS_CONFIG}}
    cfg.update(extra)
    return BfclMultiTurnToolset(cfg, str(tmp_path) if tmp_path else "")


# --------------------------------------------------------------------------- protocol


def test_registry_creates_it_and_it_satisfies_the_protocol(tmp_path):
    ts = registry.create("bfcl_multi_turn", {"involved_classes": ["MathAPI"]}, str(tmp_path))
    assert isinstance(ts, BfclMultiTurnToolset)
    assert isinstance(ts, registry.Toolset)
    assert json.loads(ts.call("add", {"a": 2, "b": 3})) == {"result": 5}


def test_names_are_the_public_methods_of_the_involved_classes():
    ts = fs_toolset()
    names = ts.names()
    assert names == sorted(names)
    for expected in ("cd", "ls", "mkdir", "sort", "grep", "add", "mean"):
        assert expected in names
    assert not any(n.startswith("_") for n in names)
    assert "post_tweet" not in names  # TwitterAPI is not involved
    assert ts.owner("cd") == "GorillaFileSystem" and ts.owner("add") == "MathAPI" and ts.owner("nope") is None
    assert ts.signature("mv") == "mv(source: str, destination: str)"


def test_every_backend_class_loads_with_an_empty_config():
    classes = ["GorillaFileSystem", "MathAPI", "MessageAPI", "TwitterAPI", "TicketAPI", "TradingBot", "TravelAPI", "VehicleControlAPI"]
    ts = BfclMultiTurnToolset({"involved_classes": classes, "initial_config": {}}, "")
    assert sorted(ts.state()) == sorted(classes)
    assert len(ts.names()) == 128  # BFCL's function docs list exactly these methods
    json.dumps(ts.state(), allow_nan=False)


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"involved_classes": []},
        {"involved_classes": "GorillaFileSystem"},
        {"involved_classes": ["NoSuchAPI"]},
        {"involved_classes": ["MathAPI"], "initial_config": []},
    ],
)
def test_bad_config_is_a_value_error(config):
    with pytest.raises(ValueError):
        BfclMultiTurnToolset(config, "")


# --------------------------------------------------------------------------- dispatch and errors


@pytest.mark.parametrize("name", ["rm_rf", "post_tweet", "_load_scenario", "__init__", "__class__", "_api_description", "root", "", "GorillaFileSystem.cd"])
def test_unknown_or_private_names_are_no_such_tool(name):
    ts = fs_toolset()
    with pytest.raises(ToolError) as err:
        ts.call(name, {})
    assert str(err.value) == f"{ERROR_PREFIX}no such tool {name!r}"


def test_non_string_name_is_no_such_tool():
    with pytest.raises(ToolError, match="no such tool"):
        fs_toolset().call(None, {})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({}, "missing a required argument: 'folder'"),
        ({"folder": "docs", "recursive": True}, "got an unexpected keyword argument 'recursive'"),
        ({"__arg0": "docs", "__arg1": "x"}, "too many positional arguments"),
        ({"__arg0": "docs", "folder": "docs"}, "multiple values for argument 'folder'"),
        ({"__arg1": "docs"}, "positional arguments must be __arg0, __arg1, ... without gaps, got __arg1"),
    ],
)
def test_bad_arguments_are_readable_tool_errors(args, fragment):
    ts = fs_toolset()
    before = ts.state()
    with pytest.raises(ToolError) as err:
        ts.call("cd", args)
    msg = str(err.value)
    assert msg.startswith(ERROR_PREFIX + "bad arguments for cd")
    assert fragment in msg
    if "gaps" not in fragment:
        assert "cd(folder: str)" in msg  # the expected signature is shown
    assert ts.state() == before


def test_arguments_must_be_an_object():
    with pytest.raises(ToolError, match="arguments of cd must be an object, not list"):
        fs_toolset().call("cd", ["docs"])  # type: ignore[arg-type]


def test_none_arguments_mean_no_arguments():
    assert json.loads(fs_toolset().call("pwd", None)) == {"current_working_directory": "/alice"}  # type: ignore[arg-type]


def test_backend_exception_becomes_tool_error_with_bfcl_text():
    ts = fs_toolset()
    with pytest.raises(ToolError) as err:
        ts.call("cd", {"folder": 5})
    assert str(err.value) == "Error during execution: 'int' object has no attribute 'rstrip'"
    assert ts.execute("cd", {"folder": 5}) == "Error during execution: 'int' object has no attribute 'rstrip'"


def test_positional_arguments_map_to_parameter_names():
    by_position, by_name = fs_toolset(), fs_toolset()
    by_position.call("cd", {"__arg0": "docs"})
    by_name.call("cd", {"folder": "docs"})
    assert by_position.call("sort", {"__arg0": "b.txt"}) == by_name.call("sort", {"file_name": "b.txt"})
    assert by_position.call("mv", {"__arg0": "a.txt", "destination": "c.txt"}) == by_name.call("mv", {"source": "a.txt", "destination": "c.txt"})
    assert by_position.state() == by_name.state()
    assert json.loads(by_position.call("add", {"__arg0": 1, "__arg1": 2.5})) == {"result": 3.5}


# --------------------------------------------------------------------------- rendering


def test_results_render_as_bfcl_does():
    assert render_result("plain") == "plain"
    assert render_result({"b": 1, "a": [1, 2]}) == json.dumps({"b": 1, "a": [1, 2]})
    assert render_result({"s": {1, 2}}) == str({"s": {1, 2}})  # json cannot encode it: str()
    assert render_result(["x"]) == "['x']"
    assert render_result(None) == "None"
    assert render_result(3) == "3"
    ts = fs_toolset()
    assert ts.call("pwd", {}) == '{"current_working_directory": "/alice"}'
    assert ts.call("ls", {}) == '{"current_directory_content": ["docs", "notes.md"]}'
    # A dict the backend returns with an error key is a normal result, not a ToolError.
    assert ts.call("cd", {"folder": "missing"}).startswith('{"error": ')


# --------------------------------------------------------------------------- state


def test_state_is_deterministic_json_and_excludes_private_attributes(tmp_path):
    a, b = fs_toolset(tmp_path), fs_toolset(tmp_path)
    sa, sb = a.state(), b.state()
    assert sa == sb and canonical_json(sa) == canonical_json(sb)
    assert json.loads(json.dumps(sa, allow_nan=False)) == sa
    assert list(sa) == sorted(sa)
    fs = sa["GorillaFileSystem"]
    assert sorted(fs) == ["long_context", "root"]  # _current_dir, _api_description are private
    assert sa["MathAPI"] == {}
    assert fs["root"] == {
        "__py__": "Directory",
        "name": "alice",
        "contents": {
            "docs": {
                "__py__": "Directory",
                "name": "docs",
                "contents": {
                    "a.txt": {"__py__": "File", "name": "a.txt", "content": "hello world"},
                    "b.txt": {"__py__": "File", "name": "b.txt", "content": "zeta\nalpha\n"},
                },
            },
            "notes.md": {"__py__": "File", "name": "notes.md", "content": "# notes"},
        },
    }
    # cd only moves the private current directory: BFCL's state check does not see it.
    a.call("cd", {"folder": "docs"})
    assert a.state() == sb
    a.call("mkdir", {"dir_name": "new"})
    assert a.state() != sb
    assert a.state()["GorillaFileSystem"]["root"]["contents"]["docs"]["contents"]["new"] == {"__py__": "Directory", "name": "new", "contents": {}}
    assert canonical_json(a.state()) == canonical_json(a.state())
    assert os.listdir(tmp_path) == []  # nothing is written to the workspace


def test_state_of_every_class_is_json_and_stable_across_runs():
    for entry in load_category("base")[::25]:
        cfg = {"involved_classes": entry["involved_classes"], "initial_config": entry["initial_config"]}
        s1, s2 = BfclMultiTurnToolset(cfg, "").state(), BfclMultiTurnToolset(cfg, "").state()
        assert canonical_json(s1) == canonical_json(s2)


def test_to_jsonable_keeps_types_and_round_trips_through_json():
    from toolgym.env.tools.state_codec import decode, python_equal

    # int keys stay ints: {2: ...} is not {"2": ...} (BFCL compares the live dicts).
    assert to_jsonable({2: "b", 1: "a"}) == {"__py__": "dict", "items": [[1, "a"], [2, "b"]]}
    assert list(to_jsonable({"b": 1, "a": 2})) == ["a", "b"]
    assert to_jsonable((1, (2, 3))) == {"__py__": "tuple", "items": [1, {"__py__": "tuple", "items": [2, 3]}]}
    assert to_jsonable({3, 1, 2}) == {"__py__": "set", "items": [1, 2, 3]}
    assert to_jsonable(float("-inf")) == {"__py__": "float", "value": "-inf"}
    # A real dict that happens to hold the tag key cannot pass for a tagged value.
    assert decode(json.loads(canonical_json(to_jsonable({"__py__": "tuple", "items": [1]})))) == {"__py__": "tuple", "items": [1]}
    for value in [{2: "b", 1.5: ("x", None)}, {(1, "a"): {True, 3}}, [float("inf"), b"\x00", frozenset({1})], {"__py__": 1}]:
        image = json.loads(canonical_json(to_jsonable(value)))
        assert decode(image) == value

    class Thing:
        def __init__(self):
            self.b = {1}
            self.a = 1
            self._hidden = object()
            self.me = self

    img = to_jsonable(Thing())
    assert img["attrs"] == {"a": 1, "b": {"__py__": "set", "items": [1]}, "me": {"__py__": "cycle", "class": "Thing"}}
    # No __eq__ of its own: BFCL compares it by identity, so a snapshot never equals another.
    assert img["eq"] == "identity" and not python_equal(img, to_jsonable(Thing()))


def test_state_equality_is_pythons():
    from toolgym.env.tools.state_codec import python_equal

    img = lambda v: json.loads(canonical_json(to_jsonable(v)))  # noqa: E731 - what crosses the sandbox
    assert python_equal(img({2: "x"}), img({2.0: "x"}))  # 2 == 2.0, as dict keys too
    assert python_equal(img([1, True]), img([1.0, 1]))
    assert not python_equal(img({2: "x"}), img({"2": "x"}))  # "2" != 2
    assert not python_equal(img((1, 2)), img([1, 2]))  # a tuple is not a list
    assert python_equal(img({1, 2}), img(frozenset({2, 1})))
    assert not python_equal(img(float("nan")), img(float("nan")))  # two nans are never equal
    assert python_equal(img({"a": 1, "b": 2}), {"b": 2, "a": 1})


def test_tweets_keep_their_int_ids_in_the_state():
    from toolgym.env.tools.state_codec import decode

    ts = BfclMultiTurnToolset({"involved_classes": ["TwitterAPI"], "initial_config": {"TwitterAPI": {"username": "u", "password": "p"}}}, "")
    ts.call("authenticate_twitter", {"username": "u", "password": "p"})
    ts.call("post_tweet", {"content": "hi"})
    tweets = decode(json.loads(json.dumps(ts.state())))["TwitterAPI"]["tweets"]
    assert all(type(k) is int for k in tweets) and any(t["content"] == "hi" for t in tweets.values())


def test_arguments_and_initial_config_are_copied_not_shared():
    config = {"involved_classes": ["TwitterAPI"], "initial_config": {"TwitterAPI": {"username": "u", "password": "p"}}}
    snapshot = json.loads(json.dumps(config))
    ts = BfclMultiTurnToolset(config, "")
    ts.call("authenticate_twitter", {"username": "u", "password": "p"})
    tags = ["#one"]
    ts.call("post_tweet", {"content": "hi", "tags": tags})
    tags.append("#two")
    posted = [v for _, v in ts.state()["TwitterAPI"]["tweets"]["items"]]
    assert posted[-1]["tags"] == ["#one"]
    assert config == snapshot


def test_long_context_instances_do_not_share_module_data():
    """TravelAPI aliases long-context credit cards from module data; a toolset owns copies."""
    entry = next(e for e in load_category("long_context") if e["id"] == "multi_turn_long_context_153")
    cfg = {"involved_classes": ["TravelAPI"], "initial_config": entry["initial_config"], "long_context": True}
    card = "1234567812345678"  # one of long_context.py's CREDIT_CARD_EXTENSION cards
    ts = BfclMultiTurnToolset(cfg, "")
    assert ts.state()["TravelAPI"]["credit_card_list"][card]["balance"] == 5000.0
    for text in (s for turn in entry["ground_truth"] for s in turn):
        call = parse_ground_truth_call(text)
        if call.name == "book_flight":
            result = json.loads(ts.call("book_flight", dict(call.arguments, card_id=card)))
            assert result["booking_status"] is True
            break
        ts.execute(call.name, call.arguments)
    assert ts.state()["TravelAPI"]["credit_card_list"][card]["balance"] < 5000.0
    fresh = BfclMultiTurnToolset(cfg, "")
    assert fresh.state()["TravelAPI"]["credit_card_list"][card]["balance"] == 5000.0


# --------------------------------------------------------------------------- ground-truth replay


def test_parse_ground_truth_call():
    assert parse_ground_truth_call("cd(folder='document')") == ToolCall("cd", {"folder": "document"}, "cd(folder='document')")
    assert parse_ground_truth_call("sort('final_report.pdf')").arguments == {"__arg0": "final_report.pdf"}
    with pytest.raises(ValueError):
        parse_ground_truth_call("cd(folder='a'); ls()")


def test_replay_records_results_and_states_per_turn():
    entry = load_category("base")[0]
    rep = replay_ground_truth(entry)
    assert rep.task_id == "multi_turn_base_0" and not rep.long_context
    assert rep.num_turns == len(entry["ground_truth"]) == len(rep.turn_results) == len(rep.turn_states)
    assert [len(t) for t in rep.turn_calls] == [len(t) for t in entry["ground_truth"]]
    assert rep.turn_calls[2][0] == ToolCall("sort", {"__arg0": "final_report.pdf"}, "sort('final_report.pdf')")
    assert rep.turn_results[0][0] == '{"current_working_directory": "document"}'
    assert rep.turn_states[0] != rep.initial_state  # mkdir + mv changed the tree
    again = replay_ground_truth(entry)
    assert canonical_json(again.to_dict()) == canonical_json(rep.to_dict())
    assert GroundTruthReplay.from_dict(json.loads(json.dumps(rep.to_dict()))) == rep
    assert replay_cache_key(entry) == replay_cache_key(dict(entry)) != replay_cache_key(load_category("base")[1])


def test_long_context_is_taken_from_the_id_or_given_explicitly():
    entry = load_category("long_context")[0]
    assert replay_ground_truth(entry).long_context
    assert not replay_ground_truth(dict(entry, long_context=False)).long_context
    assert replay_ground_truth(dict(load_category("base")[0], long_context=True)).long_context


@pytest.mark.parametrize("category", CATEGORIES)
def test_every_ground_truth_call_succeeds(category):
    """BFCL's ground truth never fails a call: a replayed error would mean a dispatch bug."""
    for entry in load_category(category):
        rep = replay_ground_truth(entry)
        for turn, results in enumerate(rep.turn_results):
            for text in results:
                assert not text.startswith(ERROR_PREFIX), (entry["id"], turn, text)
                assert " at 0x" not in text, (entry["id"], turn, text)  # no address-bearing reprs
