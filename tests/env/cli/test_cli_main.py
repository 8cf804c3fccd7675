"""The ``toolgym`` entry point: a mistake the user can fix is one line on stderr and exit status 2."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from toolgym.env.cli.main import main

FIXTURES = Path(__file__).resolve().parents[2] / "evals" / "fixtures"


def _closed_port() -> int:
    with socket.socket() as s:  # bound then released: nothing listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(("argv", "says"), [
    (["tasks", "--suite", "nope"], "unknown suite 'nope'"),
    (["tasks", "--category", "nope"], "has no category nope"),
    (["tasks", "--suite", "/nonexistent/tasks.jsonl"], "No such file"),
])
def test_bad_arguments_are_one_line(argv, says, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("toolgym tasks: error: ") and says in err and err.count("\n") == 1, err


def test_unreachable_server_is_one_line(capsys):
    argv = ["eval", "kagentbench", "--data", str(FIXTURES / "kagent_items.jsonl"),
            "--predictions", str(FIXTURES / "kagent_preds.jsonl"), "--server", f"127.0.0.1:{_closed_port()}"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "the server is unreachable" in err and "is `toolgym serve` running" in err and "Traceback" not in err, err


def test_debug_keeps_the_traceback():
    with pytest.raises(ValueError, match="unknown suite"):
        main(["--log-level", "DEBUG", "tasks", "--suite", "nope"])
