"""The gateway's dashboard (`GET /`, `/dashboard/data`) and Prometheus `/metrics`, on a real server on loopback.

Episodes are played over the gateway's HTTP /reset + /step (and one over gRPC: both protocols feed the
same numbers); the page is rendered by Debian's headless Chromium, screenshotted, and driven over the
Chrome DevTools protocol (the `websockets` package) to time how soon a finished episode shows up.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest
from png_pixels import png_pixels
import websockets.sync.client as wsc
from prometheus_client.parser import text_string_to_metric_families

from toolgym.env.client import ToolgymClient
from toolgym.env.server.app import ServerConfig, start_server
from toolgym.env.server.http.dashboard import STATIC
from toolgym.env.server.http.dashboard_data import safe_config
from gym_helpers import gt_single_turn_action

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SECRET = "s3cr3t-dashboard-token-7f1c"


@pytest.fixture(scope="module")
def srv(bfcl_suite):
    s = start_server(ServerConfig(host="127.0.0.1", port=0, http_port=0, max_sessions=16), suite=bfcl_suite)
    yield s
    s.stop(0)


def _chromium() -> str:
    for p in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if p and Path(p).exists():
            return p
    pytest.skip("chromium is not installed (Debian: apt-get install -y chromium, or `make test-deps` as root)")


def _request(url: str, body: Any = None, token: str = "") -> tuple[int, bytes, str]:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers.get("Content-Type", "")


def _post(s, path: str, body: Any) -> dict[str, Any]:
    code, raw, _ = _request(s.http.url + path, body)
    assert code == 200, raw
    return json.loads(raw)


def _data(s, token: str = "") -> dict[str, Any]:
    code, raw, _ = _request(s.http.url + "/dashboard/data", token=token)
    assert code == 200, raw
    return json.loads(raw)


def _metrics(s) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    code, raw, ctype = _request(s.http.url + "/metrics")
    assert code == 200 and ctype.startswith("text/plain"), (code, ctype)
    return {(smp.name, tuple(sorted(smp.labels.items()))): smp.value
            for fam in text_string_to_metric_families(raw.decode()) for smp in fam.samples}


def _play_http(s, task, action: str | None = None, close: bool = True) -> tuple[str, dict[str, Any]]:
    """One single-turn episode over HTTP /reset + /step (the ground truth unless `action` is given)."""
    r = _post(s, "/reset", {"task_id": task.id, "template": "hermes"})
    sid = r["observation"]["metadata"]["session_id"]
    out = _post(s, "/step", {"session_id": sid, "action": action if action is not None else gt_single_turn_action(task, "hermes")})
    assert out["done"] is True, out
    if close:
        assert _post(s, "/close", {"session_id": sid}) == {"closed": True}
    return sid, out


def _delta(after: dict, before: dict, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_metrics_parse_and_move_after_episodes(srv, bfcl_suite):
    before = _metrics(srv)
    task = bfcl_suite.get("simple_python_0")
    _, out = _play_http(srv, task)
    assert out["reward"] == 1.0
    with ToolgymClient(srv.address) as c:  # over gRPC, a tool that does not exist: a penalty, same counters
        s = c.reset("simple_python_1", template="hermes")
        res = c.step(s.session_id, '<tool_call>{"name": "no_such_tool", "arguments": {}}</tool_call>')
        assert res.terminated or res.truncated
        c.close_session(s.session_id)
    after = _metrics(srv)
    assert _delta(after, before, "toolgym_steps_total") == 2
    assert _delta(after, before, "toolgym_sessions_created_total") == 2
    assert _delta(after, before, "toolgym_sessions_closed_total") == 2
    assert _delta(after, before, "toolgym_episodes_finished_total", category="simple_python") == 2
    assert _delta(after, before, "toolgym_episode_reward_count", category="simple_python") == 2
    assert _delta(after, before, "toolgym_episode_reward_bucket", category="simple_python", le="+Inf") == 2
    assert _delta(after, before, "toolgym_episode_reward_bucket", category="simple_python", le="1.0") == 2
    assert ("toolgym_episode_reward_sum", (("category", "simple_python"),)) not in after  # totals may be negative: no counter sum
    assert -1.5 <= after[("toolgym_episode_reward_mean", (("category", "simple_python"),))] <= 1.0
    assert _delta(after, before, "toolgym_reward_component_count", category="simple_python", component="task_completion") == 2
    assert _delta(after, before, "toolgym_reward_component_sum", category="simple_python", component="task_completion") == 1.0
    pens = {dict(k[1])["kind"]: v - before.get(k, 0.0) for k, v in after.items() if k[0] == "toolgym_penalties_applied_total"}
    assert sum(pens.values()) >= 1, pens
    assert ("toolgym_sessions_open", ()) in after and ("toolgym_sessions_max", ()) in after
    assert after[("toolgym_sessions_max", ())] == 16
    assert any(k[0].startswith("toolgym_sandbox_") for k in after)
    # the dashboard reads the same numbers
    d = _data(srv)
    assert d["steps"]["total"] == after[("toolgym_steps_total", ())]
    assert d["reward"]["by_category"]["simple_python"]["n"] == after[("toolgym_episodes_finished_total", (("category", "simple_python"),))]
    assert d["penalties"]["applied"] == {k: after[("toolgym_penalties_applied_total", (("kind", k),))] for k in d["penalties"]["applied"]}


def test_dashboard_data_fields_and_episode_detail(srv, bfcl_suite):
    task = bfcl_suite.get("simple_python_2")
    sid, _ = _play_http(srv, task)
    d = _data(srv)
    assert {"server", "sessions", "steps", "episodes", "reward", "penalties", "sandbox", "recent", "config"} <= set(d)
    assert set(d["sessions"]) >= {"open", "max", "created", "closed", "expired"} and d["sessions"]["max"] == 16
    assert d["steps"]["per_s"] >= 0 and d["steps"]["window_s"] > 0
    cat = d["reward"]["by_category"]["simple_python"]
    assert len(cat["counts"]) == len(d["reward"]["total_buckets"]) + 1 and sum(cat["counts"]) == cat["n"]
    assert set(d["reward"]["by_component"]) >= {"task_completion", "tool_accuracy", "format_compliance"}
    row = next(r for r in d["recent"] if r["session_id"] == sid)
    assert row["task_id"] == task.id and row["category"] == "simple_python" and row["total"] == 1.0
    assert row["components"]["task_completion"] == 1.0 and "steps" not in row and "prompt" not in row  # the poll stays small
    ep = json.loads(_request(srv.http.url + f"/dashboard/episode/{row['id']}")[1])
    assert ep["session_id"] == sid and ep["steps"][0]["action"] == gt_single_turn_action(task, "hermes") and ep["prompt"]
    assert ep["reward"]["components"] == row["components"]
    assert _request(srv.http.url + "/dashboard/episode/nope")[0] == 404
    cfg = d["config"]
    assert cfg["max_sessions"] == 16 and cfg["token_auth"] is False and cfg["tls"] is False and "reward" in cfg
    assert not {"tls_cert", "tls_key", "tls_client_ca", "auth_token_file"} & set(cfg)


def test_config_never_shows_secrets(bfcl_suite, tmp_path):
    tok = tmp_path / "tokens"
    tok.write_text(f"alice {SECRET}\n")
    tok.chmod(0o600)
    s = start_server(ServerConfig(host="127.0.0.1", port=0, http_port=0, auth_token_file=str(tok)), suite=bfcl_suite)
    try:  # a second server in this process: its own metrics registry, no clash with the module's
        for path in ("/dashboard/data", "/metrics", "/dashboard/episode/1"):
            assert _request(s.http.url + path)[0] == 401, path
        assert _request(s.http.url + "/")[0] == 200  # the static page; it sends the token from its #fragment
        code, raw, _ = _request(s.http.url + "/metrics", token=SECRET)
        assert code == 200 and b"toolgym_steps_total" in raw
        d = _data(s, token=SECRET)
        text = json.dumps(d)
        assert SECRET not in text and str(tok) not in text and d["config"]["token_auth"] is True
    finally:
        s.stop(0)
    shown = safe_config(ServerConfig(tls_cert="/etc/tg/cert.pem", tls_key="/etc/tg/key.pem", tls_client_ca="/etc/tg/ca.pem",
                                     auth_token_file="/etc/tg/tokens", session_store="redis://user:hunter2@db:6379/0"), auth=True)
    text = json.dumps(shown)
    assert "/etc/tg" not in text and "hunter2" not in text and "user" not in shown["session_store"]
    assert shown["session_store"] == "redis://***@db:6379/0" and shown["tls"] is True and shown["mtls"] is True


def test_page_is_self_contained():
    html = (STATIC / "dashboard.html").read_text()
    css = (STATIC / "dashboard.css").read_text()
    js = (STATIC / "dashboard.js").read_text()
    assert "http:" not in html + css and "https:" not in html + css + js and "//" not in html
    assert js.replace('"http://www.w3.org/2000/svg"', "").count("http") == 0  # the SVG namespace is a name, not a fetch
    assert "innerHTML" not in js  # episode text (model output) goes in as text, never markup





def test_page_renders_in_chromium(srv, bfcl_suite, tmp_path):
    chromium = _chromium()
    _play_http(srv, bfcl_suite.get("simple_python_3"))
    _play_http(srv, bfcl_suite.get("simple_python_4"), action="I cannot help with that.")
    png = tmp_path / "dashboard.png"
    common = [*FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,900", "--virtual-time-budget=3000"]
    subprocess.run([chromium, *common, f"--screenshot={png}", srv.http.url + "/"], capture_output=True, timeout=120, check=True)
    px = png_pixels(png)
    assert png.stat().st_size > 20_000 and len(px) > 1_000_000
    non_white = sum(1 for b in px[::7] if b < 0xF0) / len(px[::7])
    assert non_white > 0.05, "screenshot looks blank"
    assert len(set(px[::3])) > 32
    if os.environ.get("TOOLGYM_DASHBOARD_PNG"):  # keep a copy to look at
        shutil.copy(png, os.environ["TOOLGYM_DASHBOARD_PNG"])
    dom = subprocess.run([chromium, *common, "--dump-dom", srv.http.url + "/"], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    for text in ("Recent episodes", "simple_python_3", "simple_python_4", "Reward total by category", "max_sessions", "task_completion"):
        assert text in dom, text
    assert 'data-task="simple_python_3"' in dom and "<svg" in dom


class _Cdp:
    """A minimal Chrome DevTools protocol client: Runtime.evaluate on one page over its WebSocket."""

    def __init__(self, ws: Any):
        self._ws = ws
        self._id = 0

    def eval(self, expr: str) -> Any:
        self._id += 1
        self._ws.send(json.dumps({"id": self._id, "method": "Runtime.evaluate", "params": {"expression": expr, "returnByValue": True}}))
        while True:
            msg = json.loads(self._ws.recv(timeout=10))
            if msg.get("id") == self._id:
                return msg["result"]["result"].get("value")

    def wait(self, expr: str, within: float) -> float:
        """Seconds until `expr` is truthy (fails after `within`)."""
        t0 = time.monotonic()
        while not self.eval(expr):
            assert time.monotonic() - t0 < within, f"not true within {within} s: {expr}"
            time.sleep(0.02)
        return time.monotonic() - t0


def _devtools_page(profile: Path, proc: subprocess.Popen, within: float = 30.0) -> str:
    port_file = profile / "DevToolsActivePort"  # written by chromium for --remote-debugging-port=0
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "chromium exited"
        if port_file.exists() and port_file.read_text().strip():
            port = port_file.read_text().split()[0]
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                pages = [t for t in json.loads(r.read()) if t.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
        time.sleep(0.1)
    raise AssertionError("chromium's DevTools endpoint did not come up")


@contextlib.contextmanager
def _browser(chromium: str, url: str, profile: Path) -> Iterator[_Cdp]:
    """Headless Chromium on `url`, driven over its DevTools WebSocket; killed on the way out."""
    proc = subprocess.Popen([chromium, *FLAGS, f"--user-data-dir={profile}", "--window-size=1280,900", "--remote-debugging-port=0", url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        with wsc.connect(_devtools_page(profile, proc), open_timeout=10, max_size=None) as ws:
            yield _Cdp(ws)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_finished_episode_appears_within_2s(srv, bfcl_suite, tmp_path):
    with _browser(_chromium(), srv.http.url + "/", tmp_path / "profile") as cdp:
        cdp.wait("document.getElementById('status')?.classList.contains('ok')", 30)  # the page polled once
        task = bfcl_suite.get("simple_python_5")
        sid, _ = _play_http(srv, task, close=False)  # the clock starts when the terminal step's reply is back
        sel = f'tr[data-session="{sid}"]'
        row = f"document.querySelector({json.dumps(sel)})"
        took = cdp.wait(f"!!{row}", 2.0)
        print(f"finished episode on the page after {took:.3f} s")
        assert cdp.eval(f"{row}.querySelector('.total').textContent") == "1.000"
        assert cdp.eval(f"{row}.cells[1].textContent") == task.id
        # expanding the row loads its breakdown and transcript
        cdp.eval(f"{row}.click()")
        cdp.wait(f"({row}.nextElementSibling?.textContent || '').includes('transcript')", 5)
        detail = cdp.eval(f"{row}.nextElementSibling.textContent")
        assert next(iter(task.ground_truth[0])) in detail and "tool_call" in detail  # the model's action
        assert "task_completion" in detail and "prompt" in detail
        # the open detail survives the next polls (rows are added, never redrawn)
        time.sleep(1.5)
        assert cdp.eval(f"{row}.nextElementSibling?.classList.contains('detail')") is True
        _post(srv, "/close", {"session_id": sid})


def test_sqlite_store_episodes_and_a_restart(bfcl_suite, tmp_path):
    """A durable store: its rollouts feed the numbers; after a restart the old ones are history (recent table), not counts."""
    cfg = ServerConfig(host="127.0.0.1", port=0, http_port=0, session_store=f"sqlite:///{tmp_path / 's.db'}")
    s = start_server(cfg, suite=bfcl_suite)
    try:
        sid, _ = _play_http(s, bfcl_suite.get("simple_python_6"))
        d = _data(s)
        assert d["episodes"]["finished"] == 1 and d["recent"][0]["session_id"] == sid
        assert json.loads(_request(s.http.url + f"/dashboard/episode/{d['recent'][0]['id']}")[1])["session_id"] == sid
    finally:
        s.stop(0)
    s = start_server(cfg, suite=bfcl_suite)
    try:
        d = _data(s)
        assert d["episodes"]["finished"] == 0 and [r["session_id"] for r in d["recent"]] == [sid]
        assert _metrics(s).get(("toolgym_episodes_finished_total", (("category", "simple_python"),)), 0.0) == 0.0
    finally:
        s.stop(0)
