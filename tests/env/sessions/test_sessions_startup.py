"""A SQLite store that cannot be used stops `toolgym serve` at start: one line, exit 2."""

from __future__ import annotations

import sqlite3
import subprocess

import pytest

from toolgym.env.sessions.sqlite_store import SqliteStore

from sessions_support import free_port, serve_cmd


def _serve(url: str) -> subprocess.CompletedProcess:
    return subprocess.run(serve_cmd(free_port(), url), capture_output=True, text=True, timeout=120)


def _corrupt(path) -> None:
    path.write_bytes(b"this is not a database " * 400)


def _foreign_lock(path):
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE t(x)")
    db.execute("BEGIN EXCLUSIVE")  # another program in the middle of a write
    return db


def _other_server(path):
    return SqliteStore(str(path))


@pytest.mark.parametrize("make,says", [
    (_corrupt, "is not a toolgym SQLite store or it is corrupt"),
    (_foreign_lock, "is locked by another process"),
    (_other_server, "is in use by another toolgym server"),
])
def test_an_unusable_sqlite_file_is_one_line_and_exit_2(tmp_path, make, says):
    path = tmp_path / "sessions.db"
    holder = make(path)
    try:
        r = _serve(f"sqlite:///{path}")
    finally:
        if holder is not None:
            (holder.close_store if isinstance(holder, SqliteStore) else holder.close)()
    lines = [ln for ln in r.stderr.splitlines() if "toolgym serve: error:" in ln]
    assert r.returncode == 2, r.stderr[-2000:]
    assert len(lines) == 1 and says in lines[0] and str(path) in lines[0], r.stderr[-2000:]
    assert "Traceback" not in r.stderr
