"""KAgentBench template parsers and JSON repair (behaviour of the reference scorer)."""

import json

from toolgym.evals.kagent_parsers import (
    conclusion_text,
    correct_json,
    find_json_dict,
    parse_autogpt,
    parse_kuaiagent,
    parse_modelscope,
    parse_react,
    parse_template,
    parse_toolllama,
)

FUNCS = [{"name": "web_search", "parameters": {"type": "object", "properties": {"query": {}, "n": {}}}},
         {"name": "calendar", "parameters": {"type": "object", "properties": {}}}]


def test_react():
    p = parse_react("Thought: look it up\nAction: web_search\nAction Input: Beijing weather\nObservation: x", FUNCS)
    assert p.thought == "Thought: look it up"  # the reference keeps the "Thought:" label
    assert p.tool_name == "web_search" and p.tool_args == {"query": "Beijing weather"}
    # a tool without parameters, or not offered: no args
    assert parse_react("Action: calendar\nAction Input: today", FUNCS).tool_args == {}
    assert parse_react("Action: other\nAction Input: today", FUNCS).tool_args == {}
    assert parse_react("Final Answer: 42", FUNCS).tool_name == "None"
    assert parse_template("ReACT", "", FUNCS) is None  # empty ReACT: not parsed (reuse quirk)


def test_autogpt_and_kuaiagent():
    a = parse_autogpt(json.dumps({"thoughts": {"text": "t"}, "command": {"name": "web_search", "args": {"query": "q"}}}, indent=2))
    assert (a.thought, a.tool_name, a.tool_args, a.json_ok) == ("t", "web_search", {"query": "q"}, True)
    k = parse_kuaiagent(json.dumps({"task_name": "t", "command": {"name": "", "args": "not a dict"}}))
    assert (k.thought, k.tool_name, k.tool_args) == ("t", "None", {})
    assert parse_kuaiagent("no json here").json_ok is False
    # a "command" string that the reference would crash on: default parse
    assert parse_kuaiagent('{"task_name": "t", "command": "name it"}').tool_name == "None"


def test_toolllama_quirks():
    p = parse_toolllama('Action: web_search\nAction Input: {"query": "x"}')
    assert p.thought == [] and str(p.thought) == "[]"  # compared later as the string "[]"
    assert p.tool_args == {"query": "x"}
    p = parse_toolllama('Thought: \nAction: web_search\nAction Input: not json')
    assert p.thought == "" and p.tool_args == {} and p.json_ok is False


def test_modelscope():
    body = json.dumps({"api_name": "web_search", "parameters": {"query": "q"}}, indent=2)
    p = parse_modelscope(f"x<|startofthink|>```JSON\n{body}\n```<|endofthink|>")
    assert (p.thought, p.tool_name, p.tool_args) == ("None", "web_search", {"query": "q"})
    # reference quirk: a one-line object inside a code fence is not found (no "}\n}" to cut at)
    p = parse_modelscope('x<|startofthink|>```JSON\n{"api_name": "web_search", "parameters": {"query": "q"}}\n```<|endofthink|>')
    assert p.tool_name == "None" and p.json_ok is False
    p = parse_modelscope('<|startofthink|>{"api_name": "web_search", "parameters": {"query": "q"}}<|endofthink|>')
    assert p.tool_name == "web_search"
    assert parse_modelscope("no block").tool_name == "None"


def test_json_repair_that_works():
    # unbalanced braces closed with "\n}"
    s = '{\n "task_name": "t",\n "command": {\n  "name": "web_search",\n  "args": {\n   "query": "q"'
    assert json.loads(correct_json(find_json_dict(s)))["command"]["args"] == {"query": "q"}
    # prose around a pretty-printed object: cut at first "{" / last "}\n}"
    s2 = 'Here:\n{\n "a": {\n  "b": 1\n }\n}\nThanks'
    assert json.loads(correct_json(find_json_dict(s2))) == {"a": {"b": 1}}
    # invalid escape dropped
    assert json.loads(correct_json('{"q": "a \\q b"}')) == {"q": "a q b"}
    # bare keys quoted
    assert json.loads(correct_json('{api_name: "x", parameters: {query: "y"}}')) == {"api_name": "x", "parameters": {"query": "y"}}


def test_json_repair_that_does_not():
    # one-line object after prose: no "}\n}", the whole text is kept and fails
    p = parse_kuaiagent('My answer: {"task_name": "t", "command": {"name": "web_search", "args": {}}}')
    assert p.json_ok is False and p.tool_name == "None"
    # trailing commas are not repaired
    assert parse_modelscope('<|startofthink|>{"api_name": "w", "parameters": {"q": 1,},}<|endofthink|>').json_ok is False
    # truncated inside a string
    assert parse_autogpt('{\n "thoughts": {\n  "text": "Search for the rel').json_ok is False


def test_conclusion_cleanup():
    assert conclusion_text("AutoGPT", 'task_complete(response="done")') == "done"
    assert conclusion_text("AutoGPT", 'web_search(query="x")') == ""
    assert conclusion_text("ToolLlama", 'Action Input: {"return_type": "give_answer", "final_answer": "a \\"b\\""}') == "a \\b\\"
    assert conclusion_text("ToolLlama", "\n") == ""
    assert conclusion_text("KuaiAgent", {"answer": "北京"}) == '{"answer": "北京"}'
