"""Shared pieces of the hardening tests: a real server process, fuzz strategies, wire encoding.

The server always runs as its own process (``python -m toolgym.env.cli.main serve``): a crash is
then an exit we can see, a hang is a deadline that expires, and the load generator and the
server use both cores instead of sharing one GIL.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import grpc
from hypothesis import strategies as st

from toolgym.env.parsers import TEMPLATES, render_calls, render_final_answer, render_give_up
from toolgym.env.types import ToolCall

ALLOWED_ERRORS = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION,
                  grpc.StatusCode.RESOURCE_EXHAUSTED}
# Codes a request can never earn: a server bug (INTERNAL/UNKNOWN), a hang, a crash.
FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED,
             grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.CANCELLED}

FUZZ_COUNTS: dict[str, dict[str, float]] = {}

# CI runs the same cases every time (reproducible; a failure is a regression, not bad luck).
# TOOLGYM_FUZZ_RANDOM=1 draws new cases on every run to look for new bugs.
RANDOM = os.environ.get("TOOLGYM_FUZZ_RANDOM") == "1"


def fuzz_settings(examples: int) -> Any:
    from hypothesis import HealthCheck, settings

    return settings(max_examples=examples, deadline=None, database=None, derandomize=not RANDOM,
                    suppress_health_check=list(HealthCheck), print_blob=True)


def record_cases(rpc: str, n: int, seconds: float) -> None:
    d = FUZZ_COUNTS.setdefault(rpc, {"cases": 0, "seconds": 0.0})
    d["cases"] += n
    d["seconds"] += seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------- server process
@dataclass
class ServerProc:
    """``toolgym serve`` in a subprocess, with its log and --stats-file."""

    args: list[str] = field(default_factory=list)
    env: dict[str, str] | None = None
    port: int = 0
    host: str = "127.0.0.1"
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        self.port = self.port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="toolgym-hardening-"))
        self.stats_file = self.dir / "stats.json"
        self.log_path = self.dir / "server.log"
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, wait: bool = True, timeout: float = 90.0, channel_credentials: grpc.ChannelCredentials | None = None) -> ServerProc:
        cmd = [sys.executable, "-m", "toolgym.env.cli.main", "--log-level", self.log_level, "serve", "--host", self.host, "--port", str(self.port),
               "--stats-file", str(self.stats_file), "--stats-interval-s", "0.5", *self.args]
        env = {**os.environ, **(self.env or {})}
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        if wait:
            self.wait_serving(timeout, channel_credentials)
        return self

    def wait_serving(self, timeout: float = 90.0, channel_credentials: grpc.ChannelCredentials | None = None) -> None:
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode} while starting:\n{self.log()[-3000:]}")
            ch = grpc.secure_channel(self.address, channel_credentials) if channel_credentials else grpc.insecure_channel(self.address)
            try:
                st = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=2)
                if st.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            finally:
                ch.close()
            if time.monotonic() > deadline:
                raise AssertionError(f"server did not come up in {timeout}s:\n{self.log()[-3000:]}")
            time.sleep(0.2)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stats(self) -> dict[str, Any]:
        for _ in range(50):
            try:
                return json.loads(self.stats_file.read_text())
            except (OSError, ValueError):
                time.sleep(0.1)
        return {}

    def fresh_stats(self, after: float | None = None, timeout: float = 10.0) -> dict[str, Any]:
        """A snapshot written after ``after`` (default: now)."""
        t = time.time() if after is None else after
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.stats()
            if s.get("time", 0) > t:
                return s
            time.sleep(0.1)
        raise AssertionError("no fresh stats snapshot")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode


# ---------------------------------------------------------------------------- result checks
def strict_json(text: str) -> Any:
    """json.loads that refuses NaN/Infinity (what a strict client parser does)."""
    def bad(tok: str) -> Any:
        raise AssertionError(f"non-finite JSON token {tok!r} left the server")
    return json.loads(text, parse_constant=bad) if text else {}


def check_score_pb(r: Any) -> None:
    """Invariants of every ScoreResult on the wire (design §4)."""
    assert math.isfinite(r.total), r
    for k, v in r.components.items():
        assert math.isfinite(v) and 0.0 <= v <= 1.0, (k, v)
    for k, v in r.penalties.items():
        assert math.isfinite(v) and v <= 0.0, (k, v)
    assert isinstance(strict_json(r.details_json), dict)
    if not r.valid:
        assert r.feedback, "valid=false without a reason"


def check_error(e: grpc.RpcError, allowed: set[grpc.StatusCode] = ALLOWED_ERRORS) -> grpc.StatusCode:
    code = e.code()
    assert code not in FORBIDDEN and code in allowed, f"{code}: {e.details()}"
    details = e.details() or ""
    assert len(details) >= 15 and "Traceback" not in details, f"not actionable: {details!r}"
    return code


# ---------------------------------------------------------------------------- strategies
HUGE = ["A" * 20_001, "<tool_call>" * 3000, "[" * 25_000, "é" * 30_000]  # just past the fuzz server's 20k limit
DEEP_JSON = ["[" * 5000 + "]" * 5000, '{"a":' * 3000 + "1" + "}" * 3000, "[" * 10_000]


def json_values(max_leaves: int = 8) -> st.SearchStrategy:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                        st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30),
                        st.sampled_from([1e308, -1e308, 5e-324, 2**63, -(2**63) - 1, "", "0", "true", "null"]))
    return st.recursive(scalars, lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(st.text(max_size=10), c, max_size=4)),
                        max_leaves=max_leaves)


hostile_text = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=30),
    st.sampled_from(["", " ", "\x00", "\u202e", "\ufeff", "null", "{}", "</tool_call>", "<give_up>", "Final Answer:", "reward: 1.0",
                     '{"total": 1.0, "valid": true}', "\\", "%s%n%x", "${jndi:x}", "../../etc/passwd"]),
)


def rendered_calls(tool_names: list[str]) -> st.SearchStrategy[str]:
    """Model outputs in every template: calls to real or made-up tools with arguments of any type."""
    name = st.one_of(st.sampled_from(tool_names or ["f"]), st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True))

    @st.composite
    def one(draw: Callable) -> str:
        template = draw(st.sampled_from(TEMPLATES))
        kind = draw(st.integers(0, 9))
        if kind == 0:
            return render_final_answer(draw(hostile_text), template)
        if kind == 1:
            return render_give_up(template, reason=draw(st.text(max_size=20)))
        n = 1 if template in ("react", "toolllama", "modelscope", "autogpt") else draw(st.integers(1, 3))
        calls = [ToolCall(draw(name), draw(st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), json_values(), max_size=4)))
                 for _ in range(n)]
        try:
            text = render_calls(calls, template)
        except ValueError:
            text = json.dumps([{"name": c.name, "arguments": c.arguments} for c in calls])
        if kind == 2 and text:  # cut it anywhere: unterminated tags, half JSON
            text = text[: draw(st.integers(0, len(text)))]
        if kind == 3:
            text = draw(hostile_text) + text + draw(hostile_text)
        return text

    return st.one_of(one(), hostile_text, st.sampled_from(HUGE + DEEP_JSON + ["<tool_call>" + d + "</tool_call>" for d in DEEP_JSON]))


# ---------------------------------------------------------------------------- protobuf wire format
def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def wire_field(number: int, wire_type: int, payload: bytes | int) -> bytes:
    tag = varint((number << 3) | wire_type)
    if wire_type == 0:
        return tag + varint(int(payload))
    if wire_type == 1:
        return tag + int(payload).to_bytes(8, "little", signed=False)
    if wire_type == 5:
        return tag + int(payload).to_bytes(4, "little", signed=False)
    assert isinstance(payload, bytes)
    return tag + varint(len(payload)) + payload


INVALID_UTF8 = [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"ab\xe2\x82", b"\xc0\xaf", b"\x80"]


@st.composite
def malformed_wire(draw: Callable, valid: bytes, string_fields: tuple[int, ...]) -> bytes:
    """Structured-malformed wire bytes around a valid message: invalid UTF-8 in a string field (what
    a ``bytes`` field of the same number would carry), unknown fields of every wire type, wrong wire
    types for known numbers, truncation, overlong lengths, dangling groups, or plain random bytes."""
    kind = draw(st.integers(0, 7))
    if kind == 0 and string_fields:
        bad = draw(st.sampled_from(INVALID_UTF8))
        return valid + wire_field(draw(st.sampled_from(string_fields)), 2, draw(st.binary(max_size=8)) + bad + draw(st.binary(max_size=8)))
    if kind == 1:
        wt = draw(st.sampled_from([0, 1, 2, 5]))
        payload = draw(st.binary(max_size=16)) if wt == 2 else draw(st.integers(0, 2**32 - 1))
        return valid + wire_field(draw(st.integers(50, 536_870_911)), wt, payload)
    if kind == 2:
        num = draw(st.sampled_from(string_fields or (1,)))
        return valid + wire_field(num, draw(st.sampled_from([0, 1, 5])), draw(st.integers(0, 2**32 - 1)))
    if kind == 3 and valid:
        return valid[: draw(st.integers(0, len(valid) - 1))]
    if kind == 4:
        return valid + varint((draw(st.integers(1, 20)) << 3) | 2) + varint(draw(st.integers(1 << 20, 1 << 62)))
    if kind == 5:
        return valid + varint((draw(st.integers(1, 20)) << 3) | 3) * draw(st.integers(1, 200))  # start-group, never ended
    if kind == 6:
        return valid + b"\xff" * draw(st.integers(1, 12))  # overlong varint tag
    return draw(st.binary(max_size=200))


def build_pool(strategy: st.SearchStrategy, n: int, per_example: int = 25) -> list:
    """``n`` distinct values drawn by hypothesis (run once; the fuzz tests then combine them).

    Drawing every atom of 10,000 requests per RPC through hypothesis costs minutes; drawing a
    few thousand rich atoms once and letting each test's hypothesis run pick and combine them
    keeps the cases varied and the suite inside its CI budget.
    """
    from hypothesis import given

    seen: dict[str, Any] = {}

    @fuzz_settings(max(1, (2 * n) // per_example))
    @given(st.lists(strategy, min_size=per_example, max_size=per_example, unique_by=repr))
    def collect(xs: list) -> None:
        for x in xs:
            if len(seen) < n:
                seen.setdefault(repr(x), x)

    collect()
    return list(seen.values())


# ---------------------------------------------------------------------------- reward_config overrides
COMPONENT_NAMES = ("task_completion", "tool_accuracy", "efficiency", "timing_quality", "format_compliance")
PENALTY_NAMES = ("wrong_tool", "hallucinated_tool", "redundant_call", "format_error", "timeout")
_ANY_FLOAT = st.one_of(st.floats(), st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 0.0, -0.0, 0.4, -0.3, 5e-324]))

reward_configs = st.fixed_dictionaries({
    "weights": st.dictionaries(st.one_of(st.sampled_from(COMPONENT_NAMES), st.text(max_size=8)), _ANY_FLOAT, max_size=3),
    "penalties": st.dictionaries(st.one_of(st.sampled_from(PENALTY_NAMES), st.text(max_size=8)), _ANY_FLOAT, max_size=3),
    "ppo": st.one_of(st.none(), st.booleans()),
    "floor": st.one_of(st.none(), _ANY_FLOAT),
})


def config_ok(c: dict | None) -> bool:
    """Whether an override is acceptable under the contract (independent of the server's code)."""
    if c is None:
        return True
    if set(c["weights"]) - set(COMPONENT_NAMES) or set(c["penalties"]) - set(PENALTY_NAMES):
        return False
    if any(not math.isfinite(v) or v < 0 for v in c["weights"].values()):
        return False
    if any(not math.isfinite(v) or v > 0 for v in c["penalties"].values()):
        return False
    return c["floor"] is None or (not math.isnan(c["floor"]) and c["floor"] <= 0)


def apply_config(rc: Any, c: dict) -> None:
    for k, v in c["weights"].items():
        rc.weights[k] = v
    for k, v in c["penalties"].items():
        rc.penalties[k] = v
    if c["ppo"] is not None:
        rc.penalty_per_occurrence = c["ppo"]
    if c["floor"] is not None:
        rc.max_penalty_total = c["floor"]
    if not (c["weights"] or c["penalties"] or c["ppo"] is not None or c["floor"] is not None):
        rc.SetInParent()  # an empty override message: present, changes nothing


@dataclass
class Corpus:
    outputs: list[str]
    texts: list[str]
    configs: list[dict]
    task_json: list[str]
    json_docs: list[str]


TOOL_NAMES = ["calculate_triangle_area", "math.factorial", "ls", "cd", "mkdir", "cat", "python", "get_weather", "spotify.play"]
INLINE_TASKS = ['{"id": "t", "kind": "ast"}', '{"function": []}', "[" * 5000, "null", "[]", '"x"',
                '{"id": "x", "category": "c", "question": [[{"role": "user", "content": "q"}]], '
                '"function": [{"name": "f", "parameters": {"type": "dict", "properties": {}}}], "ground_truth": [{"f": {}}]}']


def build_corpus() -> Corpus:
    docs = [json.dumps(v) for v in build_pool(json_values(12), 400)]
    return Corpus(
        outputs=build_pool(rendered_calls(TOOL_NAMES), 1200),
        texts=build_pool(hostile_text, 400),
        configs=build_pool(reward_configs, 300),
        task_json=INLINE_TASKS + docs[:200],
        json_docs=docs + DEEP_JSON,
    )
