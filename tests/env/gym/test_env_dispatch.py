"""Call dispatch rules (toolgym.env.dispatch), matched to BFCL's multi-turn executor."""

from __future__ import annotations

from toolgym.env.dispatch import BFCL_REFUSED, classify, run_calls
from toolgym.env.types import ToolCall

OFFERED = ["ls", "cd", "mkdir"]
TOOLSET = ["ls", "cd", "mkdir", "sort", "cp"]


def test_offered_withheld_unknown_refused():
    def fields(v):
        return v.run, v.offered, v.error

    assert fields(classify(ToolCall("ls"), OFFERED, TOOLSET, bfcl=True)) == (True, True, None)
    assert fields(classify(ToolCall("sort"), OFFERED, TOOLSET, bfcl=True)) == (True, False, None)  # exists: BFCL runs it
    v = classify(ToolCall("nope"), OFFERED, TOOLSET, bfcl=True)
    assert not v.run and v.error == "unknown tool 'nope'; the tools offered now are: ls, cd, mkdir"
    for name in ("kill", "x.exit", "Popen"):
        v = classify(ToolCall(name), OFFERED, TOOLSET + ["kill"], bfcl=True)
        assert not v.run and "not allowed" in v.error
    assert {"kill", "exit", "quit", "remove", "unlink", "popen", "Popen", "run"} == BFCL_REFUSED


def test_non_bfcl_toolsets_skip_the_refused_names_and_unknown_toolset_runs_only_offered():
    assert classify(ToolCall("run"), ["run"], ["run"], bfcl=False).run
    assert not classify(ToolCall("sort"), OFFERED, None, bfcl=False).run


def test_run_calls_turns_every_failure_into_an_outcome():
    calls = [ToolCall("ls"), ToolCall("nope"), ToolCall("cd")]
    verdicts = [classify(c, OFFERED, TOOLSET, bfcl=True) for c in calls]

    def execute(c):
        if c.name == "cd":
            raise OSError("worker died")
        return ("ran", c.name)

    out = run_calls(calls, verdicts, execute, lambda c, e: ("refused", c.name, e), lambda c, e: ("failed", c.name, str(e)))
    assert out == [("ran", "ls"), ("refused", "nope", verdicts[1].error), ("failed", "cd", "worker died")]
