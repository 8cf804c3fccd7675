"""The GPU check's CPU side: the wheelhouse plan and packing, and a dry run of bench/gpu/run.sh (tiny shapes)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


wheelhouse = _load("toolgym_bench_wheelhouse", ROOT / "bench" / "gpu" / "wheelhouse.py")


def test_plan_carries_the_training_stack_but_not_what_the_device_ships():
    pins = wheelhouse.plan()
    for needed in ("trl", "peft", "grpcio", "grpcio-health-checking", "gymnasium", "bfcl-eval", "protobuf"):
        assert needed in pins, f"{needed} missing from the carry plan"
    for shipped in ("torch", "transformers", "tokenizers", "safetensors", "numpy", "huggingface-hub"):
        assert shipped not in pins, f"{shipped} is on the device already and must not be carried"
    assert all(v and v[0].isdigit() for v in pins.values())  # pinned to what the tests ran with


def test_pack_respects_the_bundle_limit_and_rejects_a_wheel_over_the_carry_limit(tmp_path):
    sizes_mib = [30, 25, 20, 10, 5, 1]
    wheels = []
    for i, mib in enumerate(sizes_mib):
        w = tmp_path / f"pkg{i}-1.0-py3-none-any.whl"
        w.write_bytes(b"\0" * int(mib * 2**20))
        wheels.append(w)
    bundles = wheelhouse.pack(wheels, 40)
    assert sorted(w.name for b in bundles for w in b) == sorted(w.name for w in wheels)
    assert all(sum(w.stat().st_size for w in b) <= 40 * 2**20 for b in bundles)
    assert len(bundles) == 3  # 30+10, 25+5+1 (+... first fit), 20
    huge = tmp_path / "huge-1.0-py3-none-any.whl"
    huge.write_bytes(b"\0" * (65 * 2**20))
    with pytest.raises(SystemExit, match="64 MiB"):
        wheelhouse.pack([huge], 56)


@pytest.mark.slow
def test_dry_run_runs_all_four_configurations(tmp_path):
    out = tmp_path / "gpu.json"
    r = subprocess.run(["bash", str(ROOT / "bench" / "gpu" / "run.sh"), "--dry-run", "--json-out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=900,
                       env={**__import__("os").environ, "PYTHON": sys.executable})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    summary = json.loads(out.read_text())
    assert summary["dry_run"] is True and summary["device"] == "cpu"
    cfgs = summary["configs"]
    assert set(cfgs) == {"reward_inprocess", "reward_grpc", "episodes_stream", "episodes_lora"}
    for name, c in cfgs.items():
        assert c["tokens_per_s"] > 0, name
        assert c["server_calls"] > 0, name  # the timed path really went through the scorer / server
        assert 0 <= c["server_share"] <= 1, name
    assert set(summary["ratios"]) == {f"{k}/reward_inprocess" for k in cfgs if k != "reward_inprocess"}
