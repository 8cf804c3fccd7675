"""kill -9 of `toolgym serve` mid-run with many in-flight multi-turn sessions, a restart on the
same SQLite file, clients retrying with step_index: every session finishes with the rewards
of an uninterrupted run, none is lost."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import grpc

from toolgym.env.client import RetryPolicy, ToolgymClient
from toolgym.env.tasks.suite import load_suite

from sessions_support import free_port, gt_actions, reference_rewards, start_serve

N_SESSIONS = 64  # the fault table: 64 in-flight multi-turn sessions


def test_kill_9_mid_run_then_restart_on_the_same_file_loses_nothing(tmp_path):
    suite = load_suite("bfcl-multi")
    tasks = sorted(suite.filter(categories=["multi_turn_base"]), key=lambda t: t.id)[:N_SESSIONS]
    port, url, log = free_port(), f"sqlite:///{tmp_path}/sessions.db", tmp_path / "serve.log"
    proc = start_serve(port, url, "--max-steps", "64", log=log)
    retry = RetryPolicy(max_attempts=60, initial_backoff_s=0.05, max_backoff_s=0.5, max_elapsed_s=120)
    applied = threading.Semaphore(0)
    results: dict[str, list[float]] = {}
    errors: list[BaseException] = []
    try:
        with ToolgymClient(f"127.0.0.1:{port}", timeout=30, retry=retry) as c:
            sessions = [(t, c.reset(t.id, template="hermes", max_steps=64).session_id) for t in tasks]

            def play(task, sid: str) -> None:
                try:
                    rewards = []
                    for i, a in enumerate(gt_actions(task)):
                        rewards.append(c.step(sid, a, step_index=i).reward)
                        applied.release()
                    results[task.id] = rewards
                except BaseException as e:  # noqa: BLE001 - reported by the main thread
                    errors.append(e)

            threads = [threading.Thread(target=play, args=s) for s in sessions]
            for th in threads:
                th.start()
            total = sum(len(gt_actions(t)) for t in tasks)
            for _ in range(total // 3):  # a third of all steps done, the rest in flight or queued
                assert applied.acquire(timeout=120), "no progress before the kill"
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            stats = tmp_path / "stats.json"
            proc = start_serve(port, url, "--max-steps", "64", "--stats-file", str(stats), "--stats-interval-s", "0.2", log=log)
            for th in threads:
                th.join(180)
            assert not errors, [e.details() if isinstance(e, grpc.RpcError) else repr(e) for e in errors][:3]
            time.sleep(0.5)
            # The restarted server rebuilt the unfinished sessions from the file by replaying their logs.
            assert json.loads(stats.read_text())["sessions_restored"] >= 1
    finally:
        proc.kill()
        proc.wait(10)
    assert len(results) == N_SESSIONS  # 0 lost
    assert results == reference_rewards(suite, tasks)
    assert all(r[-1] > 0.9 for r in results.values())  # ground truth: full episodes, scored
