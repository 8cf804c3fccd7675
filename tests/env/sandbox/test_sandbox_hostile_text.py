"""Hostile text and prying code: lone surrogates never raise or kill a worker, and code cannot read
the worker's launch spec (it holds host paths)."""

from __future__ import annotations

import json

import pytest

from toolgym.env.sandbox import SandboxConfig, WorkerPool
from toolgym.env.sandbox import protocol

BFCL = {"involved_classes": ["GorillaFileSystem"], "initial_config": {}}

#: Five ways model output gets a lone surrogate to the sandbox and back.
POISON = [
    ("python", {"code": "raise Exception(chr(0xd800))"}),  # in the traceback (the reported case)
    ("python", {"code": "import sys\nsys.stdout.write(chr(0xdfff) + 'x')\nprint(chr(0xd800))"}),  # in stdout
    ("python", {"code": "import os\nopen(os.fsdecode(b'bad\\xff.txt'), 'w').write('x')\nprint(os.listdir('.'))"}),  # a file name
    ("python", {"code": "x = '\ud800'"}),  # in the arguments themselves
    ("mkdir", {"dir_name": "\ud800"}),  # in a backend's arguments
]


@pytest.fixture(scope="module")
def pool():
    p = WorkerPool(SandboxConfig(workers=2))
    yield p
    p.close()


def _utf8(text: str | None) -> bool:
    return text is None or protocol.unencodable_at(text) is None


def test_frames_carry_lone_surrogates_both_ways():
    msg = {"k\udcff": ["\ud800", "ok \u4e2d"]}
    assert protocol.encode(msg).decode("ascii")  # never UnicodeEncodeError
    assert json.loads(protocol.encode(msg)[4:]) == msg
    assert protocol.safe_text("a\ud800b").startswith("a\\ud800b\n[toolgym: text held 1 lone surrogate")
    assert protocol.find_unencodable({"a": [1, {"b": "x\ud800"}]}) == ("a[1].b", 1)


def test_five_poison_calls_kill_no_worker_and_rebuild_no_other_session(pool):
    py = pool.open_session("python", {})
    fs = pool.open_session("bfcl_multi_turn", BFCL)
    bystanders = [pool.open_session("bfcl_multi_turn", BFCL) for _ in range(3)]
    for b in bystanders:
        assert pool.call(b, "mkdir", {"dir_name": "mine"}).ok
    before = pool.stats()
    results = [pool.call(fs if name == "mkdir" else py, name, args) for name, args in POISON]
    for (name, args), r in zip(POISON, results):
        assert _utf8(r.output) and _utf8(r.error), (name, r)  # everything coming back is valid Unicode
    raised, printed, filename, in_code, in_backend = results
    assert not raised.ok and "Exception: \\ud800" in raised.error and "lone surrogate" in raised.error
    assert printed.ok and "x" in printed.output
    assert filename.ok and "bad" in filename.output
    for r in (in_code, in_backend):  # refused before anything runs, with where and how to fix it
        assert not r.ok and "lone surrogate at index" in r.error and "not run" in r.error
    assert "dir_name" in in_backend.error and "code" in in_code.error
    st = pool.state(py)  # the surrogate file name comes back escaped, not as an exception
    assert _utf8(json.dumps(st, ensure_ascii=False)) and any("bad" in f for f in st["files"])
    after = pool.stats()
    assert after["worker_deaths"] == before["worker_deaths"] == 0
    assert after["rebuilds"] == before["rebuilds"] and after["crashes_in_call"] == 0
    for b in bystanders:  # unrelated sessions kept their state without a rebuild
        assert "mine" in pool.call(b, "ls", {}).output
    assert pool.stats()["rebuilds"] == before["rebuilds"]


def test_code_cannot_read_the_launch_spec(pool):
    sid = pool.open_session("python", {})
    secret = [*pool._plan.worker_spec["site"], pool._plan.worker_spec["env_dir"]]  # noqa: SLF001 - host paths it holds
    code = "SECRET = " + repr([p.encode() for p in secret]) + r"""
import gc, sys, __main__
cmd = open('/proc/self/cmdline', 'rb').read() + open('/proc/1/cmdline', 'rb').read()
specs = [d for d in gc.get_objects() if isinstance(d, dict) and ({'jail_hide', 'jail_binds', 'env_dir'} & set(map(str, d)))]
g = {k: v for k, v in vars(__main__).items() if isinstance(v, (str, dict, list))}
print(len(specs), b'jail_hide' in cmd, any(p in cmd for p in SECRET), sys.argv,
      sorted(k for k, v in g.items() if v and k not in ('SECRET', '__builtins__') and not k.startswith('__')))
"""
    r = pool.call(sid, "python", {"code": code})
    assert r.ok, r
    assert r.output.strip() == "0 False False ['<python>'] []", r.output
    r = pool.call(sid, "python", {"code": "import sys\nprint(sys.path)"})
    assert r.ok and not any(s in r.output for s in secret), r.output
