"""The retrieval pieces of an episode: tool pools, the search_tools meta-tool, the retrieval component."""

from __future__ import annotations

import json

import pytest

from toolgym.env.retrieval.bm25 import BM25Retriever
from toolgym.env.retrieval.episode_tools import (
    SEARCH_TOOLS_SPEC,
    ToolPool,
    ToolSearch,
    build_tool_pool,
    needed_tools,
    parse_tool_pool,
    pre_retrieved,
    retrieval_component,
)


def test_tool_pool_option_parses_and_rejects_typos():
    assert parse_tool_pool("full_catalogue") == ToolPool("full_catalogue")
    assert parse_tool_pool("k_distractors:5") == ToolPool("k_distractors", 5)
    assert parse_tool_pool("task") == ToolPool("task")
    for bad in ("k_distractors", "k_distractors:-1", "everything", None):
        with pytest.raises(ValueError, match="k_distractors:N"):
            parse_tool_pool(bad)


def test_distractors_hide_the_tasks_tools_deterministically(catalogue, make_tasks):
    task = make_tasks()[2]  # offers mv
    pool = build_tool_pool(task, catalogue, ToolPool("k_distractors", 3), seed=1)
    names = [t.name for t in pool]
    assert len(pool) == 4 and "mv" in names and len(set(names)) == 4
    assert build_tool_pool(task, catalogue, ToolPool("k_distractors", 3), seed=1) == pool
    full = build_tool_pool(task, catalogue, ToolPool("full_catalogue"))
    assert {t.name for t in full} == set(catalogue.names())
    assert build_tool_pool(task, catalogue, ToolPool("task")) == task.tools


def test_search_tools_returns_specs_and_remembers_what_it_showed(catalogue):
    search = ToolSearch(BM25Retriever(catalogue))
    ok, text = search.call({"query": "move a file to another directory", "k": 2})
    specs = json.loads(text)
    assert ok and len(specs) == 2 and specs[0]["name"] == "mv" and "parameters" in specs[0]
    assert "mv" in search.seen
    assert SEARCH_TOOLS_SPEC.parameters["required"] == ["query"]


@pytest.mark.parametrize("args,msg", [({"k": 2}, "'query' must be a non-empty string"), ({"query": "x", "k": 0}, "'k' must be an integer"),
                                      ({"query": "x", "k": "3"}, "'k' must be an integer"), ([1], "expects arguments")])
def test_bad_search_arguments_get_an_error_observation(catalogue, args, msg):
    ok, text = ToolSearch(BM25Retriever(catalogue)).call(args)
    assert not ok and msg in text


def test_search_stays_within_the_offered_tools(catalogue):
    search = ToolSearch(BM25Retriever(catalogue), allowed=frozenset({"cd", "send_email"}))
    ok, text = search.call({"query": "move a file to another directory", "k": 5})
    assert ok and {s["name"] for s in json.loads(text)} == {"cd", "send_email"}


def test_pre_retrieved_and_the_retrieval_component(catalogue, make_tasks):
    from toolgym.env.types import Task

    task = Task("w", "ast", (({"role": "user", "content": "what is the weather forecast in Oslo?"},),),
                (catalogue.get("get_weather").spec,), ground_truth=({"get_weather": {"city": ["Oslo"]}},))
    offered = pre_retrieved(task, BM25Retriever(catalogue), 3)
    assert offered[0].name == "get_weather" and len(offered) == 3
    need = needed_tools(task)
    assert need == {"get_weather"}
    assert retrieval_component(need, [t.name for t in offered]) == 1.0
    assert retrieval_component(need, []) == 0.0
    assert retrieval_component({"cd", "mv"}, ["mv"]) == 0.5
    assert retrieval_component(set(), []) == 1.0  # nothing to find
