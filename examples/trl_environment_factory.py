"""GRPO with TRL's own ``environment_factory`` against toolgym's OpenEnv WebSocket gateway.

    python examples/trl_environment_factory.py [--steps N] [--out DIR]

Runs fully offline on CPU in about a minute: it builds toolgym's tiny random-init model
(``toolgym.trainer.tiny``), starts a toolgym server with its OpenEnv gateway on loopback (in process:
``start_server(ServerConfig(..., http_port=0))``, the same as ``toolgym serve --http-port P``), trains
``N`` GRPO steps with an unmodified ``trl.GRPOTrainer`` and prints the reward TRL logged for each step
(the server's ``total``) with the mean of every reward component. A random model earns little; the
point is the wiring. Exit status 0 means every step ran and was scored by the server.

How TRL 1.16 drives an ``environment_factory`` (``trl/trainer/grpo_trainer.py``)
-------------------------------------------------------------------------------
- ``GRPOTrainer.__init__`` calls the factory once to probe an instance: it must define ``reset``; every
  other public method of its class becomes a *tool* (``inspect.getmembers(type(instance), inspect.isfunction)``),
  rendered into the prompt by the chat template from the method's type hints and Google-style docstring.
  An optional ``get_reward()`` (no arguments) makes the environment a reward source. Instances are pooled:
  one per rollout in a batch, created on demand, reused (``reset``) across batches.
- For each rollout, ``environment.reset(**row)`` gets the dataset row (here ``task_id``, ``seed``,
  ``template``); a string it returns is appended to the row's last user message.
- Generation then runs TRL's tool loop: ``<tool_call>`` blocks in the completion are parsed with the
  tokenizer's response schema and dispatched *by name* to the instance's methods; what a method returns
  goes back to the model as a ``tool`` message; this repeats until a turn has no call or
  ``max_tool_calling_iterations`` is reached.
- Reward functions get ``completions`` and ``environments`` (the per-rollout instances, same order).

How toolgym maps onto it, and the gaps
--------------------------------------
toolgym is a *text* environment: an episode's action is the model's raw output, parsed by the episode's
template, and the task's tools change per task (BFCL). Three things in TRL 1.16 do not fit that as is:

1. The tool set is fixed per environment class (probed once in ``__init__``, dispatched by method name in
   ``_tool_call_loop``: ``if name in sync_tool_dict ... else: raise ValueError(f"Tool {name} not found.")``),
   so a task's own tools (``calculate_triangle_area``, ``math.factorial``, ...) cannot be TRL tools. The
   environment exposes one generic tool, ``call_tool(name, arguments)``, and re-renders each call as the
   hermes ``<tool_call>`` block toolgym's parser reads, i.e. the exact text the model would have written
   had it called the task tool directly; ``reset`` appends one line telling the model to do so.
2. The environment never sees the final assistant message (the answer, or "no call" for irrelevance
   tasks): TRL only passes tool-call arguments to it, and ``get_reward`` takes no arguments. So the
   reward is a reward function, ``toolgym_reward(completions, environments)``, which sends the final
   message as the episode's last action and returns ``reward_signals["total"]`` from the terminal
   observation's ``metadata`` (TRL's OpenEnv convention); ``get_reward`` is not defined. A
   ``valid=False`` score returns ``None``, which TRL drops rather than counting as 0.
3. Text outside the ``<tool_call>`` blocks of a calling turn is not part of the action toolgym receives,
   and parallel calls of one turn reach toolgym as consecutive steps (TRL calls the tool once per call),
   so a single-turn task is scored on its first call. For token-exact, template-faithful rollouts
   (any template, parallel calls, tool-result tokens masked out of the loss) use toolgym's own
   ``rollout_func`` (``toolgym.trainer.grpo.ToolgymRollout``, ``toolgym train grpo``).

Each TRL environment instance owns one :class:`toolgym_ws_env.ToolgymWSClient`, i.e. one WebSocket and on
it one toolgym session at a time (``reset`` replaces the previous episode; closing the socket closes the
session). That client is what ``openenv``'s ``GenericEnvClient`` does, written with ``websockets`` only,
because openenv is not installed in toolgym's venv.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# TRL warns that environment_factory is experimental; we know (see the docstring). Quiet tokenizers' fork warning.
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))  # toolgym_ws_env sits next to this file
from toolgym_ws_env import StepResult, ToolgymWSClient  # noqa: E402

TEMPLATE = "hermes"
"""toolgym's Qwen/Hermes template: its ``<tool_call>`` blocks are the ones TRL's Qwen2.5 chat template writes."""

BRIDGE_NOTE = ("\n\n(In this session, call any of the tools above through `call_tool`, "
               "giving the tool's name and its arguments object.)")
"""Appended to toolgym's prompt: TRL's system prompt offers only ``call_tool`` (gap 1 in the docstring)."""

TASKS = ["simple_python_0", "irrelevance_0", "toolgym_python_0", "simple_python_1",
         "multiple_0", "irrelevance_1", "simple_python_2", "toolgym_python_1"]
"""Single-turn BFCL calls, a no-call (irrelevance) task and tool-then-answer tasks (sandboxed python)."""


def hermes_call(name: str, arguments: Any) -> str:
    """One call in toolgym's hermes format: the text a model writes to call ``name`` directly."""
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False) + "\n</tool_call>"


class ToolgymEnv:
    """A TRL environment: one WebSocket to the gateway, one toolgym episode per rollout.

    TRL turns every public method except ``reset`` (and ``get_reward``) into a tool, so the helpers are private.
    """

    def __init__(self, url: str):
        self._client = ToolgymWSClient(url)
        self._last: StepResult | None = None

    # --- TRL's hook: called once per rollout with the dataset row's columns ---------------------------------
    def reset(self, **row: Any) -> str:
        self._last = self._client.reset(task_id=row["task_id"], seed=int(row["seed"]), template=row.get("template", TEMPLATE))
        # toolgym's rendered prompt (system text + the task's tool specs + the user's request) becomes the user turn.
        return self._last.text + BRIDGE_NOTE

    # --- the one tool TRL exposes to the model ---------------------------------------------------------------
    def call_tool(self, name: str, arguments: dict) -> str:
        """Call one of the task's tools, listed in the user message, with its arguments.

        Args:
            name: The name of the task's tool to call, exactly as listed.
            arguments: The tool's arguments, as a JSON object of parameter names to values.

        Returns:
            The tool's results, or the environment's reply when the episode is over.
        """
        if self._last is not None and self._last.done:
            # Raising makes TRL count a tool failure and show {"error": ...} to the model.
            raise ValueError("the episode is over; reply with your final answer")
        self._last = self._client.step(hermes_call(name, arguments))
        if self._last.done:  # single-turn tasks are scored on their calling turn
            return self._last.text or "Done: the episode is over."
        return self._last.text  # <tool_response> blocks (toolgym's own rendering of the results)

    # --- used by toolgym_reward, not by TRL directly -----------------------------------------------------------
    def _finish(self, final_text: str) -> dict[str, Any] | None:
        """Send the final assistant text as the episode's last action (unless a call already ended it)."""
        if self._last is None:
            return None
        if not self._last.done:
            self._last = self._client.step(final_text)
        return self._last.reward_signals

    def _close(self) -> None:
        self._client.close()


def _final_action(completion: list[dict[str, Any]]) -> str:
    """The last assistant turn as toolgym's raw action text.

    Its content, plus any ``call_tool`` calls TRL did not run (the loop stops at ``max_tool_calling_iterations``)
    rendered as the direct calls they stand for, so toolgym scores what the model last tried.
    """
    last = next((m for m in reversed(completion) if m.get("role") == "assistant"), None)
    if last is None:
        return ""
    parts = [last.get("content") or ""]
    for call in last.get("tool_calls") or []:
        fn = call.get("function", call)
        args = fn.get("arguments") or {}
        if fn.get("name") == "call_tool" and isinstance(args, dict):
            parts.append(hermes_call(str(args.get("name", "")), args.get("arguments", {})))
    return "\n".join(p for p in parts if p)


def toolgym_reward(completions: list[list[dict[str, Any]]], environments: list[ToolgymEnv],
                   log_metric: Any = None, **_: Any) -> list[float | None]:
    """TRL reward function: finish each rollout's episode and return the server's total (None if unscorable)."""
    totals: list[float | None] = []
    components: dict[str, list[float]] = {}
    for completion, env in zip(completions, environments, strict=True):
        signals = env._finish(_final_action(completion))
        if not signals or not signals.get("valid", False):
            totals.append(None)  # TRL drops it (NaN) instead of counting an unscorable episode as 0
            continue
        totals.append(float(signals["total"]))
        for k, v in {**signals["components"], **{f"penalty/{p}": x for p, x in signals["penalties"].items()}}.items():
            components.setdefault(k, []).append(float(v))
    if log_metric is not None:  # TRL averages these per logging step, beside its own reward metrics
        for k, vs in components.items():
            log_metric(f"toolgym/{k}", sum(vs) / len(vs))
    return totals


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2, help="GRPO steps (default 2)")
    ap.add_argument("--out", default=None, help="output folder (default: a temporary one)")
    ap.add_argument("--max-completion-length", type=int, default=32)
    args = ap.parse_args(argv)

    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from toolgym.env.server.app import ServerConfig, start_server
    from toolgym.trainer.tiny import build_tiny_model

    out = Path(args.out or tempfile.mkdtemp(prefix="toolgym-trl-envfactory-"))
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()

    # Offline: a byte-level BPE tokenizer with TRL's Qwen2.5 chat template (tool calling + response schema) and a
    # random-init 2-layer Qwen2. Cached under $TOOLGYM_CACHE, so a second run copies it in milliseconds.
    model_dir = build_tiny_model(str(out / "tiny-model"))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir)

    # gRPC on a free port (unused here) and the OpenEnv gateway on another free port, both on loopback.
    server = start_server(ServerConfig(host="127.0.0.1", port=0, http_port=0))
    url = server.http.url
    print(f"toolgym gateway: {url}/ws", flush=True)

    envs: list[ToolgymEnv] = []  # every instance TRL asked for, so their sockets are closed at the end

    def environment_factory() -> ToolgymEnv:
        env = ToolgymEnv(url)  # one WebSocket per TRL environment instance
        envs.append(env)
        return env

    num_generations = 2
    batch = 4  # rollouts per step: 2 prompts x 2 generations (a GRPO group shares task, seed and template)
    rows = [{"prompt": [{"role": "user", "content": ""}], "task_id": t, "seed": i, "template": TEMPLATE}
            for i, t in enumerate(TASKS)]
    cfg = GRPOConfig(
        output_dir=str(out / "grpo"),
        max_steps=args.steps,
        per_device_train_batch_size=batch,
        num_generations=num_generations,
        max_completion_length=args.max_completion_length,
        max_tool_calling_iterations=2,
        learning_rate=1e-4,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        use_cpu=True,
        seed=0,
    )
    try:
        trainer = GRPOTrainer(model=model, reward_funcs=[toolgym_reward], args=cfg,
                              train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                              environment_factory=environment_factory)
        trainer.train()
    finally:
        for env in envs:
            env._close()
        server.stop(grace=1.0)

    logs = [h for h in trainer.state.log_history if "reward" in h]
    (out / "log_history.json").write_text(json.dumps(trainer.state.log_history, indent=1))
    for h in logs:
        comps = " ".join(f"{k.removeprefix('toolgym/')}={v:.3f}" for k, v in sorted(h.items()) if k.startswith("toolgym/"))
        print(f"step {h['step']} reward {h['reward']:.4f} reward_std {h.get('reward_std', float('nan')):.4f} {comps}",
              flush=True)
    print(f"done: {trainer.state.global_step} steps, {len(envs)} environment instances, "
          f"{time.monotonic() - t0:.1f}s; log in {out / 'log_history.json'}", flush=True)
    ok = trainer.state.global_step == args.steps and len(logs) == args.steps and all(math.isfinite(h["reward"]) for h in logs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
