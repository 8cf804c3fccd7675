"""Fixtures of the cross-language client tests: one real toolgym server on loopback per session."""

from __future__ import annotations

import pytest

from toolgym.env.tasks.suite import load_suite


@pytest.fixture(scope="session")
def env_server():
    """The default suite served on 127.0.0.1 (port 0), as tests/env/conftest.py does."""
    from toolgym.env.server.app import ServerConfig, start_server

    srv = start_server(ServerConfig(host="127.0.0.1", port=0), suite=load_suite("default"))
    yield srv
    srv.stop(0)
