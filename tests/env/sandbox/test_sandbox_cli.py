"""``toolgym tools call``: the same pool path, hostile code included, and its input handling."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from toolgym.env.cli import tools_cmd


def call_json(capsys, code: str, *extra: str) -> dict:
    rc = tools_cmd.main(["call", "python", "--args", json.dumps({"code": code}), "--json", *extra])
    out = capsys.readouterr().out
    assert rc == 0
    lines = out.splitlines()
    assert len(lines) == 1, out
    result = json.loads(lines[0])
    assert set(result) == {"ok", "output", "error"}
    return result


def test_benign_call_plain_mode(capsys):
    assert tools_cmd.main(["call", "python", "--args", '{"code": "import math; print(math.factorial(10))"}']) == 0
    cap = capsys.readouterr()
    assert cap.out == "3628800\n" and cap.err == ""


def test_error_goes_to_stderr_with_status_1(capsys):
    assert tools_cmd.main(["call", "python", "--args", '{"code": "print(1); 1/0"}']) == 1
    cap = capsys.readouterr()
    assert cap.out == "1\n" and "ZeroDivisionError" in cap.err


def test_args_from_stdin(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"code": "print(\\"from stdin\\")"}'))
    assert tools_cmd.main(["call", "python", "--args", "-", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"ok": True, "output": "from stdin\n", "error": None}


@pytest.mark.parametrize("bad", ["{not json", "[1, 2]", '"code"'])
def test_invalid_args_exit_2(capsys, bad):
    assert tools_cmd.main(["call", "python", "--args", bad]) == 2
    err = capsys.readouterr().err
    assert "--args" in err and "JSON object" in err


def test_unknown_tool_needs_kind(capsys):
    assert tools_cmd.main(["call", "ls", "--args", "{}"]) == 2
    assert "--kind is required" in capsys.readouterr().err


def test_hostile_categories_through_the_cli(capsys):
    os.environ["TOOLGYM_CLI_SECRET"] = "cli-secret-93e1"
    try:
        r = call_json(capsys, "import socket; socket.create_connection(('1.1.1.1', 80), timeout=1)")
        assert not r["ok"] and "OSError" in r["error"] or "unreachable" in r["error"]
        repo_file = str(Path(__file__).resolve().parents[3] / "pyproject.toml")  # the checkout, wherever it is
        r = call_json(capsys, f"import os, glob\nprint(os.path.exists('/etc/passwd'), os.path.exists({repo_file!r}))\nprint(any('cli-secret' in open(f).read() for f in glob.glob('/proc/*/environ')), 'cli-secret' in str(os.environ))")
        assert r["ok"] and r["output"] == "False False\nFalse False\n", r
        r = call_json(capsys, "import os\nwhile True:\n    try: os.fork()\n    except OSError: pass", "--wall-s", "1")
        assert not r["ok"] and "wall-time" in r["error"]
        r = call_json(capsys, "while True: pass", "--cpu-s", "1", "--wall-s", "10")
        assert not r["ok"] and "CPU" in r["error"]
        r = call_json(capsys, "b = bytearray(8 << 30)")
        assert not r["ok"] and "MemoryError" in r["error"]
        r = call_json(capsys, "while True: print('z' * 4096)", "--output-bytes", "1000")
        assert not r["ok"] and r["output"].startswith("z" * 1000) and "[output truncated" in r["output"]
        r = call_json(capsys, "import os\nfor pid in (os.getppid(), -1, 1):\n    try: os.kill(pid, 9)\n    except OSError: pass\nprint('alive')")
        assert r == {"ok": True, "output": "alive\n", "error": None}
        r = call_json(capsys, "open('/tmp/../usr/evil', 'w')")
        assert not r["ok"] and "Read-only file system" in r["error"]
        r = call_json(capsys, "open('f', 'wb').write(b'x' * (32 << 20))", "--file-bytes", "1000000")
        assert not r["ok"] and "File too large" in r["error"]
    finally:
        os.environ.pop("TOOLGYM_CLI_SECRET", None)


def test_module_entry_point_runs_in_a_subprocess():
    proc = subprocess.run(
        [sys.executable, "-m", "toolgym.env.cli.tools_cmd", "call", "python", "--args", '{"code": "print(40 + 2)"}', "--json"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"ok": True, "output": "42\n", "error": None}
