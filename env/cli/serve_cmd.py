"""`toolgym serve`: run the gRPC server on a task suite (BFCL by default).

Every :class:`ServerConfig` field is a flag (``max_sessions`` → ``--max-sessions``). Security
flags: ``--tls-cert/--tls-key`` (TLS), ``--tls-client-ca`` (mTLS), ``--auth-token-file`` or
``$TOOLGYM_AUTH_TOKEN`` (bearer tokens); a non-loopback ``--host`` needs TLS and a token unless
``--allow-insecure-remote``. Misconfiguration exits with status 2 and a message naming the flag.

Sessions: ``--session-store memory|sqlite:///PATH.db|redis://HOST:PORT/DB`` (toolgym.env.sessions);
a store that cannot be opened at start (corrupt, locked or in-use file, unreachable Redis) is the
same one-line error and exit 2.
"""

from __future__ import annotations

import argparse
import dataclasses

from toolgym.env.server.app import ServerConfig, serve

_SKIP = ("reward", "categories", "enable_env")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the gRPC server (RewardService, EnvService, EvalService, health, reflection)",
                       description="Serve toolgym over gRPC. Binds loopback by default.")
    d = ServerConfig()
    for f in dataclasses.fields(ServerConfig):
        if f.name in _SKIP:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = getattr(d, f.name)
        if isinstance(default, bool):
            p.add_argument(flag, action="store_true", default=default, help=f.metadata.get("help", ""))
        else:
            p.add_argument(flag, type=type(default), default=default, help=f.metadata.get("help", ""))
    p.add_argument("--categories", nargs="*", default=[], help=ServerConfig.__dataclass_fields__["categories"].metadata["help"])
    p.add_argument("--no-env", action="store_true", help="serve scoring only (no EnvService, no sandbox)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Start-up mistakes (a bad flag, suite name or task file, TLS/token file, a port in use) raise
    # ValueError/OSError: the `toolgym` entry point turns them into one line and exit status 2.
    kw = {f.name: getattr(args, f.name) for f in dataclasses.fields(ServerConfig) if hasattr(args, f.name) and f.name not in _SKIP}
    cfg = ServerConfig(**kw, categories=tuple(args.categories), enable_env=not args.no_env)
    return serve(cfg)
