"""The BFCL / toolgym-suite half of ``toolgym eval run``: play episodes on the env's gRPC API, score, summarise.

Episodes run in lockstep batches of ``batch_size``: every live episode's next turn goes into one ``generate``
call (a real local model on CPU is ~10x faster per token batched than one prompt at a time), the server's
observation is appended as the next user turn, and an episode leaves the batch when the server terminates or
truncates it. So multi-turn categories are played, not replayed: each turn the model sees what its previous
call returned.

:func:`summarize_bfcl` gives what ``--json`` prints: overall and per-category means of the total and of every
reward component, the rate at which each penalty fired (penalty value < 0), and the valid rate.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolgym.env.reward.config import PENALTIES
from toolgym.evals.generators import Generator, Messages

if TYPE_CHECKING:
    from toolgym.evals.run_folder import RunConfig

__all__ = ["play_episodes", "summarize_bfcl", "run_bfcl", "json_summary"]


def _parse_calls(text: str, template: str | None) -> list[dict]:
    try:
        from toolgym.env.parsers import parse
    except Exception:  # pragma: no cover - env not installed
        return []
    try:
        pa = parse(text, template)
    except Exception:  # a hostile/garbled action only loses its "calls" listing; the server scored it anyway
        return []
    return [{"name": c.name, "arguments": c.arguments} for c in pa.calls]


class _Live:
    """One episode in flight."""

    def __init__(self, task: Any, reset: Any, template: str | None):
        info = reset.info or {}
        self.task = task
        self.session = reset.session_id
        self.template = info.get("template") or template
        sys_prompt, user_prompt = info.get("system_prompt"), info.get("user_prompt")
        if sys_prompt is not None and user_prompt is not None:
            self.messages: Messages = [{"role": "system", "content": sys_prompt}, {"role": "user", "content": user_prompt}]
        else:
            self.messages = [{"role": "user", "content": reset.observation}]
        self.actions: list[str] = []
        self.final: Any = None
        self.error = ""


def _record(ep: _Live, cfg: RunConfig) -> dict:
    rec: dict[str, Any] = {"id": ep.task.id, "category": ep.task.category, "kind": ep.task.kind,
                           "template": ep.template, "actions": ep.actions, "turns": len(ep.actions),
                           "calls": [c for a in ep.actions for c in _parse_calls(a, ep.template)]}
    final = ep.final
    sc = getattr(final, "score", None) if final is not None else None
    if sc is not None:
        rec.update(total=sc.total, components=dict(sc.components), penalties=dict(sc.penalties), valid=sc.valid,
                   feedback=sc.feedback)
    elif final is not None:
        fi = final.info or {}
        rec.update(total=fi.get("total", final.reward), components=fi.get("components", {}),
                   penalties=fi.get("penalties", {}), valid=fi.get("valid", True), feedback=fi.get("feedback", ""))
    else:
        rec.update(total=0.0, components={}, penalties={}, valid=False,
                   feedback=ep.error or f"episode did not end within {cfg.max_steps} steps")
    return rec


def play_episodes(client: Any, tasks: Sequence[Any], templates: Sequence[str | None], gen: Generator,
                  cfg: RunConfig) -> list[dict]:
    """Play ``tasks`` (one episode each, ``templates`` cycled) in lockstep; returns one record per task, in order."""
    eps: list[_Live] = []
    try:
        for i, t in enumerate(tasks):
            tpl = templates[i % len(templates)]
            eps.append(_Live(t, client.reset(t.id, template=tpl, max_steps=cfg.max_steps), tpl))
        for step in range(max(1, cfg.max_steps)):
            live = [e for e in eps if e.final is None and not e.error]
            if not live:
                break
            texts = gen.generate([e.messages for e in live])
            if len(texts) != len(live):
                raise RuntimeError(f"generator {gen.name!r} returned {len(texts)} texts for {len(live)} prompts")
            for e, text in zip(live, texts):
                e.actions.append(text)
                try:
                    s = client.step(e.session, text, step_index=step)
                except Exception as exc:  # one failed step ends that episode only, with the reason recorded
                    e.error = f"step {step} failed: {exc}"
                    continue
                e.messages = e.messages + [{"role": "assistant", "content": text},
                                           {"role": "user", "content": s.observation}]
                if s.terminated or s.truncated:
                    e.final = s
    finally:
        for e in eps:
            try:
                client.close_session(e.session)
            except Exception:  # closing is best-effort: the server reaps idle sessions itself
                pass
    return [_record(e, cfg) for e in eps]


def _agg(rs: list[dict]) -> dict:
    n = len(rs)
    comps: dict[str, float] = {}
    # Every penalty kind is reported, 0.0 when it never fired: a missing key would read as "not measured".
    pens: dict[str, int] = dict.fromkeys(PENALTIES, 0)
    for r in rs:
        for k, v in (r.get("components") or {}).items():
            comps[k] = comps.get(k, 0.0) + float(v)
        for k, v in (r.get("penalties") or {}).items():
            pens.setdefault(k, 0)
            if float(v) < 0:
                pens[k] += 1
    return {
        "n": n,
        "mean_total": (sum(float(r.get("total", 0.0)) for r in rs) / n) if n else None,
        "valid_rate": (sum(1 for r in rs if r.get("valid")) / n) if n else None,
        "components": {k: v / n for k, v in sorted(comps.items())},
        "penalty_rates": {k: v / n for k, v in sorted(pens.items())},
        "mean_turns": (sum(int(r.get("turns") or len(r.get("actions") or [])) for r in rs) / n) if n else None,
    }


def summarize_bfcl(records: list[dict]) -> dict:
    per: dict[str, list[dict]] = {}
    for r in records:
        per.setdefault(r.get("category") or "?", []).append(r)
    s = _agg(records)
    s["per_category"] = {c: _agg(rs) for c, rs in sorted(per.items())}
    return s


def json_summary(summary: dict) -> dict:
    """What ``eval run --json`` prints for a bfcl run: flat means first (``task_completion`` etc. at top level),
    then the nested per-component / per-category detail."""
    out: dict[str, Any] = {"kind": "bfcl", "n": summary["n"], "mean_total": summary["mean_total"],
                           "valid_rate": summary["valid_rate"]}
    out.update(summary.get("components") or {})
    out["components"] = summary.get("components") or {}
    out["penalty_rates"] = summary.get("penalty_rates") or {}
    out["mean_turns"] = summary.get("mean_turns")
    out["per_category"] = {c: {k: v for k, v in a.items()} for c, a in (summary.get("per_category") or {}).items()}
    return out


def run_bfcl(cfg: RunConfig, gen_factory: Callable[[], Generator], out: Path, client: Any = None) -> dict:
    from toolgym.evals.report import write_report
    from toolgym.evals.run_folder import _progress, _truncate_partial_tail, read_predictions_file

    suite = cfg.suite
    cats = list(cfg.categories)
    if ":" in suite:
        suite, rest = suite.split(":", 1)
        cats += [c for c in rest.split(",") if c]
    server = None
    own_client = client is None
    if client is None:
        from toolgym.env.client import ToolgymClient

        address = cfg.server
        if not address:
            from toolgym.env.server.app import ServerConfig, start_server

            server = start_server(ServerConfig(host="127.0.0.1", port=0, suite=suite, categories=tuple(cats)))
            address = server.address
        client = ToolgymClient(address, timeout=cfg.timeout)
    try:
        tasks = client.list_tasks(categories=cats or None, limit=cfg.limit or 0)
        pred_path = out / "predictions.jsonl"
        _truncate_partial_tail(pred_path)
        done = {str(p["id"]) for p in read_predictions_file(pred_path)}
        todo = [t for t in tasks if str(t.id) not in done]
        templates = list(cfg.templates) or [None]
        if todo:
            gen = gen_factory()
            bs = max(1, cfg.batch_size)
            bar = _progress(range(len(todo)), len(todo), cfg.progress, "episodes")
            ticks = iter(bar)
            with pred_path.open("a", encoding="utf-8") as f:
                for i in range(0, len(todo), bs):
                    chunk = todo[i: i + bs]
                    # template cycling keeps the global index, so a resumed run draws what a whole run would
                    tpls = [templates[(i + j) % len(templates)] for j in range(len(chunk))]
                    for rec in play_episodes(client, chunk, tpls, gen, cfg):
                        f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                        next(ticks, None)
                    f.flush()
            if hasattr(bar, "close"):
                bar.close()
            gen.close()
        records = read_predictions_file(pred_path)
    finally:
        if own_client:
            client.close()
        if server is not None:
            server.stop(grace=1.0)
    summary = summarize_bfcl(records)
    data = {"kind": "bfcl", "name": cfg.name or out.name, "suite": cfg.suite, "model": cfg.model,
            "summary": summary, "items": records}
    (out / "scores.json").write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    write_report(data, out, title=f"toolgym reward — {data['name']}")
    return json_summary(summary)
