"""`toolgym serve` as a real process: health, and SIGTERM drains an in-flight step before exit."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import grpc

from toolgym.env.client import ToolgymClient


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sigterm_drains_in_flight_step():
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "toolgym.env.cli.main", "--log-level", "WARNING", "serve", "--port", str(port),
                             "--drain-grace-s", "20"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        c = ToolgymClient(f"127.0.0.1:{port}", timeout=60)
        deadline = time.monotonic() + 90
        while True:
            try:
                assert c.health() == "SERVING"
                break
            except grpc.RpcError:
                assert proc.poll() is None and time.monotonic() < deadline, "server did not come up"
                time.sleep(0.3)
        r = c.reset("toolgym_python_0", template="hermes")
        result: dict = {}

        def slow_step() -> None:
            code = "import time; time.sleep(1.5); print('finished')"
            result["step"] = c.step(r.session_id, '<tool_call>{"name": "python", "arguments": {"code": "%s"}}</tool_call>' % code)

        th = threading.Thread(target=slow_step)
        th.start()
        time.sleep(0.5)  # the step is now running in the sandbox
        proc.send_signal(signal.SIGTERM)
        th.join(30)
        assert "finished" in result["step"].observation  # the in-flight step completed
        assert proc.wait(30) == 0
        out = proc.stdout.read()
        assert "stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
