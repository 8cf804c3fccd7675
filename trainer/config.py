"""Typed configuration of the bundled trainer, loaded from YAML with unknown keys rejected.

One file configures every command (``toolgym train grpo|ppo|sft|dpo|pipeline --config FILE.yaml``): each
command reads the sections it needs (``server``, ``model``, ``data`` and its own stage section). Every field
carries ``metadata={"help": ...}``; :func:`describe` prints them. Loading is strict: an unknown key, a wrong
type or a value outside a field's choices raises :class:`ConfigError` naming the file, the dotted key and
the accepted keys (with a "did you mean" suggestion).

``extra`` in a stage section is forwarded verbatim to the TRL config class of that stage (``GRPOConfig``,
``SFTConfig``, ``DPOConfig``); its keys are checked against that class's fields when the trainer is built.

This module holds the schema (one dataclass per section, :class:`TrainConfig`, :class:`ConfigError`) and is the
schema; loading, validation and :func:`describe` live in :mod:`toolgym.trainer.config_load`, which imports
the schema from here (one direction only).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

class ConfigError(ValueError):
    """A configuration file or dict that does not match the schema."""


def _f(default: Any = dataclasses.MISSING, help: str = "", **kw: Any) -> Any:  # noqa: A002 - mirrors dataclasses
    if callable(default) and not isinstance(default, (str, int, float, bool, type(None))):
        return field(default_factory=default, metadata={"help": help}, **kw)
    return field(default=default, metadata={"help": help}, **kw)


TASK_TYPES = ("tool_selection", "planning", "timing", "retrieval")
TEMPLATES = ("openai", "hermes", "react", "modelscope", "autogpt", "toolllama", "pythonic")


@dataclass
class ServerSection:
    address: str | None = _f(None, "host:port of a running toolgym server. Empty: start one in-process on loopback.")
    suite: str = _f("bfcl", "Suite the in-process server loads (ignored when `address` is set).")
    timeout: float = _f(60.0, "Deadline in seconds of each gRPC call.")
    transport: Literal["unary", "stream"] = _f(
        "unary", "How episodes reach the server: one Reset/Step RPC per call, or every session multiplexed on one "
        "EnvService.Sessions stream (fewer per-call costs with many concurrent episodes)."
    )
    reward_config: dict[str, Any] | None = _f(
        None, "Reward weights/penalties override sent with every Score request (None: the server's per-task config)."
    )


@dataclass
class ModelSection:
    name_or_path: str = _f(
        "tiny", "HF model id or local path. 'tiny': build the offline tiny tokenizer+model (design §8) under output_dir."
    )
    tiny_seed: int = _f(0, "Seed of the tiny model's random init (only when name_or_path == 'tiny').")
    tiny_hidden_size: int = _f(64, "Hidden size of the tiny model (name_or_path == 'tiny').")
    tiny_layers: int = _f(2, "Decoder layers of the tiny model (name_or_path == 'tiny').")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = _f(
        "float32", "Weights dtype when loading. bfloat16 needs a GPU (bf16 training); CPU runs keep float32."
    )
    attn_implementation: Literal["auto", "eager", "sdpa", "flash_attention_2"] = _f(
        "auto", "Attention kernel. 'auto': flash_attention_2 when flash_attn is installed and CUDA present, else sdpa."
    )
    use_peft: bool = _f(False, "Train a LoRA adapter (peft) instead of all weights.")
    lora_r: int = _f(16, "LoRA rank.")
    lora_alpha: int = _f(32, "LoRA alpha (scaling = alpha / r).")
    lora_dropout: float = _f(0.05, "LoRA dropout.")
    lora_target_modules: list[str] = _f(
        lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        "Module names LoRA adapts (never lm_head: GRPO computes log-probs from lm_head.weight directly).",
    )
    load_in_4bit: bool = _f(False, "QLoRA: load the base model 4-bit (bitsandbytes, GPU only). Implies use_peft.")
    load_in_8bit: bool = _f(False, "Load the base model 8-bit (bitsandbytes, GPU only).")
    gradient_checkpointing: bool = _f(False, "Trade compute for memory (large models).")
    trust_remote_code: bool = _f(False, "Passed to from_pretrained.")


@dataclass
class DataSection:
    categories: list[str] = _f(
        lambda: ["simple_python", "multiple", "parallel", "irrelevance"],
        "BFCL categories (server task categories) used for RL prompts, DPO prompts and held-out evaluation.",
    )
    sft_categories: list[str] | None = _f(
        None, "Categories used for SFT data (None: same as `categories`, plus multi_turn_base when planning is weighted)."
    )
    max_tasks: int = _f(0, "Cap on the number of tasks drawn from `categories` (0: all).")
    heldout_tasks: int = _f(16, "Tasks held out from training and used for start/end evaluation.")
    max_prompt_tokens: int = _f(
        0, "Drop tasks whose rendered prompt is longer than this many tokens (0: keep all). Keeps tiny CPU runs small."
    )
    templates: list[str] = _f(lambda: ["hermes"], f"Agent templates episodes and SFT data use; any of {TEMPLATES}.")
    template_diversity: bool = _f(
        True, "Draw each example's/episode's template at random from `templates` (False: always templates[0])."
    )
    seeds_per_task: int = _f(1, "Distinct episode seeds per RL task (each seed is one GRPO group of the same task).")
    seed: int = _f(0, "Seed of task sampling, splits and template draws.")


@dataclass
class SFTSection:
    num_examples: int = _f(0, "SFT examples after task-type weighting (0: all available, weighted by down-sampling).")
    task_weights: dict[str, float] = _f(
        lambda: {"tool_selection": 0.35, "planning": 0.30, "timing": 0.20, "retrieval": 0.15},
        f"Share of each task type in the SFT mix; keys from {TASK_TYPES}; renormalised over types present.",
    )
    retrieval_min_tools: int = _f(
        4, "A single-turn task offering at least this many tools counts as 'retrieval' (choosing among many)."
    )
    allow_upsample: bool = _f(True, "Repeat examples of a type when it has fewer than its share asks for.")
    multi_turn_observation: str = _f(
        "Tool executed successfully.",
        "Placeholder tool result between ground-truth call steps of multi-turn tasks (tool-result tokens are never "
        "trained on, so it only shapes context).",
    )
    learning_rate: float = _f(2e-5, "Peak learning rate.")
    num_train_epochs: float = _f(1.0, "Epochs over the prepared data (ignored when max_steps > 0).")
    max_steps: int = _f(0, "Optimizer steps (0: use num_train_epochs).")
    per_device_train_batch_size: int = _f(4, "Micro-batch size per device.")
    gradient_accumulation_steps: int = _f(1, "Micro-batches per optimizer step.")
    warmup_ratio: float = _f(0.1, "Linear warm-up fraction of the schedule.")
    lr_scheduler_type: str = _f("cosine", "transformers scheduler name.")
    max_length: int = _f(2048, "Truncate tokenized examples to this length.")
    assistant_only_loss: bool = _f(True, "Train only on assistant tokens (system, user and tool results masked).")
    loss_impl: Literal["auto", "trl", "plain"] = _f(
        "auto", "trl: TRL's chunked fused LM-head loss (lean on GPU); plain: full-logits NLL (~10x faster on CPU); "
        "auto: plain without CUDA."
    )
    use_coreset_selection: bool = _f(False, "Select a coreset of the weighted data before training.")
    coreset_target_size: int = _f(0, "Examples kept by coreset selection (0: half of the data).")
    coreset_strategy: Literal["loss_topk", "diversity", "hybrid", "random"] = _f(
        "hybrid", "loss_topk: highest model loss; diversity: k-center on lexical features; hybrid: both; random."
    )
    coreset_hybrid_loss_fraction: float = _f(0.5, "hybrid: share of the coreset picked by loss, the rest by diversity.")
    coreset_loss_source: Literal["model", "proxy"] = _f(
        "model", "Difficulty score for loss_topk/hybrid: the model's per-example loss, or a length/lexical proxy."
    )
    use_online_continual: bool = _f(False, "Train in rounds with an online replay (rehearsal) buffer.")
    continual_rounds: int = _f(2, "Rounds the data is streamed in when use_online_continual is on.")
    continual_buffer_size: int = _f(4096, "Capacity of the replay buffer (reservoir sampling).")
    continual_replay_ratio: float = _f(0.3, "Fraction of each round's training data drawn from the replay buffer.")
    logging_steps: int = _f(5, "Log every N steps.")
    save_steps: int = _f(0, "Checkpoint every N steps (0: only the final model).")
    extra: dict[str, Any] = _f(dict, "Extra keyword arguments for trl.SFTConfig (checked against its fields).")


@dataclass
class GRPOSection:
    max_steps: int = _f(20, "Optimizer steps.")
    learning_rate: float = _f(1e-6, "Peak learning rate.")
    per_device_train_batch_size: int = _f(8, "Completions per device per micro-batch (divisible by num_generations).")
    gradient_accumulation_steps: int = _f(1, "Micro-batches per optimizer step.")
    num_generations: int = _f(4, "Group size G: episodes per prompt, sharing the task and seed.")
    max_completion_length: int = _f(
        256, "Token budget of an episode's whole completion (all assistant turns plus tool-result tokens)."
    )
    max_turn_tokens: int = _f(128, "Tokens one assistant turn may generate.")
    max_turns: int = _f(4, "Assistant turns per episode before the server truncates it.")
    temperature: float = _f(1.0, "Sampling temperature of rollouts.")
    top_p: float = _f(1.0, "Nucleus sampling.")
    beta: float = _f(0.0, "KL coefficient to the reference model (0: no reference model is loaded).")
    loss_type: str = _f("dapo", "TRL GRPO loss: grpo, dr_grpo, dapo, bnpo, ...")
    scale_rewards: Literal["group", "batch", "none"] = _f("group", "Advantage scaling.")
    num_iterations: int = _f(1, "Policy updates per generation batch (mu).")
    epsilon: float = _f(0.2, "Clip range.")
    use_vllm: bool = _f(False, "Generate with vLLM (GPU). Needs vllm installed.")
    vllm_mode: Literal["colocate", "server"] = _f(
        "colocate", "colocate: vLLM in the trainer process; server: a `trl vllm-serve` process."
    )
    vllm_server_base_url: str | None = _f(None, "server mode: base URL of `trl vllm-serve` (else host/port).")
    vllm_server_host: str = _f("0.0.0.0", "server mode: host of `trl vllm-serve`.")
    vllm_server_port: int = _f(8000, "server mode: port of `trl vllm-serve`.")
    vllm_gpu_memory_utilization: float = _f(0.3, "colocate: fraction of GPU memory vLLM may take.")
    vllm_tensor_parallel_size: int = _f(1, "colocate: tensor parallel size.")
    bf16: bool | None = _f(None, "bf16 training. None: on when CUDA supports it, off on CPU.")
    logging_steps: int = _f(1, "Log every N steps.")
    save_steps: int = _f(0, "Checkpoint every N steps (0: only the final model).")
    eval_heldout: bool = _f(True, "Evaluate mean reward/format_compliance on held-out tasks at start and end.")
    log_completions: bool = _f(False, "Print sample completions (TRL).")
    extra: dict[str, Any] = _f(dict, "Extra keyword arguments for trl.GRPOConfig (checked against its fields).")


@dataclass
class PPOSection:
    max_steps: int = _f(20, "PPO iterations (one rollout batch + ppo_epochs updates each).")
    learning_rate: float = _f(1e-6, "Policy learning rate.")
    critic_learning_rate: float = _f(1e-5, "Value-head learning rate.")
    rollout_batch_size: int = _f(8, "Episodes per iteration.")
    mini_batch_size: int = _f(4, "Episodes per optimisation minibatch.")
    ppo_epochs: int = _f(2, "Passes over each rollout batch.")
    cliprange: float = _f(0.2, "Policy ratio clip.")
    cliprange_value: float = _f(0.2, "Value clip.")
    vf_coef: float = _f(0.5, "Value loss coefficient.")
    kl_coef: float = _f(0.02, "Per-token KL penalty to the reference (initial) policy, folded into the reward.")
    gamma: float = _f(1.0, "Discount.")
    lam: float = _f(0.95, "GAE lambda.")
    whiten_advantages: bool = _f(True, "Normalise advantages per batch.")
    max_completion_length: int = _f(256, "Token budget of an episode's completion (assistant + tool-result tokens).")
    max_turn_tokens: int = _f(128, "Tokens one assistant turn may generate.")
    max_turns: int = _f(4, "Assistant turns per episode.")
    temperature: float = _f(1.0, "Sampling temperature.")
    max_grad_norm: float = _f(1.0, "Gradient clipping.")
    bf16: bool | None = _f(None, "bf16 autocast. None: on when CUDA supports it.")
    logging_steps: int = _f(1, "Log every N iterations.")
    save_steps: int = _f(0, "Checkpoint every N iterations (0: only the final model).")
    eval_heldout: bool = _f(True, "Evaluate mean reward/format_compliance on held-out tasks at start and end.")


@dataclass
class DPOSection:
    num_prompts: int = _f(32, "Prompts (tasks) sampled for preference data.")
    num_samples: int = _f(4, "Completions sampled per prompt; best vs worst by server score form a pair.")
    min_margin: float = _f(1e-6, "Skip a prompt whose best-worst score gap is below this (ties).")
    temperature: float = _f(1.0, "Sampling temperature.")
    max_new_tokens: int = _f(128, "Tokens per sampled completion.")
    beta: float = _f(0.1, "DPO beta.")
    loss_type: str = _f("sigmoid", "DPO loss: sigmoid, hinge, ipo, ...")
    learning_rate: float = _f(5e-7, "Peak learning rate.")
    num_train_epochs: float = _f(1.0, "Epochs over the pairs (ignored when max_steps > 0).")
    max_steps: int = _f(0, "Optimizer steps (0: epochs).")
    per_device_train_batch_size: int = _f(2, "Pairs per micro-batch.")
    gradient_accumulation_steps: int = _f(1, "Micro-batches per step.")
    max_length: int = _f(2048, "Truncation length of prompt+completion.")
    logging_steps: int = _f(5, "Log every N steps.")
    extra: dict[str, Any] = _f(dict, "Extra keyword arguments for trl.DPOConfig (checked against its fields).")


@dataclass
class EvalSection:
    num_tasks: int = _f(0, "Held-out tasks evaluated (0: all of data.heldout_tasks).")
    max_new_tokens: int = _f(128, "Tokens per assistant turn.")
    max_turns: int = _f(4, "Turns per episode.")
    do_sample: bool = _f(False, "Greedy (False) or sampled evaluation.")
    template: str | None = _f(None, "Template of evaluation episodes (None: data.templates[0]).")


@dataclass
class PipelineSection:
    stages: list[str] = _f(lambda: ["sft", "grpo"], "Stages run in order by `toolgym train pipeline`: sft, grpo, ppo, dpo.")


@dataclass
class TrainConfig:
    output_dir: str = _f("runs/toolgym", "Where models, checkpoints and metrics.jsonl go.")
    seed: int = _f(0, "Global seed (torch, sampling).")
    server: ServerSection = _f(ServerSection, "The toolgym server the trainer talks to.")
    model: ModelSection = _f(ModelSection, "Policy model.")
    data: DataSection = _f(DataSection, "Tasks, splits and templates.")
    sft: SFTSection = _f(SFTSection, "SFT warm-up.")
    grpo: GRPOSection = _f(GRPOSection, "GRPO.")
    ppo: PPOSection = _f(PPOSection, "PPO.")
    dpo: DPOSection = _f(DPOSection, "DPO.")
    eval: EvalSection = _f(EvalSection, "Held-out evaluation.")
    pipeline: PipelineSection = _f(PipelineSection, "The one-command pipeline.")


__all__ = [
    "ConfigError",
    "DataSection",
    "DPOSection",
    "EvalSection",
    "GRPOSection",
    "ModelSection",
    "PPOSection",
    "PipelineSection",
    "SFTSection",
    "ServerSection",
    "TASK_TYPES",
    "TEMPLATES",
    "TrainConfig",
]

