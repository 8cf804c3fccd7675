"""Config: typed dataclasses with help on every field, strict YAML loading, shipped configs load."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest

from toolgym.trainer.config import ConfigError, TrainConfig
from toolgym.trainer.config_load import config_from_dict, describe, load_config

REPO = Path(__file__).resolve().parents[2]
# Training-pipeline configs (TrainConfig); retriever*.yaml belong to `toolgym train retriever`, with their own schema.
CONFIGS = sorted(p for p in (REPO / "trainer" / "configs").glob("*.yaml") if not p.name.startswith("retriever"))


def _walk(cls: type, prefix: str = ""):
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        yield prefix + f.name, f
        if dataclasses.is_dataclass(hints[f.name]):
            yield from _walk(hints[f.name], prefix + f.name + ".")


def test_every_field_has_help():
    missing = [name for name, f in _walk(TrainConfig) if not f.metadata.get("help")]
    assert not missing, missing


def test_defaults_are_valid():
    cfg = config_from_dict({})
    assert cfg.grpo.num_generations >= 2
    assert "grpo.max_steps" in describe()


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_configs_load(path: Path):
    cfg = load_config(path)
    assert isinstance(cfg, TrainConfig)


def test_shipped_configs_exist():
    names = {p.name for p in CONFIGS}
    assert {"tiny_cpu.yaml", "dev_24gb.yaml", "prod_80gb.yaml"} <= names
    acc = {p.name for p in (REPO / "trainer" / "configs" / "accelerate").glob("*.yaml")}
    assert {"zero3.yaml", "multi_gpu.yaml"} <= acc


def test_unknown_key_rejected_with_suggestion(tmp_path: Path):
    p = tmp_path / "c.yaml"
    p.write_text("grpo:\n  lerning_rate: 1.0e-5\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert "grpo.lerning_rate" in msg and "did you mean 'learning_rate'" in msg and str(p) in msg


def test_unknown_top_level_and_wrong_types():
    with pytest.raises(ConfigError, match="unknown key 'bogus'"):
        config_from_dict({"bogus": 1})
    with pytest.raises(ConfigError, match="grpo.max_steps: expected an integer"):
        config_from_dict({"grpo": {"max_steps": "ten"}})
    with pytest.raises(ConfigError, match="model.dtype"):
        config_from_dict({"model": {"dtype": "fp8"}})
    with pytest.raises(ConfigError, match="data.templates"):
        config_from_dict({"data": {"templates": ["nope"]}})
    with pytest.raises(ConfigError, match="sft.task_weights"):
        config_from_dict({"sft": {"task_weights": {"cooking": 1.0}}})
    with pytest.raises(ConfigError, match="divisible by num_generations"):
        config_from_dict({"grpo": {"per_device_train_batch_size": 3, "num_generations": 2}})


def test_numeric_coercion_and_overrides(tmp_path: Path):
    p = tmp_path / "c.yaml"
    p.write_text("grpo:\n  learning_rate: 1e-6\n  max_steps: 3\n")
    cfg = load_config(p, ["grpo.max_steps=7", "data.templates=[react, hermes]", "server.address='127.0.0.1:1'"])
    assert cfg.grpo.learning_rate == pytest.approx(1e-6)
    assert cfg.grpo.max_steps == 7
    assert cfg.data.templates == ["react", "hermes"]
    assert cfg.server.address == "127.0.0.1:1"


def test_extra_checked_against_trl_fields():
    from trl import GRPOConfig

    from toolgym.trainer.common import check_extra

    assert check_extra({"top_k": 5}, GRPOConfig, "grpo") == {"top_k": 5}
    with pytest.raises(ConfigError, match="not GRPOConfig fields"):
        check_extra({"not_a_field": 1}, GRPOConfig, "grpo")
