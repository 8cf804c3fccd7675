"""`toolgym serve`: run the gRPC server on a task suite (BFCL by default)."""

from __future__ import annotations

import argparse
import dataclasses

from toolgym.env.server.app import ServerConfig, serve


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the gRPC server (RewardService, EnvService, EvalService, health, reflection)",
                       description="Serve toolgym over gRPC. Binds loopback by default.")
    d = ServerConfig()
    for f in dataclasses.fields(ServerConfig):
        if f.name in ("reward", "categories", "enable_env"):
            continue
        flag = "--" + f.name.replace("_", "-")
        p.add_argument(flag, type=type(getattr(d, f.name)), default=getattr(d, f.name), help=f.metadata.get("help", ""))
    p.add_argument("--categories", nargs="*", default=[], help=ServerConfig.__dataclass_fields__["categories"].metadata["help"])
    p.add_argument("--no-env", action="store_true", help="serve scoring only (no EnvService, no sandbox)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    kw = {f.name: getattr(args, f.name) for f in dataclasses.fields(ServerConfig) if hasattr(args, f.name) and f.name not in ("reward", "categories", "enable_env")}
    cfg = ServerConfig(**kw, categories=tuple(args.categories), enable_env=not args.no_env)
    return serve(cfg)
