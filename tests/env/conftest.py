"""Shared fixtures for env tests: one suite load and one live server per session."""

from __future__ import annotations

import pytest

from toolgym.env.tasks.suite import load_suite


@pytest.fixture(scope="session")
def bfcl_suite():
    return load_suite("default")


@pytest.fixture(scope="session")
def env_server(bfcl_suite):
    from toolgym.env.server.app import ServerConfig, start_server

    srv = start_server(ServerConfig(port=0, max_sessions=2000), suite=bfcl_suite)
    yield srv
    srv.stop(0)
