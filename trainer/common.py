"""Shared plumbing: model/tokenizer loading, the server connection, seeding and the metrics JSONL log.

GPU-only packages (vllm, deepspeed, flash_attn, bitsandbytes) are never imported here; they are probed with
``importlib.util.find_spec`` and only used when a config asks for them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import math
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from toolgym.trainer.config import ModelSection, ServerSection, TrainConfig

log = logging.getLogger("toolgym.trainer")


def set_seed(seed: int) -> None:
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % (2**32))
    except ImportError:  # pragma: no cover
        pass
    import torch

    torch.manual_seed(seed)


def cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        return False


def bf16_default(flag: bool | None) -> bool:
    if flag is not None:
        return flag
    try:
        import torch

        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    except Exception:  # pragma: no cover
        return False


def has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def resolve_model_path(m: ModelSection, output_dir: str) -> str:
    if m.name_or_path == "tiny":
        from toolgym.trainer.tiny import build_tiny_model

        return build_tiny_model(
            str(Path(output_dir) / "tiny_model"), seed=m.tiny_seed, hidden_size=m.tiny_hidden_size, num_hidden_layers=m.tiny_layers
        )
    # aliases (smollm2-135m-instruct), GGUF files/folders and HF folders resolve offline (toolgym.trainer.models)
    from toolgym.trainer.models import local_model_path

    return local_model_path(m.name_or_path)


def attn_implementation(m: ModelSection) -> str | None:
    if m.attn_implementation != "auto":
        return m.attn_implementation
    if cuda_available() and has_module("flash_attn"):
        return "flash_attention_2"
    return "sdpa"


def model_init_kwargs(m: ModelSection) -> dict[str, Any]:
    """Keyword arguments for ``from_pretrained`` (also TRL's ``model_init_kwargs``)."""
    import torch

    kw: dict[str, Any] = {"trust_remote_code": m.trust_remote_code}
    dtype = m.dtype
    if dtype == "auto":
        kw["dtype"] = "auto"
    else:
        kw["dtype"] = getattr(torch, dtype)
    impl = attn_implementation(m)
    if impl:
        kw["attn_implementation"] = impl
    if m.load_in_4bit or m.load_in_8bit:
        if not cuda_available():
            raise RuntimeError("model.load_in_4bit/8bit needs a CUDA GPU (bitsandbytes); disable it on CPU")
        from transformers import BitsAndBytesConfig

        if m.load_in_4bit:
            kw["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=torch.bfloat16,
            )
        else:
            kw["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
        kw["device_map"] = {"": int(os.environ.get("LOCAL_RANK", 0))}
    return kw


def peft_config(m: ModelSection) -> Any:
    if not (m.use_peft or m.load_in_4bit or m.load_in_8bit):
        return None
    from peft import LoraConfig

    targets = [t for t in m.lora_target_modules if t != "lm_head"]
    return LoraConfig(
        r=m.lora_r,
        lora_alpha=m.lora_alpha,
        lora_dropout=m.lora_dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
        bias="none",
    )


def load_tokenizer(path: str, trust_remote_code: bool = False) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def load_model(path: str, m: ModelSection) -> Any:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, **model_init_kwargs(m))
    if m.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    return model


@contextlib.contextmanager
def server_address(s: ServerSection) -> Iterator[str]:
    """The configured server's address, or an in-process server on loopback for the duration of the block."""
    if s.address:
        yield s.address
        return
    from toolgym.env.server.app import ServerConfig, start_server

    srv = start_server(ServerConfig(host="127.0.0.1", port=0, suite=s.suite))
    try:
        log.info("started an in-process toolgym server on %s", srv.address)
        yield srv.address
    finally:
        srv.stop(grace=1.0)


def make_client(address: Any, timeout: float, transport: str = "unary") -> Any:
    """A ``ToolgymClient`` for ``address`` (with ``transport="stream"``, wrapped so resets and steps share one
    ``Sessions`` stream); an object that already is a client is returned as is."""
    if not isinstance(address, str):
        return address
    from toolgym.env.client import ToolgymClient

    c = ToolgymClient(address, timeout=timeout)
    try:
        c.wait_ready(timeout=min(30.0, timeout))
    except Exception:  # the first call will report the real error with its deadline
        pass
    if transport == "stream":
        from toolgym.env.client_stream import StreamSessions

        return StreamSessions(c, owns_client=True)
    return c


def save_final_model(model: Any, tokenizer: Any, where: str | Path) -> str:
    """Save a trained policy as a plain checkpoint: a PEFT adapter is merged into its base first, so every later
    stage (and ``from_pretrained``) loads it like any model directory. The adapter alone is also kept, in
    ``where/adapter`` (small; ``PeftModel.from_pretrained(base, where/"adapter")`` reloads it)."""
    where = Path(where)
    where.mkdir(parents=True, exist_ok=True)
    try:
        from peft import PeftModel

        if isinstance(model, PeftModel):
            model.save_pretrained(where / "adapter")
            model = model.merge_and_unload()
    except ImportError:  # pragma: no cover - peft is part of the train extra
        pass
    model.save_pretrained(where)
    tokenizer.save_pretrained(where)
    return str(where)


def close_if_owned(client: Any, address: Any) -> None:
    if isinstance(address, str):
        client.close()


class MetricsLog:
    """Append-only JSONL of metrics: one object per line with ``stage``, ``step``, ``time`` and the values."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, stage: str, step: int, values: dict[str, Any], **extra: Any) -> None:
        row: dict[str, Any] = {"stage": stage, "step": int(step), "time": time.time(), **extra}
        for k, v in values.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                row[k] = float(v) if math.isfinite(float(v)) else None
            elif isinstance(v, (str, bool)) or v is None:
                row[k] = v
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]


def metrics_callback(metrics: MetricsLog, stage: str) -> Any:
    """A transformers ``TrainerCallback`` writing every ``on_log`` payload to the metrics JSONL (main process only)."""
    from transformers import TrainerCallback

    class _MetricsCallback(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
            if logs and state.is_world_process_zero:
                metrics.write(stage, state.global_step, logs)

    return _MetricsCallback()


def metrics_path(cfg: TrainConfig) -> Path:
    return Path(cfg.output_dir) / "metrics.jsonl"


def check_extra(extra: dict[str, Any], cls: type, section: str) -> dict[str, Any]:
    import dataclasses

    known = {f.name for f in dataclasses.fields(cls)}
    bad = sorted(set(extra) - known)
    if bad:
        from toolgym.trainer.config import ConfigError

        raise ConfigError(f"{section}.extra: {bad} are not {cls.__name__} fields")
    return dict(extra)


__all__ = [
    "MetricsLog",
    "attn_implementation",
    "bf16_default",
    "check_extra",
    "cuda_available",
    "has_module",
    "load_model",
    "load_tokenizer",
    "make_client",
    "metrics_callback",
    "metrics_path",
    "model_init_kwargs",
    "peft_config",
    "resolve_model_path",
    "save_final_model",
    "server_address",
    "set_seed",
]
