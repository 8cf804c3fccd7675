"""GRPO step time: rewards from a toolgym server (gRPC ScoreBatch) vs the same scorer called in-process.

Both runs train the same tiny model with the same seed on the same BFCL prompts, so they generate the same
completions and do exactly the same scoring work; the only difference is where the scorer runs:

- ``remote``: ``reward_funcs=[toolgym.trainer.RemoteReward(address)]`` — one ``ScoreBatch`` RPC per step to a
  server on loopback (started in-process here, with its own gRPC threads);
- ``local``: a reward function calling ``toolgym.env.reward.engine.score_output`` on the same tasks in the
  trainer process (the server's scoring code path, minus gRPC).

``--mode episodes`` compares the trainer's own GRPO path instead — rollouts are EnvService episodes
(``ToolgymRollout``): over gRPC to the server vs. the same ``EnvServicer`` called in-process (``do_reset``/``do_step``
on the same objects the server would run, minus gRPC). ``--mode both`` (default) runs both comparisons.

Runs alternate (remote, local, remote, ...) ``--repeats`` times to spread machine noise over both; each run's
first ``--warmup`` steps are discarded and the median of the rest is kept. Prints both medians and the ratio
remote/local (target <= 1.2). ``--device cuda`` runs the same comparison on a GPU (tokens/s is printed too).

    python bench/bench_grpo.py --steps 12 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


class LocalReward:
    """The server's scorer, in-process: same inputs, same outputs as RemoteReward (metrics logging included)."""

    def __init__(self, template: str):
        from toolgym.env.reward.engine import score_output
        from toolgym.env.tasks.suite import load_suite

        self.__name__ = "toolgym"
        self.suite = load_suite("bfcl")
        self.score_output = score_output
        self.template = template

    def __call__(self, prompts: Any = None, completions: Any = None, task_id: Any = None, **kw: Any) -> list[float | None]:
        from toolgym.trainer.rewards import _as_episode, _log_all, completion_to_text
        from toolgym.trainer.rollout import DEFAULT_WEIGHTS, episode_metrics

        out, eps = [], []
        for c, tid in zip(completions, task_id):
            r = self.score_output(self.suite.get(tid), completion_to_text(c), self.template)
            out.append(r.total if r.valid else None)
            eps.append(_as_episode(r.total, r.valid, r.components, r.penalties, DEFAULT_WEIGHTS))
        _log_all(kw.get("log_metric"), episode_metrics(eps, DEFAULT_WEIGHTS))
        return out


class LocalEnvClient:
    """``ToolgymClient``'s reset/step/close, served by an in-process ``EnvServicer`` (no gRPC)."""

    def __init__(self) -> None:
        from toolgym.env.server.app import ServerConfig
        from toolgym.env.server.env_service import EnvServicer
        from toolgym.env.tasks.suite import load_suite

        cfg = ServerConfig()
        self.svc = EnvServicer(load_suite(cfg.suite), cfg)

    def reset(self, task_id=None, *, seed=None, template=None, max_steps=None, **kw):  # noqa: ANN001, ANN201
        from toolgym.env.client import ResetResult
        from toolgym.v1 import env_pb2

        req = env_pb2.ResetRequest(task_id=task_id or "", template=template or "", max_steps=max_steps or 0)
        if seed is not None:
            req.seed = int(seed)
        resp = self.svc.do_reset(req)
        return ResetResult(resp.session_id, resp.observation, json.loads(resp.info_json or "{}"))

    def step(self, session_id, action, *, step_index=None, **kw):  # noqa: ANN001, ANN201
        from toolgym.env.client import step_result
        from toolgym.v1 import env_pb2

        req = env_pb2.StepRequest(session_id=session_id, action=action)
        if step_index is not None:
            req.step_index = step_index
        return step_result(self.svc.do_step(req))

    def close_session(self, session_id, **kw):  # noqa: ANN001, ANN201
        from toolgym.v1 import env_pb2

        try:
            return self.svc.do_close(env_pb2.CloseRequest(session_id=session_id)).closed
        except Exception:
            return False

    def close(self) -> None:
        pass


def run_episodes_once(kind: str, *, model_dir: str, client: Any, task_ids: list[str], args: argparse.Namespace) -> dict[str, float]:
    import torch

    from toolgym.trainer.common import load_model, load_tokenizer
    from toolgym.trainer.config_load import config_from_dict
    from toolgym.trainer.grpo import build_grpo_trainer

    torch.manual_seed(args.seed)
    timer = _step_timer()
    with tempfile.TemporaryDirectory() as out:
        cfg = config_from_dict({
            "output_dir": out, "seed": args.seed,
            "model": {"name_or_path": model_dir, "dtype": "bfloat16" if args.device == "cuda" else "float32",
                      "use_peft": bool(getattr(args, "lora", False)),
                      "gradient_checkpointing": bool(getattr(args, "gradient_checkpointing", False))},
            "grpo": {"max_steps": args.warmup + args.steps, "per_device_train_batch_size": args.batch,
                     "num_generations": args.num_generations, "max_completion_length": args.completion_length * getattr(args, "max_turns", 1),
                     "max_turn_tokens": args.completion_length, "max_turns": getattr(args, "max_turns", 1), "learning_rate": 1e-4,
                     "logging_steps": 1000, "eval_heldout": False, "bf16": args.device == "cuda",
                     "extra": {"shuffle_dataset": False, "use_cpu": args.device == "cpu"}},
        })
        rows = [{"prompt": t, "task_id": t, "seed": i, "template": args.template} for i, t in enumerate(task_ids)]
        tok = load_tokenizer(model_dir)
        trainer = build_grpo_trainer(cfg, client, model=load_model(model_dir, cfg.model), tokenizer=tok, rows=rows,
                                     callbacks=[timer, *getattr(args, "callbacks", ())])
        t0 = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - t0
        n_tokens = trainer.state.num_input_tokens_seen
    kept = timer.times[args.warmup :]
    return {"median_step_s": statistics.median(kept), "mean_step_s": statistics.fmean(kept), "wall_s": wall,
            "tokens_per_s": n_tokens / wall if wall else 0.0}


def _step_timer():
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self.tokens: list[float] = []
            self._t = 0.0

        def on_step_begin(self, args, state, control, **kw):  # noqa: ANN001
            self._t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):  # noqa: ANN001
            self.times.append(time.perf_counter() - self._t)

    return StepTimer()


def run_once(kind: str, *, model_dir: str, address: str, rows: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, float]:
    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from toolgym.trainer.rewards import RemoteReward

    torch.manual_seed(args.seed)
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"
    tok.response_template = None  # plain-text completions: the server parses them with its template parser
    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    reward = RemoteReward(address, template=args.template) if kind == "remote" else LocalReward(args.template)
    timer = _step_timer()
    with tempfile.TemporaryDirectory() as out:
        cfg = GRPOConfig(
            output_dir=out,
            max_steps=args.warmup + args.steps,
            per_device_train_batch_size=args.batch,
            num_generations=args.num_generations,
            max_completion_length=args.completion_length,
            learning_rate=1e-4,
            logging_steps=1000,
            save_strategy="no",
            report_to=[],
            seed=args.seed,
            bf16=args.device == "cuda",
            use_cpu=args.device == "cpu",
            disable_tqdm=True,
            shuffle_dataset=False,
        )
        wrap = getattr(args, "wrap_reward", None)
        trainer = GRPOTrainer(model=model, reward_funcs=[wrap(reward) if wrap else reward], args=cfg,
                              train_dataset=Dataset.from_list(rows), processing_class=tok,
                              callbacks=[timer, *getattr(args, "callbacks", ())])
        t0 = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - t0
        n_tokens = trainer.state.num_input_tokens_seen
    kept = timer.times[args.warmup :]
    return {"median_step_s": statistics.median(kept), "mean_step_s": statistics.fmean(kept), "wall_s": wall,
            "tokens_per_s": n_tokens / wall if wall else 0.0}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=12, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps at the start of each run")
    p.add_argument("--repeats", type=int, default=2, help="alternating remote/local pairs")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--num-generations", type=int, default=4)
    p.add_argument("--completion-length", type=int, default=32)
    p.add_argument("--template", default="hermes")
    p.add_argument("--category", default="simple_python")
    p.add_argument("--tasks", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--model", default=None, help="model dir (default: the offline tiny model)")
    p.add_argument("--hidden-size", type=int, default=64, help="tiny model width (with --model unset)")
    p.add_argument("--layers", type=int, default=2, help="tiny model depth (with --model unset)")
    p.add_argument("--address", default=None, help="use a running server instead of an in-process one")
    p.add_argument("--mode", choices=["reward", "episodes", "both"], default="both")
    p.add_argument("--json-out", default=None)
    args = p.parse_args(argv)

    from toolgym.trainer.data import load_tasks, prompt_messages
    from toolgym.trainer.tiny import build_tiny_model

    work = tempfile.mkdtemp(prefix="bench_grpo_")
    model_dir = args.model or build_tiny_model(os.path.join(work, "tiny"), seed=args.seed, hidden_size=args.hidden_size,
                                               num_hidden_layers=args.layers)
    tasks = load_tasks("bfcl", [args.category])[: args.tasks]
    rows = [{"prompt": prompt_messages(t, args.template), "task_id": t.id} for t in tasks]

    srv = None
    address = args.address
    if address is None:
        from toolgym.env.server.app import ServerConfig, start_server

        srv = start_server(ServerConfig(host="127.0.0.1", port=0))
        address = srv.address
    modes = ["reward", "episodes"] if args.mode == "both" else [args.mode]
    summary: dict[str, Any] = {"device": args.device, "config": {k: v for k, v in vars(args).items() if k != "json_out"}}
    try:
        for mode in modes:
            results: dict[str, list[dict[str, float]]] = {"remote": [], "local": []}
            local_env = LocalEnvClient() if mode == "episodes" else None
            remote_env = None
            if mode == "episodes":
                from toolgym.env.client import ToolgymClient

                remote_env = ToolgymClient(address, timeout=120.0)
            for _ in range(args.repeats):
                for kind in ("remote", "local"):
                    if mode == "reward":
                        r = run_once(kind, model_dir=model_dir, address=address, rows=rows, args=args)
                    else:
                        r = run_episodes_once(kind, model_dir=model_dir, client=remote_env if kind == "remote" else local_env,
                                              task_ids=[t.id for t in tasks], args=args)
                    results[kind].append(r)
                    print(f"[{mode}] {kind:>6}: median step {r['median_step_s'] * 1000:8.1f} ms   mean {r['mean_step_s'] * 1000:8.1f} ms   "
                          f"{r['tokens_per_s']:9.0f} tok/s", flush=True)
            if remote_env is not None:
                remote_env.close()
            med = {k: statistics.median(x["median_step_s"] for x in v) for k, v in results.items()}
            ratio = med["remote"] / med["local"]
            what = "rewards via gRPC ScoreBatch" if mode == "reward" else "episodes via gRPC Reset/Step"
            print(f"GRPO step time [{mode}]  {what} {med['remote'] * 1000:.1f} ms  vs  in-process {med['local'] * 1000:.1f} ms"
                  f"  ->  ratio {ratio:.3f}  (target <= 1.2)", flush=True)
            summary[mode] = {
                "remote_median_step_s": med["remote"],
                "local_median_step_s": med["local"],
                "ratio_remote_over_local": ratio,
                "remote_tokens_per_s": statistics.median(x["tokens_per_s"] for x in results["remote"]),
                "local_tokens_per_s": statistics.median(x["tokens_per_s"] for x in results["local"]),
                "runs": results,
            }
    finally:
        if srv is not None:
            srv.stop(grace=0.5)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(summary, f, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
