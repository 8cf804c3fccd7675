"""The ``python`` toolset: runs model-written Python code, one fresh jailed process per call.

Tool ``python``, arguments ``{"code": str}``. The result text is everything the code wrote
to stdout and stderr (interleaved as written); if the last statement is a bare expression its
``repr`` is printed, like a REPL. An uncaught exception makes the call fail with the
traceback as the error (output written before it is kept).

Semantics (documented for agents and task authors):

- **Fresh interpreter state per call**: every call runs in a new jailed process forked from the
  session's own process, itself forked from a clean zygote; variables, imports and
  monkey-patches do not carry over between calls, let alone between sessions.
- **Files persist within a session**: the working directory (``/workspace``, also ``$HOME``
  and first on ``sys.path``) is the session's private workspace; files written there are
  visible to the session's later calls. A new session starts with an empty workspace; other
  sessions' workspaces are not visible. ``/tmp`` is a fresh, empty tmpfs on every call.
- **No network**, no host filesystem (only read-only system/Python files), no way to see
  or signal other processes; limits per call: wall time, CPU, memory, output size, open
  files, processes, file size (see :class:`toolgym.env.sandbox.SandboxLimits`).
- ``PYTHONHASHSEED=0``: set and dict-of-str ordering is reproducible, so a session can be
  rebuilt by replaying its calls after a worker crash.

This class only runs inside a sandbox session process (it needs the jail runner).
"""

from __future__ import annotations

import os
from typing import Any

from toolgym.env.tools.registry import ToolError, register

TOOL_NAME = "python"

TOOL_SPEC = {
    "name": TOOL_NAME,
    "description": (
        "Run Python 3 code in a sandbox and return what it prints (stdout and stderr). The value of a final bare "
        "expression is printed too. Each call starts a fresh interpreter; files written to the working directory "
        "persist between calls of the same episode. No network access."
    ),
    "parameters": {
        "type": "object",
        "properties": {"code": {"type": "string", "description": "the Python source to run"}},
        "required": ["code"],
    },
}


@register("python")
class PythonToolset:
    """Serves the ``python`` tool for one session (see the module docstring)."""

    isolated_calls = True  # each call runs in its own jail; the worker enforces its wall time

    def __init__(self, config: dict, workspace: str) -> None:
        self.config = dict(config or {})
        self.workspace = workspace
        self.calls = 0

    def names(self) -> list[str]:
        return [TOOL_NAME]

    def call_limited(self, name: str, args: dict, limits: dict[str, Any]) -> dict[str, Any]:
        if name != TOOL_NAME:
            return {"ok": False, "output": "", "error": f"unknown tool {name!r}", "timed_out": False, "truncated": False}
        code = args.get("code")
        extra = set(args) - {"code"}
        if not isinstance(code, str):
            return {"ok": False, "output": "", "error": "argument 'code' (a string) is required", "timed_out": False, "truncated": False}
        if extra:
            return {"ok": False, "output": "", "error": f"unexpected argument(s): {', '.join(sorted(extra))}", "timed_out": False, "truncated": False}
        from toolgym.env.sandbox import jail

        self.calls += 1
        return jail.run_code(code, self.workspace, limits)

    def call(self, name: str, args: dict) -> str:
        from toolgym.env.sandbox.config import SandboxLimits

        res = self.call_limited(name, args, SandboxLimits().to_dict())
        if not res.get("ok"):
            raise ToolError(res.get("error") or "failed")
        return str(res.get("output", ""))

    def state(self) -> dict:
        """Files in the workspace (relative path -> size), at most 1000 entries."""
        files: dict[str, int] = {}
        for root, dirs, fnames in os.walk(self.workspace):
            dirs.sort()
            for f in sorted(fnames):
                p = os.path.join(root, f)
                try:
                    files[os.path.relpath(p, self.workspace)] = os.lstat(p).st_size
                except OSError:
                    continue
                if len(files) >= 1000:
                    return {"calls": self.calls, "files": files, "files_truncated": True}
        return {"calls": self.calls, "files": files}
