"""KAgentBench's per-template output parsers: raw model text -> (thought, tool name, tool args).

These follow the behaviour of the reference scorer (KwaiAgents ``benchmark/benchmark_eval.py``) for the
five prompt templates it scores — ReACT, AutoGPT, ToolLlama, ModelScope and KuaiAgent — including its
JSON repair and its oddities, because the published numbers depend on them:

- ``"None"`` is the "nothing" value for thought and tool name; args default to ``{}``.
- ReACT: the thought is everything before the first ``Action``/``Final Answer`` (so it keeps a leading
  ``"Thought:"``); the args are ``{first parameter of the named tool: text after "Action Input:"}``, and
  only when the tool is one of the item's ``funcs`` with at least one parameter.
- ToolLlama: without a ``Thought:`` line the thought is an empty list, which the scorer later compares
  as the string ``"[]"``; a ``Thought:`` with nothing after it stays ``""`` (the reference's
  ``thought == 'None'`` is a comparison, not an assignment).
- ModelScope has no thought at all (always ``"None"``).
- JSON repair (:func:`find_json_dict` + :func:`correct_json`): close unbalanced braces with ``"\\n}"``,
  cut from the first ``{`` to the last ``"}\\n}"``, drop invalid backslash escapes, quote bare property
  names, balance braces. A single-line JSON object with text before it is *not* found (no ``"}\\n}"``).
- Values are kept as the JSON gave them (numbers stay numbers); comparison goes through ``str()`` later.

Where the reference would crash (e.g. a ``"command"`` that is a string containing ``"name"``), these
parsers return the default instead; such inputs cannot have produced published numbers.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "KNOWN_TEMPLATES",
    "Parsed",
    "find_json_dict",
    "correct_json",
    "parse_template",
    "parse_react",
    "parse_autogpt",
    "parse_toolllama",
    "parse_modelscope",
    "parse_kuaiagent",
    "conclusion_text",
]

KNOWN_TEMPLATES = ("ReACT", "AutoGPT", "ToolLlama", "ModelScope", "KuaiAgent")


@dataclass
class Parsed:
    thought: Any = "None"
    tool_name: Any = "None"
    tool_args: Any = field(default_factory=dict)
    json_ok: bool | None = None  # None: template has no JSON; True: parsed (possibly after repair); False: failed
    repaired: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"thought": self.thought, "tool_name": self.tool_name, "tool_args": self.tool_args}


# --- JSON repair ------------------------------------------------------------------------------------
def find_json_dict(text: str, _appended: int = 0) -> str:
    """Close unbalanced ``{`` with ``"\\n}"``; then keep ``text[first "{" : last "}\\n}"]`` if both exist."""
    while text.count("{") > text.count("}"):
        text = text.rstrip("\n") + "\n}"
        _appended += 1
    if _appended >= 5:
        return text
    st = text.find("{")
    end = text.rfind("}\n}")
    if st < 0 or end < 0:
        return text
    return text[st : end + 3].strip()


_CHAR_POS = re.compile(r"\(char (\d+)\)")
_BARE_KEY = re.compile(r"(\w+):")


def _loads_ok(s: str) -> bool:
    try:
        json.loads(s)
        return True
    except json.JSONDecodeError:
        return False


def _fix_invalid_escape(s: str, msg: str) -> str:
    while msg.startswith("Invalid \\escape"):
        m = _CHAR_POS.search(msg)
        if not m:
            raise ValueError("Character position not found in the error message.")
        pos = int(m.group(1))
        s = s[:pos] + s[pos + 1 :]
        try:
            json.loads(s)
            return s
        except json.JSONDecodeError as e:
            msg = str(e)
    return s


def _balance_braces(s: str) -> str | None:
    opened, closed = s.count("{"), s.count("}")
    while opened > closed:
        s += "}"
        closed += 1
    while closed > opened:
        s = s.rstrip("}")
        closed -= 1
    with contextlib.suppress(json.JSONDecodeError):
        json.loads(s)
        return s
    return None


def correct_json(s: str) -> str:
    """The reference's ``correct_json``; raises ``json.JSONDecodeError`` where it does (bad bare keys)."""
    try:
        json.loads(s)
        return s
    except json.JSONDecodeError as e:
        msg = str(e)
        if msg.startswith("Invalid \\escape"):
            s = _fix_invalid_escape(s, msg)
        if msg.startswith("Expecting property name enclosed in double quotes"):
            s = _BARE_KEY.sub(lambda m: f'"{m[1]}":', s)
            json.loads(s)  # raises when still invalid, exactly like the reference
            return s
        balanced = _balance_braces(s)
        if balanced:
            return balanced
    return s


def _load_dict(text: str) -> tuple[dict | None, bool]:
    """(object, repaired) or (None, False) when no dict comes out."""
    try:
        fixed = correct_json(find_json_dict(text))
        obj = json.loads(fixed)
    except Exception:
        return None, False
    if not isinstance(obj, dict):
        return None, False
    return obj, fixed.strip() != text.strip()


def _norm(thought, tool_name, tool_args, json_ok=None, repaired=False) -> Parsed:
    if tool_name == "":
        tool_name = "None"
    return Parsed(thought, tool_name, tool_args, json_ok, repaired)


def _contains(container, key) -> bool:
    """``key in container`` where the reference would not crash afterwards (dict-like containers only)."""
    return isinstance(container, dict) and key in container


# --- templates --------------------------------------------------------------------------------------
_REACT_THOUGHT = re.compile(r"(.+?)(?=(Final Answer|\Z|Action))", re.DOTALL)
_REACT_ACTION = re.compile(r"Action:(.+?)Action Input:", re.DOTALL)
_REACT_INPUT = re.compile(r"Action Input:(.+?)(?=(Observation|\Z))", re.DOTALL)


def _react_first_key(name, funcs) -> str:
    key = "None"
    for func in funcs or ():
        if isinstance(func, dict) and func.get("name") == name:
            try:
                key = list(func["parameters"]["properties"].keys())[0]
            except Exception:
                key = "None"
    return key


def parse_react(text: str, funcs=()) -> Parsed:
    found = _REACT_THOUGHT.findall(text)
    thought = found[0][0].strip() if found else ""
    tool_name, tool_args = "None", {}
    names = _REACT_ACTION.findall(text)
    if names:
        tool_name = names[0].strip()
        key = _react_first_key(tool_name, funcs)
        if key != "None":
            vals = _REACT_INPUT.findall(text)
            if vals:
                tool_args = {key: vals[0][0].strip()}
    return _norm(thought, tool_name, tool_args)


def parse_autogpt(text: str) -> Parsed:
    obj, repaired = _load_dict(text)
    if obj is None:
        return Parsed(json_ok=False)
    thought, tool_name, tool_args = "None", "None", {}
    th = obj.get("thoughts")
    if th and _contains(th, "text"):
        thought = th["text"]
    cmd = obj.get("command")
    if cmd and _contains(cmd, "name"):
        tool_name = cmd["name"]
    if cmd and _contains(cmd, "args") and isinstance(cmd["args"], dict):
        tool_args = cmd["args"]
    return _norm(thought, tool_name, tool_args, True, repaired)


_TL_THOUGHT = re.compile(r"Thought:(.+?)(?=(\Z|Action))", re.DOTALL)
_TL_ACTION = re.compile(r"Action:(.+?)(?=(Action Input:|\Z))", re.DOTALL)
_TL_INPUT = re.compile(r"Action Input:(.+?)(?=(Thought|\Z))", re.DOTALL)


def parse_toolllama(text: str) -> Parsed:
    found = _TL_THOUGHT.findall(text)
    thought: Any = found[0][0].strip() if found else []  # the reference leaves a list here
    tool_name, tool_args = "None", {}
    json_ok = None
    repaired = False
    names = _TL_ACTION.findall(text)
    if names:
        tool_name = names[0][0].strip()
        inputs = _TL_INPUT.findall(text)
        if inputs:
            obj, repaired = _load_dict(inputs[0][0].strip())
            json_ok = obj is not None
            if obj is not None:
                tool_args = obj
    return _norm(thought, tool_name, tool_args, json_ok, repaired)


_MS_THINK = re.compile(r"\<\|startofthink\|\>(.+?)\<\|endofthink\|\>", re.DOTALL)


def parse_modelscope(text: str) -> Parsed:
    found = _MS_THINK.findall(text)
    if not found:
        return Parsed()
    obj, repaired = _load_dict(found[0].strip())
    if obj is None:
        return Parsed(json_ok=False)
    tool_name, tool_args = "None", {}
    if obj and "api_name" in obj:
        tool_name = obj["api_name"]
    if obj and "parameters" in obj and isinstance(obj["parameters"], dict):
        tool_args = obj["parameters"]
    return _norm("None", tool_name, tool_args, True, repaired)


def parse_kuaiagent(text: str) -> Parsed:
    obj, repaired = _load_dict(text)
    if obj is None:
        return Parsed(json_ok=False)
    thought, tool_name, tool_args = "None", "None", {}
    if "task_name" in obj:
        thought = obj["task_name"]
    cmd = obj.get("command")
    if obj and _contains(cmd, "name"):
        tool_name = cmd["name"]
    if obj and _contains(cmd, "args") and isinstance(cmd["args"], dict):
        tool_args = cmd["args"]
    return _norm(thought, tool_name, tool_args, True, repaired)


def parse_template(template: str, text: Any, funcs=()) -> Parsed | None:
    """Parse one template's output; ``None`` when the reference would not parse it at all
    (unknown template name, or an empty ReACT output) — see ``reuse`` in :mod:`toolgym.evals.kagentbench`."""
    if not isinstance(text, str):
        if template in KNOWN_TEMPLATES:
            return Parsed(json_ok=False)  # the reference would crash or fail on non-text output
        return None
    if template == "ReACT":
        return parse_react(text, funcs) if text != "" else None
    if template == "AutoGPT":
        return parse_autogpt(text)
    if template == "ToolLlama":
        return parse_toolllama(text)
    if template == "ModelScope":
        return parse_modelscope(text)
    if template == "KuaiAgent":
        return parse_kuaiagent(text)
    return None


# --- conclusion answers -------------------------------------------------------------------------------
def conclusion_text(template: str, predict: Any) -> Any:
    """The reference's per-template clean-up of a conclusion answer (before ROUGE against the goldens)."""
    if template == "AutoGPT" and isinstance(predict, str):
        if "web_search(" in predict:
            predict = ""
        if 'response="' in predict:
            predict = predict.split('response="')[1].replace('")', "")
    if template == "ToolLlama" and isinstance(predict, str):
        if '"final_answer": "' in predict:
            predict = predict.split('"final_answer": "')[1].replace('"', "").replace("}", "")
        if predict == "\n":
            predict = ""
    if isinstance(predict, dict):
        predict = json.dumps(predict, ensure_ascii=False)
    return predict
