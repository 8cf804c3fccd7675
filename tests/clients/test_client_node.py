"""A Node.js client (@grpc/grpc-js + @grpc/proto-loader, protos/ only) against a real toolgym server.

Its npm dependencies come from tests/clients/node/package-lock.json, installed with `npm ci` into
~/.cache/toolgym/node/<sha256(lock)[:16]>/ (`make node-deps` does the same) and found through NODE_PATH.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).parent / "node"
LOCK = NODE_DIR / "package-lock.json"


def _node_deps() -> Path:
    """node_modules of the lock file, installed once into the user cache (the Makefile's node-deps path)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    dest = cache / "toolgym" / "node" / hashlib.sha256(LOCK.read_bytes()).hexdigest()[:16]
    if not (dest / ".ok").exists():
        dest.mkdir(parents=True, exist_ok=True)
        for f in ("package.json", "package-lock.json"):
            shutil.copyfile(NODE_DIR / f, dest / f)
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
                           cwd=dest, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            pytest.fail(f"`npm ci` in {dest} failed ({r.returncode}); registry unreachable?\n{r.stderr[-3000:]}")
        (dest / ".ok").touch()
    return dest / "node_modules"


@pytest.fixture(scope="module")
def node_modules() -> Path:
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not on PATH: the Node.js gRPC client check needs Node.js >= 18 with npm")
    return _node_deps()


def test_node_client_episode_batch_and_errors(env_server, node_modules):
    proc = subprocess.run(["node", str(NODE_DIR / "client.js"), env_server.address], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "NODE_PATH": str(node_modules)})
    lines = proc.stdout.strip().splitlines()
    assert lines, f"the Node client printed nothing (exit {proc.returncode}); stderr:\n{proc.stderr[-3000:]}"
    res = json.loads(lines[-1])
    assert proc.returncode == 0 and res["ok"], f"Node client checks failed (exit {proc.returncode}): {res.get('failures')}\n{proc.stderr[-3000:]}"
    assert res["failures"] == []

    ep = res["episode"]
    assert ep["task_id"] == "multi_turn_base_0" and ep["terminated"] is True and ep["truncated"] is False
    assert ep["turns_played"] == 4 and ep["steps"] == 14  # 10 hermes tool calls + 4 plain-text turn ends
    # The ground-truth-like calls replay BFCL's ground truth exactly: the contract reward is 1.
    assert math.isfinite(ep["reward"]) and ep["reward"] == 1.0
    assert ep["score"]["valid"] is True and ep["score"]["total"] == 1.0
    assert ep["score"]["components"]["task_completion"] == 1.0
    assert {"total", "valid", "components", "turn"} <= set(ep["info_keys"])
    assert ep["negative_step_index_code"] == 3  # INVALID_ARGUMENT
    assert ep["bogus_task_code"] == 5  # NOT_FOUND
    assert ep["closed"] is True

    b = res["batch"]
    assert b["n"] == 3 and b["correct_valid"] is True
    assert b["correct"] == 1.0 and b["wrong"] < b["correct"]
    assert b["unknown_error_code"] == 5
