"""`toolgym serve` start-up mistakes: one line that says what to fix, exit status 2, no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(("args", "says"), [
    (["--suite", "nope"], "unknown suite 'nope'"),
    (["--suite", "/nonexistent/tasks.jsonl"], "No such file"),
    (["--max-steps", "5000"], "--max-steps (the default step limit) must be between 1 and --max-steps-limit (1000), got 5000"),
    (["--max-steps-limit", "0"], "--max-steps-limit must be >= 1"),
    (["--host", "0.0.0.0"], "reachable from other machines"),
])
def test_startup_mistakes_are_one_clear_line(args, says):
    r = subprocess.run([sys.executable, "-m", "toolgym.env.cli.main", "serve", "--port", "0", "--no-env", *args],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert says in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
