"""Hostile code through the worker pool: each category is contained, the host and the pool stay healthy.

These run the real sandbox (bubblewrap, namespaces, rlimits). If bwrap or user namespaces are
missing they fail with SandboxUnavailable and its install hint: the sandbox is not optional.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from toolgym.env.sandbox import SandboxConfig, WorkerPool
from toolgym.env.sandbox.bwrap import plan_worker

SECRET = "toolgym-test-secret-6f1d2c"
# The checkout's own files: the sandbox binds the installed packages, never the repository root.
REPO_FILE = str(Path(__file__).resolve().parents[3] / "pyproject.toml")
# What a jail's root may hold whatever the host: system dirs and toolgym's mount points.
SYSTEM_ROOT = {"bin", "dev", "lib", "lib32", "lib64", "libx32", "proc", "sbin", "tmp", "usr", "workspace", "ws"}


def jail_spec(config: SandboxConfig) -> dict:
    """The worker spec the launch plan passes to bwrap (what a code jail's root is built from)."""
    return plan_worker(config).worker_spec


def expected_root_entries(config: SandboxConfig) -> set[str]:
    """Top-level names the jail may show: the fixed system set plus the first component of every
    read-only bind the launch plan makes (the Python install lives wherever the host put it,
    e.g. /root/.pyenv here), so the check follows the real plan."""
    binds = jail_spec(config)["jail_binds"]
    return SYSTEM_ROOT | {Path(b).parts[1] for b in binds if len(Path(b).parts) > 1}


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    os.environ["TOOLGYM_TEST_SECRET"] = SECRET  # the server's environment must not reach the sandbox
    secret_file = tmp_path_factory.mktemp("host") / "secret.txt"
    secret_file.write_text(SECRET)
    p = WorkerPool(SandboxConfig(workers=2))
    p.secret_file = str(secret_file)  # type: ignore[attr-defined]
    yield p
    p.close()
    os.environ.pop("TOOLGYM_TEST_SECRET", None)


@pytest.fixture()
def sid(pool):
    s = pool.open_session("python", {})
    yield s
    pool.close_session(s)


def run(pool, sid, code, **limits):
    return pool.call(sid, "python", {"code": code}, limits=limits or None)


def assert_pool_healthy(pool, sid):
    r = run(pool, sid, "print(sum(range(10)))")
    assert r.ok and r.output == "45\n", r
    st = pool.stats()
    assert st["workers_alive"] == 2
    assert st["worker_deaths"] == 0, "hostile code must not take a worker down"


def test_benign_code_runs_and_files_persist_in_session(pool, sid):
    r = run(pool, sid, "import json, re\nd = json.loads('{\"a\": [1, 2, 3]}')\nprint(sum(d['a']), re.findall(r'\\d+', 'x12y345'))")
    assert r.ok and r.output == "6 ['12', '345']\n" and r.error is None and not r.timed_out
    assert run(pool, sid, "2 ** 10").output == "1024\n"  # a final bare expression is echoed
    w = run(pool, sid, "with open('notes.txt', 'w') as f:\n    f.write('hello')\nimport os\nprint(os.getcwd())")
    assert w.ok and w.output == "/workspace\n"
    r = run(pool, sid, "print(open('notes.txt').read())")
    assert r.ok and r.output == "hello\n"
    assert pool.state(sid)["files"] == {"notes.txt": 5}


def test_exception_is_reported_with_traceback(pool, sid):
    r = run(pool, sid, "print('before')\n{}['missing']")
    assert not r.ok and r.output == "before\n"
    assert "KeyError: 'missing'" in r.error and 'File "<python>", line 2' in r.error


def test_interpreter_state_is_fresh_per_call(pool, sid):
    assert run(pool, sid, "import math\nmath.pi = 3\nleaked = 1").ok
    r = run(pool, sid, "import math\nprint(math.pi > 3.1)\nprint(leaked)")
    assert r.output == "True\n" and "NameError" in r.error


def test_no_network(pool, sid):
    code = (
        "import socket\n"
        "for addr in [('1.1.1.1', 80), ('8.8.8.8', 53), ('10.0.0.1', 22)]:\n"
        "    s = socket.socket(); s.settimeout(1)\n"
        "    try:\n"
        "        s.connect(addr); print('CONNECTED', addr)\n"
        "    except OSError as e:\n"
        "        print('refused', e.errno)\n"
        "try:\n"
        "    socket.getaddrinfo('example.com', 80); print('RESOLVED')\n"
        "except OSError:\n"
        "    print('no dns')\n"
        "print([n for _, n in socket.if_nameindex()])"
    )
    r = run(pool, sid, code)
    assert r.ok, r
    assert "CONNECTED" not in r.output and "RESOLVED" not in r.output
    assert r.output.count("refused") == 3 and "no dns" in r.output
    assert r.output.strip().endswith("['lo']")


def test_host_filesystem_and_secrets_are_invisible(pool, sid):
    code = f"""
import os, glob
seen = []
for p in ['/etc/passwd', '/etc/shadow', {pool.secret_file!r}, '/root/.bashrc', {REPO_FILE!r}]:
    seen.append((p, os.path.exists(p)))
print(seen)
print(sorted(os.listdir('/')))
env_blobs = [open(f).read() for f in glob.glob('/proc/*/environ')]
print('SECRET' if any({SECRET!r} in b for b in env_blobs) or {SECRET!r} in str(os.environ) else 'clean')
print(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))
print(os.path.exists('/ws'), [l.split()[4] for l in open('/proc/self/mountinfo') if l.split(' - ')[1].split()[0] == 'tmpfs'])
"""
    r = run(pool, sid, code)
    assert r.ok, r.error
    lines = r.output.splitlines()
    assert all(not exists for _, exists in eval(lines[0])), lines[0]
    root = set(eval(lines[1]))
    assert root <= expected_root_entries(pool.config), sorted(root - expected_root_entries(pool.config))
    assert "etc" not in eval(lines[1])
    assert lines[2] == "clean"
    assert eval(lines[3]) == [1], "only the call's own process is visible"
    exists, tmpfs_mounts = lines[4].split(" ", 1)
    assert exists == "False", "other sessions' workspaces must be hidden"
    # the empty mounts over installed packages (see the ground-truth test) aside, only these are tmpfs
    hidden = set(jail_spec(pool.config)["jail_hide"])
    assert sorted(m for m in eval(tmpfs_mounts) if m not in hidden) == ["/", "/dev", "/dev/shm", "/tmp", "/workspace"], tmpfs_mounts


def test_ground_truth_and_installed_packages_are_unreadable(pool, sid):
    """Model code must not read what it is scored against: BFCL's answers ship in the bfcl_eval
    package, toolgym's own tasks in env/data. Only the stdlib is visible to a code jail."""
    import site
    import sys

    import bfcl_eval

    import toolgym.env

    env_dir = os.path.dirname(os.path.abspath(toolgym.env.__file__))
    paths = [os.path.dirname(os.path.abspath(bfcl_eval.__file__)), env_dir, os.path.join(env_dir, "data", "python_tasks.jsonl"),
             *site.getsitepackages(), *site.getsitepackages([sys.base_prefix])]  # the venv's and its base's
    code = f"""
import os, importlib.util
for p in {paths!r}:
    print(p, os.path.isfile(p) or (os.path.isdir(p) and bool(os.listdir(p))))
print([m for m in ('bfcl_eval', 'numpy', 'grpc', 'gymnasium') if importlib.util.find_spec(m)])
import json, sqlite3, statistics, decimal  # the stdlib, C extensions included, stays usable
print(statistics.mean([1, 2, 4]))
"""
    r = run(pool, sid, code)
    assert r.ok, r.error
    lines = r.output.splitlines()
    assert all(line.endswith(" False") for line in lines[:len(paths)]), lines
    assert lines[len(paths)] == "[]" and lines[-1] == "2.3333333333333335"


def test_writes_outside_workspace_fail(pool, sid):
    import sysconfig

    targets = ["/x", "/usr/x", "/dev/x", "/proc/x", sysconfig.get_paths()["purelib"] + "/x", os.path.dirname(os.__file__) + "/x", "/ws/x", "/bin/x"]
    code = f"""
res = []
for t in {targets!r}:
    try:
        open(t, 'w').write('x'); res.append('WROTE ' + t)
    except OSError as e:
        res.append(e.errno)
print(res)
"""
    r = run(pool, sid, code)
    assert r.ok and "WROTE" not in r.output, r.output


def test_sessions_cannot_see_each_other():
    with WorkerPool(SandboxConfig(workers=1)) as pool:  # both sessions on the same worker
        a, b = pool.open_session("python", {}), pool.open_session("python", {})
        assert run(pool, a, "open('secret-a.txt', 'w').write('A')").ok
        code = "import os\nprint(os.listdir('.'), os.path.exists('/ws'), os.listdir('/tmp'))\nprint([p for p in os.listdir('/proc') if p.isdigit()])\nprint(sum('/workspace' in l for l in open('/proc/self/mountinfo')))"
        r = run(pool, b, code)
        # /tmp is private and empty, except for the read-only parents of a jail bind (the Python
        # install) that itself lives under /tmp: the interpreter's files, not a session's.
        code_under_tmp = sorted({p.split("/")[2] for p in jail_spec(pool.config)["jail_binds"] if p.startswith("/tmp/")})
        assert r.ok and r.output == f"[] False {code_under_tmp}\n['1']\n1\n", r
        assert pool.state(b)["files"] == {} and "secret-a.txt" in pool.state(a)["files"]
        pool.close_session(a)
        c = pool.open_session("python", {})
        assert run(pool, c, "import os; print(os.listdir('.'))").output == "[]\n"


def test_environment_is_minimal(pool, sid):
    r = run(pool, sid, "import os, json; print(json.dumps(dict(os.environ)))")
    env = json.loads(r.output)
    assert "TOOLGYM_TEST_SECRET" not in env and SECRET not in r.output
    assert env["HOME"] == "/workspace" and set(env) <= {"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "PYTHONIOENCODING", "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"}


def test_privileges_are_dropped(pool, sid):
    code = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
status = {l.split(':')[0]: l.split(':')[1].strip() for l in open('/proc/self/status')}
print(os.getuid() != 0, status['CapEff'], status['CapBnd'], status['NoNewPrivs'])
print(libc.umount2(b'/tmp', 2), libc.unshare(0x10000000), libc.unshare(0x00020000))
os.mkdir('jail')
try:
    os.chroot('jail')  # the classic chroot escape needs CAP_SYS_CHROOT
    print('CHROOTED')
except PermissionError:
    print('no chroot')
print(sorted(os.listdir('/proc/self/fd')))
"""
    r = run(pool, sid, code)
    assert r.ok, r.error
    assert r.output.splitlines() == ["True 0000000000000000 0000000000000000 1", "-1 -1 -1", "no chroot", "['0', '1', '2', '3', '4']"]


def test_seccomp_refuses_kernel_attack_surface(pool, sid):
    if not pool.stats()["seccomp"]:
        pytest.skip("libseccomp is not installed here: no seccomp filter (namespaces still apply)")
    import platform

    numbers = {
        "x86_64": {"ptrace": 101, "keyctl": 250, "bpf": 321, "userfaultfd": 323},
        "aarch64": {"ptrace": 117, "keyctl": 219, "bpf": 280, "userfaultfd": 282},
    }.get(platform.machine())
    if numbers is None:
        pytest.skip(f"no syscall numbers for {platform.machine()}")
    code = f"""
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
res = []
for name, nr in {numbers!r}.items():
    ctypes.set_errno(0)
    res.append((name, libc.syscall(nr, 0, 0, 0, 0, 0), ctypes.get_errno()))
print(res)
"""
    r = run(pool, sid, code)
    assert r.ok, r.error
    assert all(ret == -1 and err == 1 for _, ret, err in eval(r.output)), r.output  # EPERM


def test_fork_bomb_is_contained(pool, sid):
    r = run(pool, sid, "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass", wall_s=1.0)
    assert r.timed_out and not r.ok and "wall-time" in r.error, r
    r = run(pool, sid, "import os\nn = 0\ntry:\n    for _ in range(100):\n        if os.fork() == 0:\n            import time; time.sleep(5); os._exit(0)\n        n += 1\nexcept OSError as e:\n    print('limited at', n, e.errno)")
    assert r.ok and r.output.startswith("limited at ") and int(r.output.split()[2]) < 16, r
    assert_pool_healthy(pool, sid)


def test_memory_bomb_is_contained(pool, sid):
    r = run(pool, sid, "chunks = []\nwhile True:\n    chunks.append(bytearray(16 << 20))", memory_bytes=128 << 20, wall_s=5.0)
    assert not r.ok and "MemoryError" in r.error and not r.timed_out
    r = run(pool, sid, "x = bytearray(10 ** 10)")
    assert "MemoryError" in r.error
    assert_pool_healthy(pool, sid)


def test_cpu_loop_hits_cpu_limit(pool, sid):
    # Behaviour, not timing: the CPU limit (1 s) is what ends it, never the far wall limit (10 s).
    r = run(pool, sid, "while True:\n    pass", cpu_s=1.0, wall_s=10.0)
    assert r.timed_out and not r.ok and "CPU" in r.error, r
    assert_pool_healthy(pool, sid)


def test_wall_time_limit_kills_sleepers(pool, sid):
    r = run(pool, sid, "print('start', flush=True)\nimport time\ntime.sleep(30)", wall_s=0.5)
    assert r.timed_out and r.output == "start\n" and "wall-time" in r.error, r  # cut, not the 30 s sleep waited out


def test_output_flood_is_truncated(pool, sid):
    r = run(pool, sid, "while True:\n    print('x' * 1000)", output_bytes=4096)
    assert r.truncated and not r.ok and "output limit" in r.error
    assert r.output.startswith("x" * 1000) and len(r.output.encode()) < 4096 + 100
    r = run(pool, sid, "print('y' * 10000)", output_bytes=100)
    assert r.ok and r.truncated and r.output.startswith("y" * 100) and "[output truncated" in r.output


def test_killing_parent_and_everything_else_fails(pool, sid):
    before = pool.stats()["worker_pids"]
    code = """
import os, signal
print(os.getppid())
for target in [os.getppid(), -1, 0, 1, 2, 3]:
    try:
        os.kill(target, signal.SIGKILL)
    except OSError as e:
        pass
print('still here')
"""
    r = run(pool, sid, code)
    assert r.ok and r.output == "0\nstill here\n", r
    assert pool.stats()["worker_pids"] == before
    assert_pool_healthy(pool, sid)


def test_huge_files_are_refused(pool, sid):
    r = run(pool, sid, "open('big.bin', 'wb').write(b'x' * (64 << 20))", file_bytes=8 << 20)
    assert not r.ok and "File too large" in r.error
    r = run(pool, sid, "import os\nprint(os.path.getsize('big.bin'))")
    assert r.output == str(8 << 20) + "\n"


def test_background_processes_die_with_the_call(pool, sid):
    code = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(0.5)\n    open('late.txt', 'w').write('x')\n    os._exit(0)\nprint('parent done')"
    r = run(pool, sid, code)
    assert r.ok and r.output == "parent done\n"
    time.sleep(1.0)
    assert run(pool, sid, "import os; print(os.path.exists('late.txt'))").output == "False\n"
