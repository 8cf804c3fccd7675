"""Shared fixtures for the task-layer tests: the default BFCL suite, loaded once per session
through a private cache directory (so the tests never touch the user's ~/.cache)."""

from __future__ import annotations

import os

import pytest

from toolgym.env.tasks import bfcl


@pytest.fixture(scope="session")
def session_cache_dir(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("toolgym-cache")
    old = os.environ.get("TOOLGYM_CACHE_DIR")
    os.environ["TOOLGYM_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("TOOLGYM_CACHE_DIR", None)
    else:
        os.environ["TOOLGYM_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def bfcl_suite(session_cache_dir):
    if not bfcl.bfcl_available():
        pytest.skip("bfcl_eval is not installed (pip install --no-deps bfcl-eval==2026.3.23)")
    from toolgym.env.tasks.suite import load_suite

    return load_suite("bfcl", categories=bfcl.SUPPORTED_CATEGORIES)
