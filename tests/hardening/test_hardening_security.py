"""Security with real clients: bearer tokens, TLS, mTLS, per-client limits, log redaction, exposure.

Servers run as ``toolgym serve`` processes with the CLI flags a deployment would use (except the
limit tests, which start an in-process server for direct access to its counters).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from hardening_support import ServerProc

from toolgym.env.client import ToolgymClient
from toolgym.env.server.credentials import SecurityConfigError, load_tokens, server_credentials
from toolgym.env.server.redaction import RedactSecrets
from toolgym.env.server.app import ServerConfig, start_server
from toolgym.v1 import env_pb2, env_pb2_grpc, reward_pb2, reward_pb2_grpc

ALICE = "alice-0123456789abcdef-token"
BOB = "bob-fedcba9876543210-token"


@pytest.fixture(scope="module")
def token_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("tokens") / "tokens"
    p.write_text(f"# name token\nalice {ALICE}\nbob {BOB}\n")
    p.chmod(0o600)
    return str(p)


@pytest.fixture(scope="module")
def auth_server(token_file):
    srv = ServerProc(args=["--auth-token-file", token_file, "--max-sessions-per-client", "2", "--no-env"])
    srv.env = {"TOOLGYM_AUTH_TOKEN": ""}
    srv.start()
    yield srv
    assert srv.stop() == 0


def _code(fn) -> grpc.StatusCode:
    try:
        fn()
    except grpc.RpcError as e:
        return e.code()
    return grpc.StatusCode.OK


def test_token_auth_with_a_real_client(auth_server):
    addr = auth_server.address
    with ToolgymClient(addr, token="", timeout=10) as anon, ToolgymClient(addr, token=ALICE + "x", timeout=10) as wrong, \
            ToolgymClient(addr, token=ALICE, timeout=10) as alice:
        with pytest.raises(grpc.RpcError) as e:
            anon.score("x", task_id="simple_python_0")
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED and "authorization: Bearer" in e.value.details()
        with pytest.raises(grpc.RpcError) as e:
            wrong.score("x", task_id="simple_python_0")
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED and "not accepted" in e.value.details()
        assert ALICE not in e.value.details()  # the server never echoes a credential
        assert alice.score("x", task_id="simple_python_0").valid
        assert ALICE not in repr(alice)  # a logged client object does not print its token
        # Health checking stays open (probes and load balancers carry no secret).
        assert anon.health() == "SERVING"
    # Raw channel with a malformed header value: still UNAUTHENTICATED, server keeps serving.
    with grpc.insecure_channel(addr) as ch:
        stub = reward_pb2_grpc.RewardServiceStub(ch)
        for value in ["Basic " + ALICE, "Bearer", "bearer  " + BOB + " extra", ALICE]:
            assert _code(lambda v=value: stub.Score(reward_pb2.ScoreRequest(task_id="simple_python_0"), metadata=(("authorization", v),),
                                                    timeout=10)) == grpc.StatusCode.UNAUTHENTICATED, value
    with ToolgymClient(addr, token=BOB, timeout=10) as bob:
        assert bob.score("x", task_id="simple_python_0").valid


def test_token_from_environment(auth_server, monkeypatch):
    monkeypatch.setenv("TOOLGYM_AUTH_TOKEN", BOB)  # what trainers/evals pick up without code changes
    with ToolgymClient(auth_server.address, timeout=10) as c:
        assert c.score("x", task_id="simple_python_0").valid


def test_logs_never_show_tokens(tmp_path, token_file):
    """A DEBUG-level server sees failed and successful auth: neither token reaches its log."""
    srv = ServerProc(args=["--auth-token-file", token_file, "--no-env"], log_level="DEBUG")
    srv.start()
    try:
        with grpc.insecure_channel(srv.address) as ch:
            stub = reward_pb2_grpc.RewardServiceStub(ch)
            for value in [f"Bearer {ALICE}x", f"Bearer x{BOB}", f"Bearer {ALICE[:-1]}", f"Bearer {ALICE}", f"Bearer {BOB}"] * 3:
                _code(lambda v=value: stub.Score(reward_pb2.ScoreRequest(task_id="simple_python_0", output="x"), metadata=(("authorization", v),), timeout=10))
    finally:
        srv.stop()
    log = srv.log()
    assert "rejected an unauthenticated call" in log  # the failures were logged...
    for secret in (ALICE, BOB, ALICE[:-1], "x" + BOB):
        assert secret not in log  # ...without any credential


def test_redaction_filter_scrubs_records():
    filt = RedactSecrets([ALICE])
    rec = logging.LogRecord("x", logging.INFO, __file__, 1, "metadata %s and %s", (f"authorization: Bearer {BOB}", f"token={ALICE}"), None)
    filt.filter(rec)
    msg = rec.getMessage()
    assert ALICE not in msg and BOB not in msg and "[REDACTED]" in msg


def test_token_file_mistakes_are_reported(tmp_path):
    short = tmp_path / "short"
    short.write_text("abc\n")
    with pytest.raises(SecurityConfigError, match="at least 16"):
        load_tokens(str(short))
    with pytest.raises(SecurityConfigError, match="no token"):
        empty = tmp_path / "empty"
        empty.write_text("# nothing\n")
        load_tokens(str(empty))
    with pytest.raises(SecurityConfigError, match="No such file"):
        load_tokens(str(tmp_path / "missing"))


# ---------------------------------------------------------------------------- TLS and mTLS
@pytest.fixture(scope="module")
def tls_server(certs):
    srv = ServerProc(args=["--tls-cert", certs["server"], "--tls-key", certs["server_key"], "--no-env"])
    srv.start(channel_credentials=grpc.ssl_channel_credentials(open(certs["ca"], "rb").read()))
    yield srv
    assert srv.stop() == 0


def test_plaintext_to_tls_port_fails_cleanly(tls_server, certs):
    for _ in range(5):
        with ToolgymClient(tls_server.address, timeout=5) as plain:
            with pytest.raises(grpc.RpcError) as e:
                plain.score("x", task_id="simple_python_0")
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    with ToolgymClient(tls_server.address, tls_ca=certs["ca"], timeout=10) as c:  # the server kept serving
        assert c.score("x", task_id="simple_python_0").valid and c.health() == "SERVING"
    with ToolgymClient(tls_server.address, tls_ca=certs["other_ca"], timeout=5) as untrusted:
        with pytest.raises(grpc.RpcError) as e:  # a server certificate the client does not trust
            untrusted.health()
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert tls_server.alive()


def test_tls_client_to_plaintext_port_fails_cleanly(auth_server, certs):
    with ToolgymClient(auth_server.address, tls_ca=certs["ca"], timeout=5) as c:
        with pytest.raises(grpc.RpcError) as e:
            c.health()
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE


def test_mtls_requires_a_client_certificate_from_the_ca(certs):
    srv = ServerProc(args=["--tls-cert", certs["server"], "--tls-key", certs["server_key"], "--tls-client-ca", certs["ca"], "--no-env"])
    creds = grpc.ssl_channel_credentials(open(certs["ca"], "rb").read(), open(certs["client_key"], "rb").read(), open(certs["client"], "rb").read())
    srv.start(channel_credentials=creds)
    try:
        for kw in ({}, {"tls_cert": certs["other_client"], "tls_key": certs["other_client_key"]}):
            with ToolgymClient(srv.address, tls_ca=certs["ca"], timeout=5, **kw) as c:
                with pytest.raises(grpc.RpcError) as e:
                    c.score("x", task_id="simple_python_0")
                assert e.value.code() == grpc.StatusCode.UNAVAILABLE, kw
        with ToolgymClient(srv.address, tls_ca=certs["ca"], tls_cert=certs["client"], tls_key=certs["client_key"], timeout=10) as c:
            assert c.score("x", task_id="simple_python_0").valid
    finally:
        assert srv.stop() == 0


def test_tls_settings_mistakes_are_reported(certs, tmp_path):
    with pytest.raises(SecurityConfigError, match="--tls-key"):
        server_credentials(certs["server"], "")
    not_pem = tmp_path / "x.pem"
    not_pem.write_text("hello")
    with pytest.raises(SecurityConfigError, match="not PEM"):
        server_credentials(str(not_pem), certs["server_key"])


def test_remote_bind_needs_tls_and_token(tmp_path):
    with pytest.raises(SecurityConfigError) as e:
        start_server(ServerConfig(host="0.0.0.0", port=0, enable_env=False))
    assert "TLS" in str(e.value) and "token" in str(e.value) and "--allow-insecure-remote" in str(e.value)
    srv = ServerProc(host="0.0.0.0", args=["--no-env"])
    srv.start(wait=False)
    assert srv.proc.wait(60) == 2 and "--allow-insecure-remote" in srv.log()
    srv.stop()


# ---------------------------------------------------------------------------- per-client limits
@pytest.fixture(scope="module")
def limited(suite, token_file):
    srv = start_server(ServerConfig(port=0, max_inflight_per_client=2, max_sessions_per_client=3, max_streams=2,
                                    max_message_bytes=1 << 20, auth_token_file=token_file, sandbox_workers=1), suite=suite)
    yield srv
    srv.stop(0)


def test_inflight_limit_per_client(limited):
    with ToolgymClient(limited.address, token=ALICE, timeout=30) as alice, ToolgymClient(limited.address, token=BOB, timeout=30) as bob:
        sids = [alice.reset("toolgym_python_0", template="hermes").session_id for _ in range(3)]
        slow = '<tool_call>{"name": "python", "arguments": {"code": "import time; time.sleep(1.5); print(1)"}}</tool_call>'
        results: list = [None] * 3

        def run(i: int) -> None:
            try:
                results[i] = alice.step(sids[i], slow)
            except grpc.RpcError as e:
                results[i] = e

        threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
        for th in threads:
            th.start()
            time.sleep(0.2)
        assert bob.score("x", task_id="simple_python_0").valid  # another client is not affected
        for th in threads:
            th.join(30)
        errors = [r for r in results if isinstance(r, grpc.RpcError)]
        assert len(errors) == 1 and errors[0].code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "token:alice" in errors[0].details() and "--max-inflight-per-client" in errors[0].details()
        for s in sids:
            alice.close_session(s)
    assert limited.guard.snapshot()["inflight"] == 0  # every slot was given back


def test_session_limit_per_client(limited):
    with ToolgymClient(limited.address, token=ALICE, timeout=30) as alice, ToolgymClient(limited.address, token=BOB, timeout=30) as bob:
        mine = [alice.reset("simple_python_0").session_id for _ in range(3)]
        with pytest.raises(grpc.RpcError) as e:
            alice.reset("simple_python_0")
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "--max-sessions-per-client" in e.value.details()
        other = bob.reset("simple_python_0").session_id  # bob has his own quota
        # Over the multiplexed stream the same quota applies.
        reply = next(iter(alice.sessions_stream([env_pb2.SessionRequest(tag="r", reset=env_pb2.ResetRequest(task_id="simple_python_0"))], timeout=30)))
        assert reply.error.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
        alice.close_session(mine[0])
        mine[0] = alice.reset("simple_python_0").session_id  # a closed session frees its slot
        for s in mine:
            alice.close_session(s)
        bob.close_session(other)


def test_message_size_limit(limited):
    with ToolgymClient(limited.address, token=ALICE, timeout=30) as c:
        with pytest.raises(grpc.RpcError) as e:
            c.score("x" * (2 << 20), task_id="simple_python_0")
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert c.score("x", task_id="simple_python_0").valid


def test_stream_cap_keeps_threads_for_unary_calls(limited):
    with grpc.insecure_channel(limited.address) as ch:
        stub = env_pb2_grpc.EnvServiceStub(ch)
        md = (("authorization", f"Bearer {ALICE}"),)
        gate = threading.Event()

        def idle():
            gate.wait(20)
            return
            yield  # noqa: unreachable - an open stream that sends nothing

        open_streams = [stub.Sessions(idle(), metadata=md, timeout=30) for _ in range(2)]
        time.sleep(0.5)
        third = stub.Sessions(iter([env_pb2.SessionRequest(tag="x")]), metadata=(("authorization", f"Bearer {BOB}"),), timeout=10)
        with pytest.raises(grpc.RpcError) as e:
            list(third)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "--max-streams" in e.value.details()
        with ToolgymClient(limited.address, token=BOB, timeout=10) as c:
            assert c.health() == "SERVING" and c.score("x", task_id="simple_python_0").valid
        open_streams[0].cancel()  # a client that walks away frees its slot too
        gate.set()
        for s in open_streams[1:]:
            list(s)
        deadline = time.monotonic() + 10
        while limited.guard.snapshot()["streams"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert limited.guard.snapshot()["streams"] == 0


# ---------------------------------------------------------------------------- evals behind auth/TLS
KAGENT_FIXTURES = Path(__file__).resolve().parents[1] / "evals" / "fixtures"


def _kagent():
    from toolgym.evals.kagentbench import load_items, load_predictions

    return load_items(str(KAGENT_FIXTURES / "kagent_items.jsonl")), load_predictions(str(KAGENT_FIXTURES / "kagent_preds.jsonl"))


def test_eval_client_carries_the_token(auth_server, monkeypatch):
    from toolgym.evals.kagentbench import score
    from toolgym.evals.service import EvalClient

    items, preds = _kagent()
    want = score(items, preds).overall
    with EvalClient(auth_server.address, token="", timeout=30) as anon:
        with pytest.raises(grpc.RpcError) as e:
            anon.evaluate(items, preds)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with EvalClient(auth_server.address, token=ALICE, timeout=30) as alice:
        assert alice.evaluate(items, preds)["overall"] == want
        assert alice.evaluate(items, preds, stream=True)["overall"] == want
    monkeypatch.setenv("TOOLGYM_AUTH_TOKEN", BOB)  # the CLI's --server path picks the token up from the environment
    out = subprocess.run([sys.executable, "-m", "toolgym.evals.cli", "kagentbench", "--data", str(KAGENT_FIXTURES / "kagent_items.jsonl"),
                          "--predictions", str(KAGENT_FIXTURES / "kagent_preds.jsonl"), "--server", auth_server.address, "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["overall"] == pytest.approx(want, abs=1e-9)
    assert BOB not in out.stdout + out.stderr


def test_eval_client_over_tls(tls_server, certs):
    from toolgym.evals.kagentbench import score
    from toolgym.evals.service import EvalClient

    items, preds = _kagent()
    with EvalClient(tls_server.address, tls_ca=certs["ca"], timeout=30) as cl:
        assert cl.evaluate(items, preds)["overall"] == score(items, preds).overall
    with EvalClient(tls_server.address, timeout=5) as plain:
        with pytest.raises(grpc.RpcError) as e:
            plain.evaluate(items, preds)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
