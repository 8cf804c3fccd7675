"""``toolgym eval run``: generate predictions with a model, score them, write everything to a run folder.

Backends (``--backend auto`` picks): a local ``transformers`` model (a folder), vLLM (only when importable and
a GPU is visible; imported lazily), or any OpenAI-compatible ``/v1/chat/completions`` endpoint (``--model``
is then an ``http(s)://`` URL; plain ``urllib``, no SDK).

Suites:

- ``kagentbench`` (``--data ITEMS.jsonl``): each item's own ``prompt_input`` is the prompt, one generation
  per template (``profile`` items: ``prompt_input["prompt"]``), exactly as KAgentBench's inference
  scripts do; predictions are ``{"id", "model_predict"}`` lines that ``toolgym eval kagentbench`` re-scores
  offline.
- ``bfcl`` / ``bfcl:<category>,...`` / any toolgym suite name: episodes through the env's gRPC API
  (``Reset`` renders the prompt with the env's templates, ``Step`` applies the model's action and the
  terminal step carries the toolgym reward). ``--server ADDR`` uses a running server; without it an
  in-process server is started for the run.

The run folder holds ``meta.json``, ``predictions.jsonl`` (appended and flushed per item: an interrupted
run resumes where it stopped, skipping ids already written), ``scores.json``, ``report.html`` and
``report.md``.

The backends (:class:`Generator` and its subclasses, :func:`make_generator`) live in
:mod:`toolgym.evals.generators` and are re-exported here; this module is the run loop: the run config,
the resumable run folder, and the two suites.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from toolgym.evals.run_folder import RunConfig, _progress, _truncate_partial_tail, read_predictions_file
from toolgym.evals.generators import (  # noqa: F401 - re-exported (public names, and _vllm_usable for the tests)
    Generator,
    Messages,
    OpenAIGenerator,
    TransformersGenerator,
    VLLMGenerator,
    _vllm_usable,
    make_generator,
)

__all__ = ["RunConfig", "Generator", "make_generator", "run_eval", "OpenAIGenerator", "TransformersGenerator",
           "VLLMGenerator", "read_predictions_file"]


def _batches(seq: list, n: int):
    n = max(1, n)
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


# ------------------------------------------------------------------------------------------------
# KAgentBench suite
# ------------------------------------------------------------------------------------------------
def _kagent_prompts(item: dict, cfg: RunConfig) -> list[tuple[str | None, Messages]]:
    pi = item.get("prompt_input") or {}
    sys_msgs = [{"role": "system", "content": cfg.system}] if cfg.system else []
    if item.get("type") == "profile":
        text = pi.get("prompt") if isinstance(pi, dict) else pi
        if not isinstance(text, str):
            text = item.get("query", "")
        return [(None, sys_msgs + [{"role": "user", "content": text}])]
    out = []
    if isinstance(pi, dict):
        for name, text in pi.items():
            if cfg.templates and name not in cfg.templates:
                continue
            out.append((name, sys_msgs + [{"role": "user", "content": str(text)}]))
    return out


def _run_kagent(cfg: RunConfig, gen_factory: Callable[[], Generator], out: Path) -> dict:
    from toolgym.evals.kagentbench import load_items, score
    from toolgym.evals.report import write_report

    if not cfg.data:
        raise ValueError("--suite kagentbench needs --data ITEMS.jsonl")
    items = load_items(cfg.data)
    if cfg.limit:
        items = items[: cfg.limit]
    pred_path = out / "predictions.jsonl"
    _truncate_partial_tail(pred_path)
    done = {str(p["id"]) for p in read_predictions_file(pred_path)}
    todo = [it for it in items if str(it["id"]) not in done]
    gen: Generator | None = None
    if todo:
        gen = gen_factory()
        # flatten (item, template) prompts so batches are full; write an item once all its prompts are done
        jobs = [(it, name, msgs) for it in todo for name, msgs in _kagent_prompts(it, cfg)]
        pending: dict[str, dict] = {}
        remaining = {str(it["id"]): sum(1 for _ in _kagent_prompts(it, cfg)) for it in todo}
        with pred_path.open("a", encoding="utf-8") as f:
            for it in todo:  # items without any prompt are written right away (they score 0)
                if remaining[str(it["id"])] == 0:
                    f.write(json.dumps({"id": it["id"], "model_predict": {}}, ensure_ascii=False) + "\n")
            f.flush()
            bar = _progress(range(len(jobs)), len(jobs), cfg.progress, "generate")
            it_bar = iter(bar) if bar is not None else None
            for chunk in _batches(jobs, cfg.batch_size):
                texts = gen.generate([m for _, _, m in chunk])
                for (it, name, _), text in zip(chunk, texts):
                    iid = str(it["id"])
                    if name is None:
                        pending[iid] = {"id": it["id"], "model_predict": text}
                    else:
                        pending.setdefault(iid, {"id": it["id"], "model_predict": {}})["model_predict"][name] = text
                    remaining[iid] -= 1
                    if remaining[iid] == 0:
                        f.write(json.dumps(pending.pop(iid), ensure_ascii=False) + "\n")
                        f.flush()
                    if it_bar is not None:
                        next(it_bar, None)
            if hasattr(bar, "close"):
                bar.close()
        gen.close()
    preds = {str(p["id"]): p.get("model_predict", {}) for p in read_predictions_file(pred_path)}
    report = score(items, preds, strict=cfg.strict, bleu=cfg.bleu, name=cfg.name or Path(out).name)
    data = {"kind": "kagentbench", **report.to_dict(items=True)}
    (out / "scores.json").write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    write_report(data, out, title=f"KAgentBench — {data['name']}")
    return {"kind": "kagentbench", **report.summary()}


# ------------------------------------------------------------------------------------------------
# BFCL / toolgym suites: toolgym.evals.bfcl_run (batched episodes through the env's gRPC API)
# ------------------------------------------------------------------------------------------------
def summarize_bfcl(records: list[dict]) -> dict:
    from toolgym.evals.bfcl_run import summarize_bfcl as _summarize

    return _summarize(records)


# ------------------------------------------------------------------------------------------------
def run_eval(cfg: RunConfig, *, generator: Generator | None = None, client=None) -> dict:
    """Generate (resuming), score and report. Returns the summary dict also stored in ``meta.json``."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    meta_path = out / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    meta.update({"model": cfg.model, "suite": cfg.suite, "backend": cfg.backend, "data": cfg.data,
                 "max_new_tokens": cfg.max_new_tokens, "temperature": cfg.temperature, "strict": cfg.strict,
                 "templates": list(cfg.templates), "updated": time.strftime("%Y-%m-%dT%H:%M:%S")})
    meta.setdefault("created", meta["updated"])
    meta_path.write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")

    def factory() -> Generator:
        return generator if generator is not None else make_generator(cfg)

    if cfg.suite.split(":", 1)[0].lower() in ("kagentbench", "kagent"):
        summary = _run_kagent(cfg, factory, out)
    else:
        from toolgym.evals.bfcl_run import run_bfcl

        summary = run_bfcl(cfg, factory, out, client=client)
    meta["summary"] = summary
    meta_path.write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
    return summary
