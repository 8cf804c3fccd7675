"""Suite lookups and filters, load_suite names and files, the disk cache and the memo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from toolgym.env.tasks import bfcl
from toolgym.env.tasks import cache as cache_mod
from toolgym.env.tasks import suite as suite_mod
from toolgym.env.tasks.suite import Suite, load_bfcl_category, load_suite
from toolgym.env.types import Task

SMALL = "live_parallel"  # 16 tasks: cheap to rebuild in cache tests


def _task(i, category="c1", kind="irrelevance"):
    return Task(id=f"t{i}", kind=kind, turns=(({"role": "user", "content": str(i)},),), tools=(), category=category)


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """A private, empty cache dir and a clean memo; the memo is restored afterwards."""
    if not bfcl.bfcl_available():
        pytest.skip("bfcl_eval is not installed")
    monkeypatch.setenv("TOOLGYM_CACHE_DIR", str(tmp_path))
    saved_c, saved_s = dict(suite_mod._category_memo), dict(suite_mod._suite_memo)
    suite_mod.clear_memo()
    yield tmp_path
    suite_mod.clear_memo()
    suite_mod._category_memo.update(saved_c)
    suite_mod._suite_memo.update(saved_s)


# --------------------------------------------------------------------------- Suite


def test_suite_basics():
    s = Suite("mine", [_task(0), _task(1, "c2", "ast"), _task(2)])
    assert len(s) == 3 and [t.id for t in s] == ["t0", "t1", "t2"]
    assert s.categories() == ("c1", "c2") and s.kinds() == ("irrelevance", "ast")
    assert s.get("t1") is s["t1"] is s.by_id["t1"]
    assert "t2" in s and "t9" not in s
    assert "3 tasks" in repr(s)
    with pytest.raises(ValueError, match="duplicate task ids 't0'"):
        Suite("dup", [_task(0), _task(0)])


def test_get_error_names_closest_ids(bfcl_suite):
    with pytest.raises(KeyError) as info:
        bfcl_suite.get("simple_pyhton_12")
    msg = info.value.args[0]
    assert "no task 'simple_pyhton_12' in suite 'bfcl'" in msg and "closest: simple_python_12" in msg
    with pytest.raises(KeyError, match="no task 'zzz'"):
        Suite("empty", []).get("zzz")


def test_get_error_families_and_hostile_ids(bfcl_suite):
    def miss(tid: str) -> str:
        with pytest.raises(KeyError) as info:
            bfcl_suite.get(tid)
        return info.value.args[0]

    # live ids carry dashes (live_multiple_9-4-1): the family is found all the same, typo included
    assert "closest: live_multiple_" in miss("live_multple_9-4-1")
    assert "closest: multi_turn_base_1" in miss("multi_turn_base_1x")
    assert "closest" not in miss("nope")
    # a huge id is cut in the message (no 1 MB error strings) and gets no suggestion search
    msg = miss("a" * 1_000_000)
    assert len(msg) < 400 and "(1000000 chars)" in msg and "closest" not in msg
    # a repeated miss gives the same answer (from the miss memo)
    assert miss("simple_pyhton_12") == miss("simple_pyhton_12")


def test_filter(bfcl_suite):
    mt = bfcl_suite.filter(categories=["multi_turn_base", "multi_turn_miss_func"])
    assert len(mt) == 400 and mt.categories() == ("multi_turn_base", "multi_turn_miss_func")
    irr = bfcl_suite.filter(kinds=["irrelevance"])
    assert len(irr) == 240 + 884
    both = bfcl_suite.filter(categories="live_irrelevance", kinds=["irrelevance"])
    assert len(both) == 884
    ids = bfcl_suite.filter(ids=["parallel_3", "simple_python_1"])
    assert [t.id for t in ids] == ["simple_python_1", "parallel_3"]  # suite order kept
    assert len(bfcl_suite.filter()) == len(bfcl_suite)
    with pytest.raises(ValueError, match="has no category web_search"):
        bfcl_suite.filter(categories=["web_search"])
    with pytest.raises(ValueError, match="unknown task kind"):
        bfcl_suite.filter(kinds=["astt"])
    with pytest.raises(KeyError, match="closest: parallel_3"):
        bfcl_suite.filter(ids=["paralel_3"])


# --------------------------------------------------------------------------- load_suite


def test_named_suites(bfcl_suite):
    default = load_suite()
    assert default.name == "bfcl" and default.categories() == bfcl.DEFAULT_CATEGORIES
    assert len(default) == sum(bfcl.EXPECTED_COUNTS[c] for c in bfcl.DEFAULT_CATEGORIES) == 4291
    assert "simple_java_0" not in default and "simple_java_0" in bfcl_suite
    assert load_suite() is default  # in-process memo
    single = load_suite("bfcl-single")
    assert single.categories() == bfcl.SINGLE_TURN_CATEGORIES and single.kinds() == ("ast", "irrelevance", "relevance")
    multi = load_suite("bfcl-multi")
    assert multi.kinds() == ("multi_turn",) and len(multi) == 800
    pick = load_suite("bfcl", categories=["simple_java", "live_relevance"])
    assert pick.categories() == ("simple_java", "live_relevance")
    # same Task objects whichever suite they came through
    assert pick.get("live_relevance_0-0-0") is default.get("live_relevance_0-0-0")


def test_load_suite_errors():
    with pytest.raises(ValueError, match="did you mean 'bfcl'"):
        load_suite("bfc")
    with pytest.raises(ValueError, match="web_search, memory and format_sensitivity are not supported"):
        load_suite("bfcl", categories=["web_search"])
    with pytest.raises(ValueError, match="choose from: multi_turn_base"):
        load_suite("bfcl-multi", categories=["simple_python"])
    with pytest.raises(FileNotFoundError, match="not found"):
        load_suite("/nonexistent/tasks.jsonl")


def test_load_suite_from_jsonl_path(tmp_path):
    lines = [
        {"id": "a", "kind": "irrelevance", "category": "x", "turns": "hi"},
        {"id": "b", "kind": "irrelevance", "category": "y", "turns": "yo"},
    ]
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in lines) + "\n")
    s = load_suite(str(path))
    assert [t.id for t in s] == ["a", "b"] and s.name == str(path)
    assert load_suite(str(path)) is s
    assert [t.id for t in load_suite(str(path), categories=["y"])] == ["b"]
    # edited file → re-read
    lines.append({"id": "c", "kind": "irrelevance", "category": "x", "turns": "yo"})
    path.write_text("\n".join(json.dumps(d) for d in lines) + "\n")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10_000_000))
    assert len(load_suite(str(path))) == 3


# --------------------------------------------------------------------------- cache


def _cache_files(d):
    return sorted(p for p in d.iterdir() if p.name.startswith(f"bfcl-v4-{SMALL}-"))


def test_cache_written_then_hit(tmp_cache, monkeypatch):
    first = load_bfcl_category(SMALL)
    files = _cache_files(tmp_cache)
    assert len(files) == 1 and files[0].suffix == ".pkl"
    assert not [p for p in tmp_cache.iterdir() if p.suffix == ".tmp"]
    suite_mod.clear_memo()

    def boom(category):
        raise AssertionError("parsed again although the cache is valid")

    monkeypatch.setattr(bfcl, "load_category", boom)
    second = load_bfcl_category(SMALL)
    assert second == first and second is not first
    assert load_bfcl_category(SMALL) is second  # memo


@pytest.mark.parametrize("garbage", [b"", b"not a pickle", b"\x80\x05K\x01.", None])
def test_corrupt_cache_is_ignored_and_rebuilt(tmp_cache, garbage):
    good = load_bfcl_category(SMALL)
    (path,) = _cache_files(tmp_cache)
    if garbage is None:  # truncated file
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(garbage)
    suite_mod.clear_memo()
    rebuilt = load_bfcl_category(SMALL)
    assert rebuilt == good
    assert cache_mod.read_cache(path, cache_mod.cache_key(SMALL)) == good  # rewritten, valid again


def test_stale_key_is_rebuilt(tmp_cache, monkeypatch):
    load_bfcl_category(SMALL)
    suite_mod.clear_memo()
    monkeypatch.setattr(cache_mod, "CACHE_SCHEMA_VERSION", cache_mod.CACHE_SCHEMA_VERSION + 1)
    load_bfcl_category(SMALL)
    assert len(_cache_files(tmp_cache)) == 2  # a new key → a new file


def test_unwritable_cache_dir_still_loads(tmp_path, monkeypatch, tmp_cache):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("TOOLGYM_CACHE_DIR", str(blocker / "sub"))
    tasks = load_bfcl_category(SMALL)
    assert len(tasks) == bfcl.EXPECTED_COUNTS[SMALL]


def test_use_cache_false_bypasses_memo_and_disk(tmp_cache):
    a = load_suite("bfcl", categories=[SMALL], use_cache=False)
    assert not _cache_files(tmp_cache)
    b = load_suite("bfcl", categories=[SMALL], use_cache=False)
    assert a is not b and a.tasks == b.tasks


def test_concurrent_processes_share_the_cache(tmp_cache):
    code = f"from toolgym.env.tasks.suite import load_bfcl_category as f;print(len(f({SMALL!r})))"
    env = dict(os.environ, TOOLGYM_CACHE_DIR=str(tmp_cache))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert out.strip() == str(bfcl.EXPECTED_COUNTS[SMALL])
    assert len(_cache_files(tmp_cache)) == 1
    assert not [p for p in tmp_cache.iterdir() if not p.name.endswith(".pkl")]


def test_cache_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("TOOLGYM_CACHE_DIR", str(tmp_path / "x"))
    assert suite_mod.cache_dir() == tmp_path / "x"
    monkeypatch.delenv("TOOLGYM_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert suite_mod.cache_dir() == tmp_path / "xdg" / "toolgym"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert suite_mod.cache_dir().parts[-2:] == (".cache", "toolgym")


def test_warm_load_comes_back_from_the_cache(bfcl_suite, session_cache_dir):
    # bfcl_suite filled the session cache; a fresh memo must come back from disk quickly
    saved_c, saved_s = dict(suite_mod._category_memo), dict(suite_mod._suite_memo)
    suite_mod.clear_memo()
    try:
        t0 = time.perf_counter()
        s = load_suite("bfcl")
        warm = time.perf_counter() - t0
        t0 = time.perf_counter()
        assert load_suite("bfcl") is s
        memo = time.perf_counter() - t0
    finally:
        suite_mod.clear_memo()
        suite_mod._category_memo.update(saved_c)
        suite_mod._suite_memo.update(saved_s)
    assert len(s) == 4291
    # No wall-time threshold here (the machine is shared and noisy): the memo hands back the same
    # object, and the warm load's time is printed for the record.
    print(f"warm load {warm:.3f}s, memo {memo * 1e3:.2f} ms")
