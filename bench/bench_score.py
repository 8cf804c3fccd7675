"""Scoring throughput: in-process engine vs RewardService.ScoreBatch over loopback.

Prints items/s for both, and the ratio remote/in-process, measured in the same run. The
server runs in its own process (as in production), so the comparison is one core scoring
in-process vs a client and a server sharing the machine's cores.

    python bench/bench_score.py [--items 20000] [--batch 1000] [--clients 2]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time

from toolgym.env.client import ToolgymClient
from toolgym.env.reward.engine import score_output
from toolgym.env.tasks.suite import load_suite

CATEGORIES = ["simple_python", "multiple", "parallel", "parallel_multiple", "live_simple", "live_multiple",
              "live_parallel", "live_parallel_multiple", "irrelevance", "live_irrelevance"]


def make_outputs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """(task_id, hermes output) pairs: ground truth and simple perturbations of it."""
    rng = random.Random(seed)
    suite = load_suite("bfcl")
    tasks = [t for t in suite.filter(categories=CATEGORIES)]
    items = []
    while len(items) < n:
        t = rng.choice(tasks)
        calls = []
        for gt in t.ground_truth:
            name, params = next(iter(gt.items()))
            args = {k: v[0] for k, v in params.items() if v and v[0] != ""}
            if args and rng.random() < 0.3:
                k = rng.choice(list(args))
                args[k] = "perturbed" if not isinstance(args[k], str) else args[k].upper() + "!"
            calls.append({"name": name, "arguments": args})
        if rng.random() < 0.1:
            text = "I cannot help with that."
        else:
            text = "".join(f"<tool_call>{json.dumps(c, ensure_ascii=False)}</tool_call>" for c in calls)
        items.append((t.id, text))
    return items


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_reward_server(wait_s: float = 90.0) -> tuple[subprocess.Popen, int, ToolgymClient]:
    """A RewardService-only ``toolgym serve`` in its own process (as in production), once it answers health."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "toolgym.env.cli.main", "--log-level", "WARNING", "serve", "--port", str(port), "--no-env"],
                            stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    client = ToolgymClient(f"127.0.0.1:{port}", timeout=600)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            client.health(timeout=1)
            return proc, port, client
        except Exception:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.terminate()
                raise SystemExit("server did not start")
            time.sleep(0.2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=2)
    args = ap.parse_args()

    suite = load_suite("bfcl")
    items = make_outputs(args.items)
    tasks = {tid: suite.get(tid) for tid, _ in items}

    # Warm up both paths, then measure in-process on this one core.
    for tid, out in items[:500]:
        score_output(tasks[tid], out, "hermes")
    t0 = time.perf_counter()
    for tid, out in items:
        score_output(tasks[tid], out, "hermes")
    local_s = time.perf_counter() - t0
    local_rate = len(items) / local_s

    proc, port, client = start_reward_server()
    try:
        reqs = [{"task_id": tid, "output": out, "template": "hermes"} for tid, out in items]
        client.score_batch(reqs[:500])
        chunks = [reqs[i:i + args.batch] for i in range(0, len(reqs), args.batch)]
        lock = threading.Lock()

        def worker() -> None:
            with ToolgymClient(f"127.0.0.1:{port}", timeout=600) as c:
                while True:
                    with lock:
                        if not chunks:
                            return
                        chunk = chunks.pop()
                    c.score_batch(chunk)

        t0 = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(args.clients)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        remote_s = time.perf_counter() - t0
        remote_rate = len(items) / remote_s
        client.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    print(f"items: {len(items)}  batch: {args.batch}  clients: {args.clients}  cpus: {os.cpu_count()}")
    print(f"in-process (1 core):     {local_rate:10.0f} items/s  ({local_s:.2f} s)")
    print(f"ScoreBatch over loopback:{remote_rate:10.0f} items/s  ({remote_s:.2f} s)")
    print(f"ratio remote/in-process: {remote_rate / local_rate:.2f}  (target >= 0.5; in-process target >= 10000 items/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
