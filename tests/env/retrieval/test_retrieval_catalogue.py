from __future__ import annotations

import json

import pytest
from toolgym.env.retrieval.catalogue import Catalogue, load_tools_jsonl, render_tool, split_identifier, tool_id
from toolgym.env.types import ToolSpec


def test_dedup_by_name_and_schema_keeps_source_tasks(catalogue, tools, make_tasks):
    TOOLS = tools
    assert len(catalogue) == len(TOOLS)
    mv = catalogue.get("mv")
    assert mv.source_tasks == ("t1_0", "t1_1") and mv.n_tasks == 2
    # same name, different schema: a different tool with its own id
    other = ToolSpec("mv", "Move things.", {"type": "object", "properties": {"path": {"type": "string"}}})
    cat = Catalogue.from_tasks(make_tasks(TOOLS + (other,)))
    assert len(cat) == len(TOOLS) + 1 and len(cat.ids_named("mv")) == 2


def test_ids_are_stable_across_load_order_and_description(tools, make_tasks):
    TOOLS = tools
    a = Catalogue.from_tasks(make_tasks())
    b = Catalogue.from_tasks(make_tasks(tuple(reversed(TOOLS))))
    assert {e.id for e in a} == {e.id for e in b}
    reworded = ToolSpec(TOOLS[0].name, "different words", TOOLS[0].parameters)
    assert tool_id(reworded) == tool_id(TOOLS[0])
    assert a.content_hash != b.content_hash  # order is part of an index's content


def test_text_rendering_splits_identifiers_and_puts_the_tools_own_sentence_first():
    assert split_identifier("ChaDri.change_drink") == "Cha Dri change drink"
    spec = ToolSpec("mv", "This tool belongs to the Gorilla file system. Tool description: Move a file.",
                    {"type": "object", "properties": {"destination": {"description": "where to"}}})
    text = render_tool(spec)
    assert text.startswith("mv (mv): Move a file. (This tool belongs to the Gorilla file system.)")
    assert "destination: where to" in text


def test_user_jsonl_tools_join_the_catalogue(tmp_path, tools, make_tasks):
    TOOLS = tools
    p = tmp_path / "tools.jsonl"
    p.write_text(json.dumps({"type": "function", "function": {"name": "ping_host", "description": "ICMP ping"}}) + "\n\n"
                 + json.dumps(TOOLS[0].to_dict()) + "\n")
    tools = load_tools_jsonl(p)
    cat = Catalogue.from_tasks(make_tasks(), [(t, str(p)) for t in tools])
    assert len(cat) == len(TOOLS) + 1  # get_weather was already there
    assert cat.get("ping_host").source == str(p)


def test_bad_tool_file_names_the_line_and_the_field(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"name": "ok"}\n{"name": 3}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: .*tool.name.*non-empty string"):
        load_tools_jsonl(p)
    p.write_text("not json\n")
    with pytest.raises(ValueError, match="bad.jsonl:1: not valid JSON"):
        load_tools_jsonl(p)
    with pytest.raises(FileNotFoundError, match="could not be read"):
        load_tools_jsonl(tmp_path / "missing.jsonl")


def test_unknown_tool_lookup_suggests_close_names(catalogue):
    with pytest.raises(KeyError, match="closest names: get_weather"):
        catalogue.get("get_wether")


def test_the_default_suite_catalogue_has_every_tool(bfcl_suite):
    cat = Catalogue.from_tasks(bfcl_suite)
    names = {t.name for task in bfcl_suite for t in task.tools}
    assert set(cat.names()) == names and len(names) >= 1800
    assert all(e.text and e.n_tasks >= 1 for e in cat)
