"""GRPO on an accelerator: what the toolgym reward server costs a GPU trainer (issue: GPU check).

Four timed configurations, one run, same random-init model and seed:

  a. ``reward_inprocess``  GRPO, rewards from the scorer called in the trainer process (the baseline);
  b. ``reward_grpc``       GRPO, rewards from the toolgym server over gRPC ``ScoreBatch``;
  c. ``episodes_stream``   GRPO whose rollouts are multi-turn episodes on the server, every session
                           multiplexed on one ``EnvService.Sessions`` stream (``server.transport: stream``);
  d. ``episodes_lora``     (c) training a LoRA adapter (peft) instead of all weights.

The server is a separate ``toolgym serve`` process on this machine's CPU cores, as a user would run it.
For each configuration it prints tokens/s, median step time, peak GPU memory and the reward server's
share of step time: the wall time during which at least one call to the server (or the in-process
scorer, for a) was outstanding, over the training wall time. Ratios b/a and c/a are the headline:
tokens/s with the server over tokens/s with in-process scoring.

The model is Qwen2-shaped at 0.5B (hidden 896, 24 layers, 14 heads, 2 KV heads, MLP 4864) with random
weights and the offline tiny BPE tokenizer, so nothing is downloaded or carried. ``--dry-run`` runs
the same four configurations with tiny shapes on the CPU (CI runs it): every code path, no figures.

    python bench/gpu/bench_gpu.py --device cuda --json-out /tmp/gpu.json
    python bench/gpu/bench_gpu.py --dry-run
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # bench/ holds bench_grpo, whose runners this bench reuses

import bench_grpo  # noqa: E402

SHAPES = {
    "0.5b": {"hidden_size": 896, "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
             "intermediate_size": 4864},
    "tiny": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
             "intermediate_size": 128},
}


class Outstanding:
    """Wall time during which at least one tracked call is in flight (calls may overlap across threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inflight = 0
        self._since = 0.0
        self.busy_s = 0.0
        self.calls = 0

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        with self._lock:
            if self._inflight == 0:
                self._since = time.perf_counter()
            self._inflight += 1
            self.calls += 1
        try:
            yield
        finally:
            with self._lock:
                self._inflight -= 1
                if self._inflight == 0:
                    self.busy_s += time.perf_counter() - self._since


class TimedClient:
    """A client whose reset/step/close_session are tracked by an :class:`Outstanding`; all else passes through."""

    def __init__(self, inner: Any, clock: Outstanding):
        self._inner, self._clock = inner, clock

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in ("reset", "step", "close_session"):
            return attr

        def timed(*a: Any, **kw: Any) -> Any:
            with self._clock.track():
                return attr(*a, **kw)

        return timed


def timed_reward(clock: Outstanding) -> Callable[[Any], Any]:
    def wrap(fn: Any) -> Any:
        def reward(*a: Any, **kw: Any) -> Any:
            with clock.track():
                return fn(*a, **kw)

        reward.__name__ = getattr(fn, "__name__", "toolgym")
        return reward

    return wrap


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def toolgym_server() -> Iterator[str]:
    """``toolgym serve`` in its own process on loopback; yields its address once it answers SERVING."""
    from toolgym.env.client import ToolgymClient

    port = _free_port()
    cmd = [sys.executable, "-m", "toolgym.env.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    address = f"127.0.0.1:{port}"
    try:
        with ToolgymClient(address, timeout=5.0) as c:
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"toolgym serve exited with {proc.returncode}: {proc.stderr.read()[-2000:]}")
                try:
                    if c.health() == "SERVING":
                        break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                time.sleep(0.25)
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _gpu_mem_reset(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _gpu_mem_peak(device: str) -> float | None:
    if device != "cuda":
        return None
    import torch

    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 2**30


def run_config(name: str, args: argparse.Namespace, *, model_dir: str, address: str, rows: list[dict[str, Any]],
               mt_task_ids: list[str]) -> dict[str, Any]:
    from toolgym.env.client import ToolgymClient
    from toolgym.env.client_stream import StreamSessions

    clock = Outstanding()
    run_args = argparse.Namespace(**vars(args))
    run_args.callbacks = ()
    _gpu_mem_reset(args.device)
    t0 = time.perf_counter()
    if name in ("reward_inprocess", "reward_grpc"):
        run_args.wrap_reward = timed_reward(clock)
        r = bench_grpo.run_once("local" if name == "reward_inprocess" else "remote", model_dir=model_dir, address=address,
                                rows=rows, args=run_args)
    else:
        run_args.max_turns = args.max_turns
        run_args.lora = name == "episodes_lora"
        run_args.template = "pythonic"
        unary = ToolgymClient(address, timeout=120.0)
        stream = StreamSessions(unary, owns_client=True)
        try:
            r = bench_grpo.run_episodes_once("remote", model_dir=model_dir, client=TimedClient(stream, clock),
                                             task_ids=mt_task_ids, args=run_args)
        finally:
            stream.close()
    wall = time.perf_counter() - t0
    r = dict(r)
    r.update(config=name, gpu_peak_gib=_gpu_mem_peak(args.device), server_calls=clock.calls,
             server_share=clock.busy_s / r["wall_s"] if r.get("wall_s") else None, total_s=wall)
    return r


def versions() -> dict[str, Any]:
    import torch
    import transformers
    import trl

    v: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                         "transformers": transformers.__version__, "trl": trl.__version__}
    with contextlib.suppress(ImportError):
        import peft

        v["peft"] = peft.__version__
    if torch.cuda.is_available():
        v["cuda"] = torch.version.cuda
        v["card"] = torch.cuda.get_device_name(0)
        v["gpu_total_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    return v


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--dry-run", action="store_true", help="tiny shapes on the CPU, 1 timed step: every path, no figures")
    p.add_argument("--shape", choices=sorted(SHAPES), default="0.5b")
    p.add_argument("--steps", type=int, default=6, help="timed steps per configuration")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps at the start of each configuration")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--num-generations", type=int, default=8)
    p.add_argument("--completion-length", type=int, default=128, help="tokens per generated turn")
    p.add_argument("--max-turns", type=int, default=3, help="model turns per multi-turn episode (c, d)")
    p.add_argument("--tasks", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--configs", default="reward_inprocess,reward_grpc,episodes_stream,episodes_lora")
    p.add_argument("--json-out", default=None)
    args = p.parse_args(argv)
    if args.dry_run:
        args.device, args.shape = "cpu", "tiny"
        args.steps, args.warmup, args.batch, args.num_generations = 1, 0, 2, 2
        args.completion_length, args.max_turns, args.tasks = 8, 2, 4
    args.template = "hermes"
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            p.error("--device cuda but torch sees no CUDA device; use --dry-run on a CPU machine")

    from toolgym.trainer.data import load_tasks, prompt_messages
    from toolgym.trainer.tiny import build_tiny_model

    work = tempfile.mkdtemp(prefix="bench_gpu_")
    model_dir = build_tiny_model(os.path.join(work, f"model-{args.shape}"), seed=args.seed, **SHAPES[args.shape])
    tasks = load_tasks("bfcl", ["simple_python"])[: args.tasks]
    rows = [{"prompt": prompt_messages(t, args.template), "task_id": t.id} for t in tasks]
    mt_ids = [t.id for t in load_tasks("bfcl", ["multi_turn_base"])[: args.tasks]]

    summary: dict[str, Any] = {"device": args.device, "dry_run": args.dry_run, "shape": args.shape,
                               "settings": {k: v for k, v in vars(args).items() if k not in ("json_out",)},
                               "versions": versions(), "configs": {}}
    with toolgym_server() as address:
        summary["server"] = address
        for name in [c.strip() for c in args.configs.split(",") if c.strip()]:
            r = run_config(name, args, model_dir=model_dir, address=address, rows=rows, mt_task_ids=mt_ids)
            summary["configs"][name] = r
            print(f"[{name:>16}] {r['tokens_per_s']:9.0f} tok/s  median step {r['median_step_s'] * 1000:8.1f} ms  "
                  f"server share {100 * (r['server_share'] or 0):5.1f}%  peak GPU {r['gpu_peak_gib'] or 0:.2f} GiB", flush=True)
    cfgs = summary["configs"]
    base = cfgs.get("reward_inprocess", {}).get("tokens_per_s")
    if base:
        summary["ratios"] = {f"{k}/reward_inprocess": v["tokens_per_s"] / base for k, v in cfgs.items() if k != "reward_inprocess"}
    print(json.dumps({k: v for k, v in summary.items() if k != "settings"}, indent=2, default=str))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
