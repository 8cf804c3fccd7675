"""`toolgym score`: score offline model outputs, in-process or through a server.

Both paths run the same engine and write the same bytes: results are canonicalised (fixed
component/penalty order, UTF-8-safe feedback) before they are written.

``--jobs N`` scores in N worker processes (``concurrent.futures.ProcessPoolExecutor``): forked
where the platform can (before this command starts any thread, so the workers inherit the loaded
tasks instead of unpickling them), spawned elsewhere (the tasks then go to each worker once).
They score contiguous chunks of the outputs and the lines are written in input order,
byte-identical to ``--jobs 1``. ``--profile`` prints where the time went
(imports, tasks, outputs, worker start, scoring) to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Iterator

from toolgym.env.parsers import TEMPLATES

_T0 = time.perf_counter()  # this module is imported at CLI start-up: the import budget is measured from here

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
    p.add_argument("--jobs", type=int, default=1,
                   help="score in this many processes (in-process scoring only); results are identical to --jobs 1, in input order")
    p.add_argument("--profile", action="store_true", help="print the start-up budget and the time of each phase to stderr")
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


class _Profile:
    """Wall time per phase (``--profile``), printed as the start-up budget and the run."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.last = time.perf_counter()
        self.phases: list[tuple[str, float]] = [("python start-up and imports (to score_cmd)", self.last - _process_start())]

    def mark(self, label: str) -> None:
        now = time.perf_counter()
        self.phases.append((label, now - self.last))
        self.last = now

    def report(self, n: int) -> None:
        if not self.enabled:
            return
        total = sum(s for _, s in self.phases)
        print(f"toolgym score --profile: {n} outputs, {total:.3f} s", file=sys.stderr)
        for label, sec in self.phases:
            print(f"  {sec:8.3f} s  {label}", file=sys.stderr)


def _process_start() -> float:
    """perf_counter() at this process's start (from its CPU clock when /proc is not there)."""
    try:
        with open(f"/proc/{os.getpid()}/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return time.perf_counter() - (uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return _T0 - time.process_time()


def _ordered(d: dict[str, float], order: tuple[str, ...]) -> dict[str, float]:
    out = {k: d[k] for k in order if k in d}
    out.update({k: v for k, v in sorted(d.items()) if k not in out})
    return out


def _light_canonical(r: Any) -> Any:
    """``convert.canonical`` for what this command writes: the same fields, the same order, the same
    bytes; ``details`` are not written, so they are not JSON-normalised."""
    from toolgym.env.reward.config import COMPONENTS, PENALTIES
    from toolgym.env.reward.trajectory import ScoreResult
    from toolgym.env.types import utf8_safe

    return ScoreResult(total=r.total, components=_ordered(r.components, COMPONENTS), penalties=_ordered(r.penalties, PENALTIES),
                       valid=r.valid, feedback=utf8_safe(r.feedback))


def _score_line(task: Any, o: dict[str, Any], fmt: str | None) -> str:
    from toolgym.env.reward.engine import ScoringError, score_output

    try:
        r = _light_canonical(score_output(task, o["output"], fmt))
    except ScoringError as e:
        r = _unscorable(str(e))
    return _result_line(o, r)


# --------------------------------------------------------------------------- worker processes

_WORKER_TASKS: dict[str, Any] = {}


def _worker_init(tasks: dict[str, Any]) -> None:
    _WORKER_TASKS.clear()
    _WORKER_TASKS.update(tasks)


def _worker_chunk(chunk: list[dict[str, Any]], fmt: str | None) -> list[str]:
    return [_score_line(_WORKER_TASKS[o["id"]], o, fmt) for o in chunk]


def _mp_context() -> Any:
    import multiprocessing as mp

    # fork: the workers inherit the loaded tasks (unpickling thousands of tasks per worker costs
    # more than scoring them). The pool is forked before this command starts any thread (the
    # progress bar comes after), and nothing here holds a lock at that point. Elsewhere: spawn.
    return mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")


def _score_parallel(outputs: list[dict[str, Any]], tasks: dict[str, Any], fmt: str | None, jobs: int, ctx: Any) -> Iterator[list[str]]:
    """Start the workers now (before any thread), then yield each chunk's lines in input order."""
    from concurrent.futures import ProcessPoolExecutor

    used = {o["id"]: tasks[o["id"]][0] for o in outputs}
    import toolgym.env.reward.engine  # noqa: F401  (imported once here, not in each worker)

    if ctx.get_start_method() == "fork":
        _worker_init(used)  # inherited by the forked workers
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx)
    else:
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_worker_init, initargs=(used,))
    # contiguous chunks, a few per worker (load balance), large enough to amortise the messages
    size = max(32, min(2000, -(-len(outputs) // (jobs * 4))))
    chunks = [outputs[i:i + size] for i in range(0, len(outputs), size)]
    results = pool.map(_worker_chunk, chunks, [fmt] * len(chunks))  # all workers are forked here

    def lines() -> Iterator[list[str]]:
        with pool:
            yield from results
        _WORKER_TASKS.clear()

    return lines()


def _run(args: argparse.Namespace) -> int:
    prof = _Profile(args.profile)
    if args.jobs < 1:
        raise InputError(f"--jobs must be >= 1, got {args.jobs}")
    ctx = _mp_context() if args.jobs > 1 and not args.server else None
    tasks = load_tasks(args.tasks)
    prof.mark(f"load {len(tasks)} tasks")
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
    prof.mark(f"read {len(outputs)} outputs")
    parallel = _score_parallel(outputs, tasks, args.format, args.jobs, ctx) if ctx is not None and outputs else None
    if parallel is not None:
        prof.mark(f"start {args.jobs} worker processes ({ctx.get_start_method()})")
    from tqdm import tqdm

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
        elif parallel is not None:
            for lines in parallel:
                out.write("".join(line + "\n" for line in lines))
                bar.update(len(lines))
        else:
            write = out.write
            for o in outputs:
                write(_score_line(tasks[o["id"]][0], o, args.format) + "\n")
                bar.update(1)
        prof.mark(f"score and write {len(outputs)} outputs" + (f" (--jobs {args.jobs})" if parallel is not None else ""))
    finally:
        bar.close()
        if out is not sys.stdout:
            out.close()
    prof.report(len(outputs))
    return 0
