"""Loading the trainer's config: strict YAML/dict → :class:`~toolgym.trainer.config.TrainConfig`, and ``describe``.

Loading is strict: an unknown key, a wrong type or a value outside a field's choices raises
:class:`~toolgym.trainer.config.ConfigError` naming the file, the dotted key and the accepted keys (with a
"did you mean" suggestion); :func:`validate` adds the cross-field checks types cannot express. The schema is
:mod:`toolgym.trainer.config`, which re-exports everything here: import through it.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from toolgym.trainer.config import TASK_TYPES, TEMPLATES, ConfigError, TrainConfig


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp`` (light, YAML-shaped types), converting int→float."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{where}: expected {' or '.join(_type_name(a) for a in args)}, got {value!r}")
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(f"{where}: {value!r} is not one of {list(choices)}")
        return value
    if dataclasses.is_dataclass(tp):
        return _from_dict(tp, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        (item,) = get_args(tp) or (Any,)
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__} {value!r}")
        kt, vt = get_args(tp) or (Any, Any)
        return {_coerce(k, kt, f"{where}.<key>"): _coerce(v, vt, f"{where}.{k}") for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            # YAML reads 1e-6 as a string (no dot in the mantissa): accept numeric strings for floats only
            if isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    pass
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _from_dict(cls: type, data: Any, where: str = "") -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where or '<root>'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in known]
    if unknown:
        msgs = []
        for k in unknown:
            close = difflib.get_close_matches(str(k), list(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            msgs.append(f"unknown key {'.'.join(filter(None, [where, str(k)]))!r}{hint}")
        raise ConfigError("; ".join(msgs) + f". Known keys{' of ' + where if where else ''}: {sorted(known)}")
    kwargs = {k: _coerce(v, hints[k], ".".join(filter(None, [where, k]))) for k, v in data.items()}
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any] | None, cls: type = TrainConfig, *, source: str = "<dict>") -> Any:
    """Build ``cls`` from a plain dict; raises :class:`ConfigError` (prefixed with ``source``) on any mismatch."""
    try:
        cfg = _from_dict(cls, data or {})
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    if isinstance(cfg, TrainConfig):
        validate(cfg, source=source)
    return cfg


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Load a :class:`TrainConfig` from YAML; ``overrides`` are ``dotted.key=yaml_value`` strings applied on top."""
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: invalid YAML: {e}") from None
    for ov in overrides or []:
        if "=" not in ov:
            raise ConfigError(f"override {ov!r}: expected dotted.key=value")
        key, raw = ov.split("=", 1)
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {ov!r}: {part!r} is not a section")
        node[parts[-1]] = yaml.safe_load(raw)
    return config_from_dict(data, TrainConfig, source=str(p))


def validate(cfg: TrainConfig, *, source: str = "<config>") -> None:
    """Cross-field checks that types alone cannot express."""
    errs: list[str] = []
    for t in cfg.data.templates:
        if t not in TEMPLATES:
            errs.append(f"data.templates: unknown template {t!r} (known: {list(TEMPLATES)})")
    if not cfg.data.templates:
        errs.append("data.templates: at least one template is required")
    for k, w in cfg.sft.task_weights.items():
        if k not in TASK_TYPES:
            errs.append(f"sft.task_weights: unknown task type {k!r} (known: {list(TASK_TYPES)})")
        elif w < 0:
            errs.append(f"sft.task_weights.{k}: must be >= 0")
    if cfg.sft.task_weights and sum(cfg.sft.task_weights.values()) <= 0:
        errs.append("sft.task_weights: at least one weight must be > 0")
    if not 0.0 <= cfg.sft.continual_replay_ratio < 1.0:
        errs.append("sft.continual_replay_ratio: must be in [0, 1)")
    if not 0.0 <= cfg.sft.coreset_hybrid_loss_fraction <= 1.0:
        errs.append("sft.coreset_hybrid_loss_fraction: must be in [0, 1]")
    g = cfg.grpo
    if g.num_generations < 2:
        errs.append("grpo.num_generations: GRPO needs groups of at least 2")
    if (g.per_device_train_batch_size * g.gradient_accumulation_steps) % g.num_generations:
        errs.append(
            "grpo: per_device_train_batch_size * gradient_accumulation_steps must be divisible by num_generations"
        )
    if g.max_turn_tokens > g.max_completion_length:
        errs.append("grpo.max_turn_tokens must be <= grpo.max_completion_length")
    if cfg.ppo.rollout_batch_size % cfg.ppo.mini_batch_size:
        errs.append("ppo.rollout_batch_size must be divisible by ppo.mini_batch_size")
    if cfg.dpo.num_samples < 2:
        errs.append("dpo.num_samples: need at least 2 samples per prompt to form a pair")
    for s in cfg.pipeline.stages:
        if s not in ("sft", "grpo", "ppo", "dpo"):
            errs.append(f"pipeline.stages: unknown stage {s!r}")
    if cfg.model.load_in_4bit and cfg.model.load_in_8bit:
        errs.append("model: load_in_4bit and load_in_8bit are exclusive")
    if errs:
        raise ConfigError(f"{source}: " + "; ".join(errs))


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def describe(cls: type = TrainConfig, prefix: str = "") -> str:
    """Every key with its type, default and help text (``toolgym train describe-config``)."""
    lines: list[str] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(tp):
            lines.append(f"{key}:  # {f.metadata.get('help', '')}")
            lines.append(describe(tp, prefix=key + "."))
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        lines.append(f"{key} = {default!r}  ({_type_name(tp)})  {f.metadata.get('help', '')}")
    return "\n".join(lines)


__all__ = [
    "config_from_dict",
    "describe",
    "load_config",
    "to_dict",
    "validate",
]
