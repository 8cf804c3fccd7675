"""Durable sessions through real in-process gRPC servers: a restart on the same SQLite file
continues every episode exactly; a tampered log is refused; a full disk fails loudly."""

from __future__ import annotations

import json
import sqlite3

import grpc
import pytest

from toolgym.env.client import ToolgymClient
from toolgym.env.server.app import ServerConfig, start_server
from toolgym.env.tasks.suite import load_suite

from sessions_support import gt_actions

N_TASKS = 6


@pytest.fixture(scope="module")
def suite():
    return load_suite("bfcl-multi")


@pytest.fixture(scope="module")
def tasks(suite):
    return sorted(suite.filter(categories=["multi_turn_base"]), key=lambda t: t.id)[:N_TASKS]


def _server(suite, store: str):
    return start_server(ServerConfig(port=0, session_store=store, sandbox_workers=2, max_steps=64), suite=suite)


def _play(client, sid: str, actions: list[str], start: int, stop: int) -> list:
    return [client.step(sid, actions[i], step_index=i) for i in range(start, stop)]


@pytest.fixture(scope="module")
def reference(suite, tasks):
    """Totals and replies of uninterrupted episodes (memory store)."""
    with _server(suite, "memory") as srv, ToolgymClient(srv.address, timeout=60) as c:
        out = {}
        for t in tasks:
            acts = gt_actions(t)
            sid = c.reset(t.id, template="hermes", max_steps=64).session_id
            out[t.id] = _play(c, sid, acts, 0, len(acts))
        return out


def test_a_restart_on_the_same_file_continues_every_episode_exactly(suite, tasks, reference, tmp_path):
    url = f"sqlite:///{tmp_path}/sessions.db"
    half: dict[str, tuple[str, list]] = {}
    with _server(suite, url) as srv, ToolgymClient(srv.address, timeout=60) as c:
        for t in tasks:
            acts = gt_actions(t)
            sid = c.reset(t.id, template="hermes", max_steps=64).session_id
            half[t.id] = (sid, _play(c, sid, acts, 0, len(acts) // 2))
    # A new server process-state on the same file: no live episode, only the store.
    with _server(suite, url) as srv, ToolgymClient(srv.address, timeout=60) as c:
        assert len(srv.env.sessions) == N_TASKS
        for t in tasks:
            acts = gt_actions(t)
            sid, first = half[t.id]
            k = len(first)
            # A retry of an applied step is answered from the store, byte for byte the same.
            assert c.step(sid, acts[k - 1], step_index=k - 1) == first[-1]
            rest = _play(c, sid, acts, k, len(acts))
            assert first + rest == reference[t.id], t.id
            assert rest[-1].terminated and rest[-1].score.total == reference[t.id][-1].score.total
        assert srv.env.sessions.restored == N_TASKS  # each was rebuilt once, by replay
        rollouts = list(srv.env.sessions.store.rollouts())
    assert sorted(r["task_id"] for r in rollouts) == sorted(t.id for t in tasks)
    r0 = next(r for r in rollouts if r["task_id"] == tasks[0].id)
    assert r0["reward"]["total"] == reference[tasks[0].id][-1].score.total
    assert [s["action"] for s in r0["steps"]] == gt_actions(tasks[0]) and "User:" in r0["prompt"]
    assert all(s["elapsed_ms"] >= 0 for s in r0["steps"]) and r0["config_hash"] and r0["template"] == "hermes"


def test_a_log_that_replays_differently_is_refused_not_continued(suite, tasks, tmp_path):
    url = f"sqlite:///{tmp_path}/sessions.db"
    t = tasks[0]
    acts = gt_actions(t)
    with _server(suite, url) as srv, ToolgymClient(srv.address, timeout=60) as c:
        sid = c.reset(t.id, template="hermes", max_steps=64).session_id
        _play(c, sid, acts, 0, 2)
    db = sqlite3.connect(f"{tmp_path}/sessions.db")
    (raw,) = db.execute("SELECT entry FROM steps WHERE session_id=? AND idx=0", (sid,)).fetchone()
    entry = json.loads(raw)
    entry["reply"]["observation"] += " (edited)"
    db.execute("UPDATE steps SET entry=? WHERE session_id=? AND idx=0", (json.dumps(entry), sid))
    db.commit()
    db.close()
    with _server(suite, url) as srv, ToolgymClient(srv.address, timeout=60) as c:
        with pytest.raises(grpc.RpcError) as e:
            c.step(sid, acts[2], step_index=2)
        assert e.value.code() == grpc.StatusCode.DATA_LOSS
        assert "replaying step 0" in e.value.details() and "observation" in e.value.details()


def test_a_full_disk_fails_the_step_loudly_and_never_answers_an_unstored_step(suite, tasks, tmp_path):
    path = tmp_path / "sessions.db"
    with _server(suite, f"sqlite:///{path}") as srv:
        pass  # creates the schema
    pages = sqlite3.connect(path).execute("PRAGMA page_count").fetchone()[0]
    url = f"sqlite:///{path}?max_page_count={pages + 3}"  # a store with room for a few steps only
    t = tasks[2]
    acts = gt_actions(t)
    answered = 0
    with _server(suite, url) as srv, ToolgymClient(srv.address, timeout=60) as c:
        sid = c.reset(t.id, template="hermes", max_steps=64).session_id
        with pytest.raises(grpc.RpcError) as e:
            for i in range(len(acts)):
                c.step(sid, acts[i] + " " * 3000, step_index=i)  # padded: each step takes room
                answered += 1
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE and answered >= 1
        assert "full" in e.value.details() and "no reply was sent" in e.value.details()
        stored = srv.env.sessions.store.load(sid)
        assert len(stored.entries) == answered  # every answered step is stored, the refused one is not
        # The same step again: still refused (the store is still full), never applied silently.
        with pytest.raises(grpc.RpcError) as again:
            c.step(sid, acts[answered] + " " * 3000, step_index=answered)
        assert again.value.code() == grpc.StatusCode.UNAVAILABLE
    # With room again, the retry applies on a state rebuilt from the stored log.
    with _server(suite, f"sqlite:///{path}") as srv, ToolgymClient(srv.address, timeout=60) as c:
        out = c.step(sid, acts[answered] + " " * 3000, step_index=answered)
        assert out.step_index == answered and len(srv.env.sessions.store.load(sid).entries) == answered + 1
