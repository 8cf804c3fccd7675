"""``toolgym tools call NAME --args JSON|-``: run one tool call in the sandbox.

It takes exactly the path every env step takes: start a worker pool (one worker), open a
session of the toolset, call, close. So it is also the way to check the sandbox by hand::

    toolgym tools call python --args '{"code": "print(6*7)"}'
    echo '{"code": "import socket; socket.create_connection((\\"1.1.1.1\\", 80))"}' | toolgym tools call python --args - --json

Exit status: 0 the call succeeded; 1 the tool failed (non-JSON mode: output on stdout, the
error on stderr); 2 bad command-line input (e.g. ``--args`` is not a JSON object); 3 the
sandbox could not run. With ``--json`` exactly one line ``{"ok": bool, "output": str,
"error": str|null}`` is printed and the status is 0 whenever the call ran, ok or not (the
outcome is in the JSON), 2 or 3 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from typing import Any

DEFAULT_KINDS = {"python": "python"}


def _limit_fields() -> list[tuple[str, type, str]]:
    from toolgym.env.sandbox.config import SandboxLimits

    return [(f.name, float if f.name.endswith("_s") else int, f.metadata.get("help", "")) for f in fields(SandboxLimits)]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("tools", help="run tool calls in the sandbox; list, show and search the tool catalogue",
                              description="Run tool calls in the sandbox; list, show and search the tool catalogue.")
    sub = p.add_subparsers(dest="tools_command", metavar="ACTION")
    sub.required = True
    c = sub.add_parser(
        "call",
        help="run one tool call through the sandbox worker pool",
        description=(
            "Run one tool call the way every env step runs it: start a sandbox worker pool (one worker), open a "
            "session of the toolset, call, close. Exit status: 0 ok; 1 the tool failed; 2 bad input; 3 the sandbox "
            "could not run. With --json the status is 0 whenever the call ran (its outcome is in the JSON)."
        ),
        epilog="""example: toolgym tools call python --args '{"code": "print(6*7)"}' --json""",
    )
    c.add_argument("name", help="tool name, e.g. python")
    c.add_argument("--args", dest="tool_args", default="{}", metavar="JSON|-", help="arguments as a JSON object, or - to read them from stdin (default: {})")
    c.add_argument("--kind", default=None, help="toolset kind serving the tool (default: python for the python tool)")
    c.add_argument("--config", default="{}", metavar="JSON", help="toolset config as a JSON object (default: {})")
    c.add_argument("--json", action="store_true", help='print exactly one line {"ok": bool, "output": str, "error": str|null}')
    for name, typ, help_text in _limit_fields():
        metavar = "SECONDS" if typ is float else ("BYTES" if name.endswith("_bytes") else "N")
        c.add_argument("--" + name.replace("_", "-"), dest="limit_" + name, type=typ, default=None, metavar=metavar, help=help_text)
    c.set_defaults(func=run)
    from toolgym.env.cli import tools_search_cmd

    tools_search_cmd.add_parsers(sub)  # list | show | search: the tool catalogue and its retrievers
    p.set_defaults(func=run)
    return p


def _usage_error(msg: str) -> int:
    print(f"toolgym tools call: {msg}", file=sys.stderr)
    return 2


def _json_object(text: str, what: str, example: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{what} is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}); expected a JSON object such as {example}") from None
    except RecursionError:
        raise ValueError(f"{what} is nested too deeply to decode; expected a JSON object such as {example}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a JSON object, got {type(value).__name__}; e.g. {example}")
    return value


def run(args: argparse.Namespace) -> int:
    if getattr(args, "tools_command", None) != "call":
        return _usage_error("expected an action: call, list, show or search")
    from toolgym.env.sandbox import SandboxConfig, SandboxError, SandboxLimits, WorkerPool
    from toolgym.env.tools.registry import known_kinds

    raw = sys.stdin.read() if args.tool_args == "-" else args.tool_args
    try:
        tool_args = _json_object(raw, "--args" if args.tool_args != "-" else "the arguments read from stdin", """'{"code": "print(1)"}'""")
        config = _json_object(args.config, "--config", "'{}'")
        overrides = {n: getattr(args, "limit_" + n) for n, _, _ in _limit_fields() if getattr(args, "limit_" + n) is not None}
        limits = SandboxLimits.from_dict({**SandboxLimits().to_dict(), **overrides})
    except ValueError as e:
        return _usage_error(str(e))
    kind = args.kind or DEFAULT_KINDS.get(args.name)
    if kind is None:
        return _usage_error(f"--kind is required for tool {args.name!r} (known kinds: {', '.join(known_kinds())})")
    if kind not in known_kinds():
        return _usage_error(f"unknown --kind {kind!r} (known kinds: {', '.join(known_kinds())})")

    try:
        with WorkerPool(SandboxConfig(workers=1, limits=limits)) as pool:
            sid = pool.open_session(kind, config)
            try:
                result = pool.call(sid, args.name, tool_args)
            finally:
                pool.close_session(sid)
    except SandboxError as e:
        if args.json:
            print(json.dumps({"ok": False, "output": "", "error": f"sandbox error: {e}"}, ensure_ascii=False))
        print(f"toolgym tools call: sandbox error: {e}", file=sys.stderr)
        return 3
    if args.json:
        print(json.dumps({"ok": result.ok, "output": result.output, "error": result.error}, ensure_ascii=False))
        return 0
    if result.output:
        sys.stdout.write(result.output if result.output.endswith("\n") else result.output + "\n")
        sys.stdout.flush()
    if result.error:
        sys.stderr.write(result.error if result.error.endswith("\n") else result.error + "\n")
    return 0 if result.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="toolgym")
    add_parser(parser.add_subparsers(dest="command", required=True))
    ns = parser.parse_args(["tools", *(sys.argv[1:] if argv is None else argv)])
    return int(ns.func(ns) or 0)


if __name__ == "__main__":
    sys.exit(main())
