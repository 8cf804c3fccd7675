"""The ``toolgym`` command: serve, tasks, score, tools, eval, train, rollouts, bench."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, Sequence


def _add_serve(sub: argparse._SubParsersAction) -> None:
    from toolgym.env.cli import serve_cmd

    serve_cmd.add_parser(sub)


def _add_tasks(sub: argparse._SubParsersAction) -> None:
    from toolgym.env.cli import tasks_cmd

    tasks_cmd.add_parser(sub)


def _add_score(sub: argparse._SubParsersAction) -> None:
    from toolgym.env.cli import score_cmd

    score_cmd.add_parser(sub)


def _add_tools(sub: argparse._SubParsersAction) -> None:
    from toolgym.env.cli import tools_cmd

    tools_cmd.add_parser(sub)


def _add_eval(sub: argparse._SubParsersAction) -> None:
    from toolgym.evals import cli as eval_cli

    eval_cli.add_parser(sub)


def _add_train(sub: argparse._SubParsersAction) -> None:
    from toolgym.trainer import cli as train_cli

    train_cli.add_parser(sub)


def _add_rollouts(sub: argparse._SubParsersAction) -> None:
    from toolgym.env.cli import rollouts_cmd

    rollouts_cmd.add_parser(sub)


_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_serve, _add_tasks, _add_score, _add_tools, _add_eval, _add_train,
                                                                   _add_rollouts]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="toolgym", description="Evaluation-and-reward server for tool-using LLM agents.")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="logging verbosity")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in _SUBCOMMANDS:
        add(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - sorted below: a user's mistake gets one line, a bug its traceback
        message = _user_error(e)
        if message is None or args.log_level == "DEBUG":
            raise
        print(f"toolgym {args.command}: error: {message}", file=sys.stderr)
        return 2


def _user_error(e: Exception) -> str | None:
    """The one-line message for an error the user can fix (bad input, missing file, a server that
    is down or refuses the call); None for anything else, which is a bug and keeps its traceback.
    ``--log-level DEBUG`` shows the traceback in every case."""
    import grpc

    if isinstance(e, grpc.RpcError) and hasattr(e, "code"):
        code, details = e.code(), e.details() or ""
        if code == grpc.StatusCode.UNAVAILABLE:
            return f"the server is unreachable ({details}); is `toolgym serve` running at that address?"
        return f"the server answered {code.name}: {details}"
    if isinstance(e, KeyError) and e.args and isinstance(e.args[0], str):
        return e.args[0]
    if isinstance(e, (ValueError, OSError)):
        return str(e)
    return None


if __name__ == "__main__":
    sys.exit(main())
