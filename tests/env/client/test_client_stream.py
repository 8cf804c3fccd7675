"""StreamSessions: the unary client's reset/step/close over one Sessions stream, on a real loopback server."""

from __future__ import annotations

import threading

import grpc
import pytest

from toolgym.env.client import ToolgymClient
from toolgym.env.client_stream import StreamItemError, StreamSessions


def _play(env, task_id: str, turns: list[list[str]]) -> list:
    r = env.reset(task_id, template="pythonic", seed=0)
    results, index = [], 0
    for calls in turns:
        for action in ([f"[{', '.join(calls)}]"] if calls else []) + ["Done with this request."]:
            res = env.step(r.session_id, action, step_index=index)
            index += 1
            results.append(res)
            if res.terminated or res.truncated:
                return results
    return results


def test_stream_episode_equals_unary_episode(env_server, bfcl_suite):
    """Same task, seed and actions: the stream and unary transports give identical observations and scores."""
    task = "multi_turn_base_3"
    with ToolgymClient(env_server.address) as unary:
        turns = [[str(c) for c in t] for t in bfcl_suite.get(task).ground_truth]
        via_unary = _play(unary, task, turns)
        with StreamSessions(unary) as stream:
            via_stream = _play(stream, task, turns)
    assert [r.observation for r in via_stream] == [r.observation for r in via_unary]
    assert via_stream[-1].terminated and via_stream[-1].score is not None
    assert via_stream[-1].score.total == via_unary[-1].score.total
    assert via_stream[-1].score.components == via_unary[-1].score.components


def test_stream_errors_carry_status_and_stream_stays_usable(env_server):
    with ToolgymClient(env_server.address) as unary, StreamSessions(unary) as stream:
        with pytest.raises(StreamItemError) as e:
            stream.step("no-such-session", "ls()")
        assert e.value.code == grpc.StatusCode.NOT_FOUND
        r = stream.reset("simple_python_0", template="hermes")  # the same stream still serves
        assert r.session_id and r.observation
        assert stream.close_session(r.session_id) is True


def test_many_threads_share_one_stream(env_server):
    """Concurrent callers get their own replies (tags), however the server orders them."""
    errors: list[BaseException] = []
    totals: dict[int, float] = {}
    with ToolgymClient(env_server.address) as unary, StreamSessions(unary) as stream:
        def one(i: int) -> None:
            try:
                r = stream.reset(f"irrelevance_{i}", template="hermes")
                s = stream.step(r.session_id, "I can't help with that: no offered tool fits.")
                assert r.info["task_id"] == f"irrelevance_{i}" and s.terminated and s.step_index == 0
                totals[i] = s.score.total
            except BaseException as exc:  # collected: a failure in a thread must fail the test
                errors.append(exc)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors
    assert len(totals) == 24


def test_other_methods_go_to_the_unary_client(env_server):
    with ToolgymClient(env_server.address) as unary, StreamSessions(unary) as stream:
        assert stream.health() == "SERVING"
        tasks = stream.list_tasks(categories=["simple_python"], limit=3)
        assert len(tasks) == 3


def test_calls_after_the_server_stops_raise_instead_of_hanging(bfcl_suite):
    from toolgym.env.server.app import ServerConfig, start_server

    srv = start_server(ServerConfig(port=0), suite=bfcl_suite)
    unary = ToolgymClient(srv.address, timeout=5.0)
    stream = StreamSessions(unary, owns_client=True)
    r = stream.reset("simple_python_1", template="hermes")
    srv.stop(0)
    with pytest.raises((ConnectionError, StreamItemError, TimeoutError)):
        stream.step(r.session_id, "x", timeout=5.0)
    stream.close()
