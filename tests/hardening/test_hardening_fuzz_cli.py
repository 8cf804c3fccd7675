"""Fuzzing the CLI's inputs: ``toolgym score`` files and ``toolgym tools call --args``.

The real entry point (``toolgym.env.cli.main.main``) runs in-process on hypothesis-built files:
valid BFCL records and outputs mixed with lines that are not JSON, not objects, missing keys,
of the wrong types, hostile strings. Every run must end with exit status 0 (one result line per
output line, finite numbers) or 2 with a message that names the file and line — never a
traceback. Lines that are not UTF-8, nested past the recursion limit or carry unhashable ids are
among the random cases, and each also has a test of its own (bugs the fuzz found, now fixed).
"""

from __future__ import annotations

import json
import math
import time

import pytest
from hardening_support import DEEP_JSON, fuzz_settings, record_cases
from hypothesis import given
from hypothesis import strategies as st

from toolgym.env.cli.main import main

FUZZ = fuzz_settings(600)
TASK = {"id": "t0", "category": "simple", "question": [[{"role": "user", "content": "area of a triangle, base 10 height 5"}]],
        "function": [{"name": "area", "description": "", "parameters": {"type": "dict", "properties": {"base": {"type": "integer"}, "height": {"type": "integer"}},
                                                                           "required": ["base", "height"]}}],
        "ground_truth": [{"area": {"base": [10], "height": [5]}}]}


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as e:  # argparse usage errors exit 2 by design
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@st.composite
def task_lines(draw, corpus) -> list[str]:
    lines = []
    for i in range(draw(st.integers(1, 4))):
        t = json.loads(json.dumps(TASK))
        t["id"] = f"t{i}"
        k = draw(st.integers(0, 6))
        if k == 1:
            t[draw(st.sampled_from(sorted(t)))] = json.loads(draw(st.sampled_from(corpus.json_docs[:400])))
        elif k == 2:
            t.pop(draw(st.sampled_from(sorted(t))))
        elif k == 3:
            lines.append(draw(st.sampled_from(corpus.texts + ["[1]", "null", '"x"', "{", DEEP_JSON[2]])).replace("\n", " "))
            continue
        lines.append(json.dumps(t, ensure_ascii=draw(st.booleans())))
    return lines


@st.composite
def output_lines(draw, corpus) -> list[str]:
    lines = []
    for _ in range(draw(st.integers(0, 5))):
        o = {"id": draw(st.sampled_from(["t0", "t1", "t0", "nope", ""])), "output": draw(st.sampled_from(corpus.outputs)), "extra": 1}
        k = draw(st.integers(0, 6))
        if k == 1:
            o.pop(draw(st.sampled_from(["id", "output"])))
        elif k == 2:
            o["output"] = json.loads(draw(st.sampled_from(corpus.json_docs[:400])))
        elif k == 3:
            lines.append(draw(st.sampled_from(corpus.texts + ["[]", "1", "{", DEEP_JSON[2]])).replace("\n", " "))
            continue
        elif k == 4:
            o["id"] = draw(st.sampled_from([["t0"], {"t": 0}, 0, None]))
        lines.append(json.dumps(o))
    return lines


def test_fuzz_score_cli(tmp_path, capsys, corpus):
    cases = [0, 0.0]

    @FUZZ
    @given(st.data())
    def run(data) -> None:
        tasks, outputs = data.draw(task_lines(corpus)), data.draw(output_lines(corpus))
        fmt = data.draw(st.sampled_from([[], ["--format", "hermes"], ["--format", "react"]]))
        (tmp_path / "t.jsonl").write_text("\n".join(tasks) + "\n", encoding="utf-8")
        raw = ("\n".join(outputs) + "\n").encode("utf-8")
        if outputs and data.draw(st.integers(0, 9)) == 0:  # a model output cut mid-character: not UTF-8
            raw = raw.replace(b'"output": "', b'"output": "\xff\xfe', 1)
        (tmp_path / "o.jsonl").write_bytes(raw)
        t = time.perf_counter()
        code, _, err = _run(["score", "--tasks", str(tmp_path / "t.jsonl"), "--outputs", str(tmp_path / "o.jsonl"),
                             "--out", str(tmp_path / "r.jsonl"), *fmt], capsys)
        assert "Traceback" not in err
        if code == 0:
            results = [json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} in results")) for line in
                       (tmp_path / "r.jsonl").read_text().splitlines()]
            assert len(results) == sum(1 for line in outputs if line.strip())
            assert all(math.isfinite(r["total"]) and (r["valid"] or r["feedback"]) for r in results)
        else:
            assert code == 2 and err.startswith("toolgym score: ") and (".jsonl:" in err or "cannot read" in err), (code, err)
        cases[0] += 1
        cases[1] += time.perf_counter() - t

    run()
    record_cases("CLI toolgym score (files)", cases[0], cases[1])


@pytest.mark.parametrize("which", ["invalid-utf8", "deep-json", "unhashable-id"])
def test_score_cli_rejects_unreadable_lines(tmp_path, capsys, which):
    tasks = [json.dumps(TASK)]
    outputs = ['{"id": "t0", "output": "x"}']
    raw = None
    if which == "invalid-utf8":
        raw = b'{"id": "t0", "output": "\xff\xfe"}\n'
    elif which == "deep-json":
        tasks.append(DEEP_JSON[2])
    else:
        outputs = ['{"id": ["t0"], "output": "x"}']
    (tmp_path / "t.jsonl").write_text("\n".join(tasks) + "\n")
    if raw is not None:
        (tmp_path / "o.jsonl").write_bytes(raw)
    else:
        (tmp_path / "o.jsonl").write_text("\n".join(outputs) + "\n")
    try:
        code, _, err = _run(["score", "--tasks", str(tmp_path / "t.jsonl"), "--outputs", str(tmp_path / "o.jsonl"), "--out", str(tmp_path / "r")], capsys)
    except Exception as e:  # noqa: BLE001 - the bug: an exception escapes main()
        pytest.fail(f"{type(e).__name__} escaped `toolgym score`: {e}")
    assert code == 2 and ".jsonl:" in err


def _is_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except (ValueError, RecursionError):
        return False


def test_fuzz_tools_call_args(capsys, corpus):
    """--args that is not a JSON object is exit 2 with an example, before any sandbox starts."""
    cases = [0, 0.0]

    @fuzz_settings(300)
    @given(st.one_of(st.sampled_from([t for t in corpus.texts if t != "-" and not _is_object(t)]), st.sampled_from([d for d in corpus.json_docs[:400] if not _is_object(d)]),
                     st.sampled_from(["{", "{'code': 1}", '{"code": "x",}', "", " ", "nul", "[]", '"{}"'])))
    def run(arg: str) -> None:
        t = time.perf_counter()
        code, out, err = _run(["tools", "call", "python", f"--args={arg}"], capsys)  # "=": values may start with "-"
        assert code == 2 and "--args" in err and "JSON object" in err and "Traceback" not in err, (arg, code, err)
        cases[0] += 1
        cases[1] += time.perf_counter() - t

    run()
    record_cases("CLI toolgym tools call --args", cases[0], cases[1])


def test_tools_call_wrong_argument_types_run_and_fail_cleanly(capsys):
    """Valid JSON objects of the wrong shape reach the sandbox: the tool refuses them (exit 1), nothing crashes."""
    for args in ['{"code": 5}', '{"code": ["print(1)"]}', '{"code": null}', '{"cod": "print(1)"}', '{"code": {"a": 1}}']:
        code, out, err = _run(["tools", "call", "python", "--args", args, "--json"], capsys)
        assert code == 0 and "Traceback" not in err, (args, err)
        res = json.loads(out)
        assert res["ok"] is False and "code" in res["error"], (args, res)


def test_tools_call_deep_json_args_is_a_usage_error(capsys):
    try:
        code, _, err = _run(["tools", "call", "python", "--args", DEEP_JSON[2]], capsys)
    except RecursionError as e:
        pytest.fail(f"RecursionError escaped `toolgym tools call`: {e}")
    assert code == 2 and "--args" in err
