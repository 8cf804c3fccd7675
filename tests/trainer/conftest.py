"""Shared fixtures of the trainer tests: an offline tiny model, a live loopback server, quiet TRL."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

pytest.importorskip("torch")
pytest.importorskip("trl")

@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    cache = tmp_path_factory.mktemp("toolgym_cache")
    os.environ.setdefault("TOOLGYM_CACHE", str(cache))
    from toolgym.trainer.tiny import build_tiny_model

    return build_tiny_model(str(tmp_path_factory.mktemp("tiny") / "model"))


@pytest.fixture(scope="session")
def tokenizer(tiny_model_dir: str):
    from toolgym.trainer.common import load_tokenizer

    return load_tokenizer(tiny_model_dir)


@pytest.fixture(scope="session")
def trainer_suite():
    """The default suite plus BFCL's ``simple_java`` category (see ``unscorable_task``)."""
    from toolgym.env.tasks.suite import SUITE_NAMES, load_suite

    return load_suite("default", categories=(*SUITE_NAMES["default"], "simple_java"))


@pytest.fixture(scope="session")
def live_server(trainer_suite):
    """A real toolgym server on loopback (port 0), shared by the session."""
    from toolgym.env.server.app import ServerConfig, start_server

    srv = start_server(ServerConfig(host="127.0.0.1", port=0), suite=trainer_suite)
    yield srv
    srv.stop(grace=1.0)


@pytest.fixture()
def client(live_server):
    from toolgym.env.client import ToolgymClient

    c = ToolgymClient(live_server.address, timeout=60.0)
    yield c
    c.close()


@pytest.fixture(scope="session")
def unscorable_task(trainer_suite) -> str:
    """A real BFCL task the server serves but cannot score: its AST matching is implemented for Python only, so
    every episode or ScoreBatch item of it comes back ``valid=False`` — the trainers' invalid-score path, for real."""
    task_id = "simple_java_0"
    assert trainer_suite[task_id].language == "java"
    return task_id


@pytest.fixture(scope="session")
def gt_text(trainer_suite):
    """``gt_text(task_id, template)``: a task's ground-truth assistant turn as a model would write it."""
    from toolgym.trainer.data import sft_messages

    def text(task_id: str, template: str = "hermes") -> str:
        return sft_messages(trainer_suite[task_id], template)[-1]["content"]

    return text
