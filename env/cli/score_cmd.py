"""`toolgym score`: score offline model outputs, in-process or through a server.

Both paths run the same engine and write the same bytes: results are canonicalised (fixed
component/penalty order, JSON-normalised details) before they are written.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Iterator

from tqdm import tqdm

from toolgym.env.parsers import TEMPLATES

RESULT_KEYS = ("total", "components", "penalties", "valid", "feedback")


class InputError(ValueError):
    pass


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="score offline model outputs against tasks (BFCL-format or toolgym JSONL)",
                       description="Writes one result line per output line, in order, with the output's other fields passed through.")
    p.add_argument("--tasks", required=True, help="JSONL of tasks: BFCL records (id, category, question, function, ground_truth) or toolgym tasks")
    p.add_argument("--outputs", required=True, help='JSONL of {"id": task id, "output": raw model text, ...}')
    p.add_argument("--out", required=True, help="where to write the results JSONL ('-' for stdout)")
    p.add_argument("--format", choices=TEMPLATES, default=None, help="template of the outputs (default: auto-detect per output)")
    p.add_argument("--server", default=None, help="score through a toolgym server at HOST:PORT (ScoreBatch) instead of in-process")
    p.add_argument("--batch-size", type=int, default=512, help="items per ScoreBatch call with --server")
    p.set_defaults(func=run)


def _read_jsonl(path: str, what: str) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        fh = open(path, "rb")  # bytes: a line that is not UTF-8 is reported with its number
    except OSError as e:
        raise InputError(f"cannot read {what} file {path!r}: {e.strerror}") from None
    with fh:
        for n, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(f"{path}:{n}: not UTF-8 ({e.reason} at byte {e.start}); save the file as UTF-8") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise InputError(f"{path}:{n}: not valid JSON ({e}); each line must be one JSON object") from None
            except RecursionError:
                raise InputError(f"{path}:{n}: JSON nested too deeply to decode; each line must be one JSON object") from None
            if not isinstance(obj, dict):
                raise InputError(f"{path}:{n}: expected a JSON object, got {type(obj).__name__}")
            yield n, obj


def load_tasks(path: str) -> dict[str, Any]:
    from toolgym.env.tasks.jsonl import task_from_bfcl_record, task_from_dict

    tasks: dict[str, Any] = {}
    for n, d in _read_jsonl(path, "tasks"):
        try:
            t = task_from_bfcl_record(d) if "function" in d else task_from_dict(d)
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"{path}:{n}: not a valid task ({e})") from None
        tasks[t.id] = (t, d)
    return tasks


def _unscorable(message: str) -> Any:
    """A task the engine cannot score from one output (e.g. a stateful one): valid=false, said why."""
    from toolgym.env.reward.config import COMPONENTS
    from toolgym.env.reward.trajectory import ScoreResult

    return ScoreResult(total=0.0, components={k: 0.0 for k in COMPONENTS}, penalties={}, valid=False, feedback=message)


def _result_line(extra: dict[str, Any], r: Any) -> str:
    d = {k: v for k, v in extra.items() if k != "output"}
    d.update({k: getattr(r, k) for k in RESULT_KEYS})
    line = json.dumps(d, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (e.g. "\ud800" in the input): keep it as an escape
        line = json.dumps(d, ensure_ascii=True)
    return line


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except InputError as e:
        print(f"toolgym score: {e}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from toolgym.env.server.convert import canonical

    tasks = load_tasks(args.tasks)
    outputs = []
    for n, o in _read_jsonl(args.outputs, "outputs"):
        if "id" not in o or "output" not in o:
            raise InputError(f"{args.outputs}:{n}: each line needs 'id' (a task id) and 'output' (the raw model text)")
        if not isinstance(o["id"], str):
            raise InputError(f"{args.outputs}:{n}: 'id' must be a string task id, got {type(o['id']).__name__}")
        if o["id"] not in tasks:
            raise InputError(f"{args.outputs}:{n}: unknown task id {o['id']!r} (not in {args.tasks})")
        if not isinstance(o["output"], str):
            raise InputError(f"{args.outputs}:{n}: 'output' must be a string, got {type(o['output']).__name__}")
        outputs.append(o)
    out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8")
    bar = tqdm(total=len(outputs), unit="out", desc="scoring", disable=None, file=sys.stderr)
    try:
        if args.server:
            from toolgym.env.client import ScoreItemError, ToolgymClient

            if args.batch_size < 1:
                raise InputError(f"--batch-size must be >= 1, got {args.batch_size}")
            with ToolgymClient(args.server, timeout=600.0) as client:
                for i in range(0, len(outputs), args.batch_size):
                    chunk = outputs[i:i + args.batch_size]
                    items = [{"output": o["output"], "task": tasks[o["id"]][1], "template": args.format} for o in chunk]
                    for o, r in zip(chunk, client.score_batch(items, raise_on_error=False)):
                        if isinstance(r, ScoreItemError):
                            r = _unscorable(r.message)
                        out.write(_result_line(o, r) + "\n")
                    bar.update(len(chunk))
        else:
            from toolgym.env.reward.engine import ScoringError, score_output

            for o in outputs:
                try:
                    r = canonical(score_output(tasks[o["id"]][0], o["output"], args.format))
                except ScoringError as e:
                    r = _unscorable(str(e))
                out.write(_result_line(o, r) + "\n")
                bar.update(1)
    finally:
        bar.close()
        if out is not sys.stdout:
            out.close()
    return 0
