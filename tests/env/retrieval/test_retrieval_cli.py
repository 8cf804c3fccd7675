"""``toolgym tools list | show | search`` through the real CLI entry point."""

from __future__ import annotations

import json

import pytest

from toolgym.env.cli.main import main


@pytest.fixture
def tool_file(tmp_path, tools):
    p = tmp_path / "tools.jsonl"
    p.write_text("".join(json.dumps(t.to_dict()) + "\n" for t in tools))
    return str(p)


def test_search_json_is_a_ranked_list_of_names_and_scores(tool_file, capsys):
    rc = main(["tools", "search", "--query", "what will the weather be in Oslo?", "-k", "3", "--json",
               "--retriever", "bm25", "--suite", "", "--tools", tool_file])
    assert rc == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 3 and hits[0]["name"] == "get_weather"
    assert all({"name", "id", "score", "description"} <= set(h) for h in hits)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)


def test_list_and_show(tool_file, capsys, tools):
    assert main(["tools", "list", "--json", "--suite", "", "--tools", tool_file]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == [t.name for t in tools] and rows[0]["source"] == tool_file
    assert main(["tools", "show", "mv", "--suite", "", "--tools", tool_file]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["spec"]["name"] == "mv" and shown["text"].startswith("mv (mv): Move a file")


@pytest.mark.parametrize("argv,msg", [
    (["tools", "search", "--query", "weather", "-k", "0", "--retriever", "bm25"], "-k must be >= 1"),
    (["tools", "show", "no_such_tool"], "no tool 'no_such_tool'"),
    (["tools", "search", "--query", "  ", "--retriever", "bm25"], "non-empty string"),
])
def test_mistakes_are_one_line_and_exit_2(tool_file, capsys, argv, msg):
    assert main([*argv, "--suite", "", "--tools", tool_file]) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err


def test_an_empty_catalogue_is_a_clear_error(capsys):
    assert main(["tools", "list", "--suite", ""]) == 2
    assert "the catalogue is empty" in capsys.readouterr().err
