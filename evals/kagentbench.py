"""KAgentBench scoring, faithful to KwaiAgents' reference scorer (``benchmark/benchmark_eval.py``).

Items (one JSON object a line) use KAgentBench's schema: ``id``, ``query``, ``type`` (``plantooluse``,
``reflextion``, ``conclusion`` or ``profile``), ``golden_result_list``, ``funcs``, ``prompt_input``,
``memory``, ``memory_type``, ``memory_last_task``. Predictions are ``{"id", "model_predict"}`` lines where
``model_predict`` maps a prompt-template name to the model's raw text (for ``profile`` items it is the
text itself).

Scores (all on 0-100 in :class:`KAgentReport`):

- **Planning** (``plantooluse``): per template, max over golden answers (skipping goldens whose thought or
  tool is ``"None"``) of ``ROUGE-L(golden thought, thought) * [tool name == golden tool]``.
- **Tool-use** (``plantooluse``): per template, max over goldens (skipping tool ``"None"``) of
  ``[tool name == golden tool] * mean over golden arg keys of ROUGE-L(str(golden value), str(value))``
  (a missing key scores 0; empty golden and empty predicted args score 1; predicted args empty but golden
  not: 0).
- **Reflection** (``reflextion``): per template, max over goldens of
  ``(1 - penalty) * (0.3 * EM * ROUGE-L(thought) + 0.7 * EM * arg ROUGE)``, where ``penalty`` is 1 when the
  golden call equals ``memory_last_task`` (the failed call the model should not repeat).
- **Concluding** (``conclusion``): per template, max over goldens of ROUGE-L of the (cleaned) answer.
- **Profile** (``profile``): max over goldens of ROUGE-L of the answer.

Each item is the mean over its templates; each ability the mean over its items; **Overall** =
0.25·Planning + 0.35·Tool-use + 0.1·Reflection + 0.2·Concluding + 0.1·Profile.

The reference's quirks are kept by default (``strict=False``), because the published numbers depend on
them; the important one: **an output under an unknown template name, or an empty ReACT output, is not
parsed — the previous template's parse is reused** (the reference's loop variables carry over). With
``strict=True`` such outputs score 0 instead, and a submission cannot choose which templates count:
an item's templates are the keys of its ``prompt_input`` (all of :data:`KNOWN_TEMPLATES` when it has
none), each one the prediction leaves out is scored 0 as *missing* (``counts["missing_templates"]``),
and outputs under other names are ignored (``counts["extra_templates"]``). Non-strict mode keeps the
reference's rule (the mean over the templates the prediction gives) and only counts the missing
ones. Where the reference would crash (no prediction for an item,
no usable golden, an item type with no items) this module scores 0 / reports ``None`` and counts it.

This module is the scorer and the public entry point; the pieces live beside it: the per-template
parsers and JSON repair in :mod:`toolgym.evals.kagent_parsers`, the per-ability metrics in
:mod:`toolgym.evals.kagent_metrics`, the loaders in :mod:`toolgym.evals.kagent_data` and the result
types in :mod:`toolgym.evals.kagent_results` (all re-exported here, so
``from toolgym.evals.kagentbench import ...`` keeps working for every name it ever offered).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from toolgym.evals.kagent_data import load_items, load_predictions, validate_item  # noqa: F401 - re-exported
from toolgym.evals.kagent_metrics import (
    _golden_texts,
    _goldens,
    _last_task,
    plan_metric,
    reflection_metric,
    tool_metric,
)
from toolgym.evals.kagent_parsers import KNOWN_TEMPLATES, Parsed, conclusion_text, parse_template
from toolgym.evals.kagent_results import (  # noqa: F401 - ABILITY_LABELS is re-exported (report.py)
    ABILITIES,
    ABILITY_LABELS,
    ItemResult,
    KAgentReport,
    TemplateResult,
)
from toolgym.evals.rouge import bleu as _bleu
from toolgym.evals.rouge import kagent_rouge

__all__ = [
    "ABILITIES",
    "TYPES",
    "WEIGHTS",
    "KAgentReport",
    "ItemResult",
    "load_items",
    "load_predictions",
    "overall",
    "score",
    "score_item",
]

TYPES = ("plantooluse", "reflextion", "conclusion", "profile")
WEIGHTS = {"planning": 0.25, "tool_use": 0.35, "reflection": 0.1, "concluding": 0.2, "profile": 0.1}


def overall(plan: float, tool_use: float, reflection: float, concluding: float, profile: float) -> float:
    """KAgentBench's Overall (same scale as the inputs, 0-100 in the published table)."""
    return 0.25 * plan + 0.35 * tool_use + 0.1 * reflection + 0.2 * concluding + 0.1 * profile


# ------------------------------------------------------------------------------------------------
# Scoring
# ------------------------------------------------------------------------------------------------
_TEXT_KEEP = 4000


def _clip(text) -> str | None:
    if not isinstance(text, str):
        return None if text is None else str(text)[:_TEXT_KEEP]
    return text if len(text) <= _TEXT_KEEP else text[:_TEXT_KEEP] + "…"


def _parse_all(model_predict: Mapping, funcs, strict: bool, issues: list[str]):
    """[(template, Parsed, reused_from, unparsed, raw)] in the prediction's key order."""
    out = []
    prev: Parsed | None = None
    prev_name: str | None = None
    for name, text in model_predict.items():
        p = parse_template(name, text, funcs)
        reused = None
        unparsed = False
        if p is None:
            unparsed = True
            why = "empty ReACT output" if name == "ReACT" else f"unknown template {name!r}"
            if strict or prev is None:
                p = Parsed()
                issues.append(f"{why}: scored as no call" + ("" if strict else " (nothing to reuse)"))
            else:
                reused = prev_name
                p = prev
                issues.append(f"{why}: reused the parse of {prev_name!r} (reference behaviour)")
        else:
            prev, prev_name = p, name
        out.append((name, p, reused, unparsed, text))
    return out


def expected_templates(item: Mapping) -> tuple[str, ...]:
    """The templates an item asks for: its ``prompt_input`` keys, else every known template."""
    prompts = item.get("prompt_input")
    if isinstance(prompts, Mapping) and prompts:
        return tuple(str(k) for k in prompts)
    return KNOWN_TEMPLATES


def _strict_templates(item: Mapping, model_predict: Mapping, issues: list[str]) -> tuple[dict, list[str]]:
    """(the prediction restricted to the expected templates, the expected ones it left out)."""
    expected = expected_templates(item)
    extra = [k for k in model_predict if k not in expected]
    if extra:
        issues.append(f"strict: {len(extra)} output(s) under templates the item does not ask for ignored: {extra[:5]}")
    missing = [k for k in expected if k not in model_predict]
    if missing:
        issues.append(f"strict: {len(missing)} expected template(s) missing, scored 0: {missing}")
    return {k: model_predict[k] for k in expected if k in model_predict}, missing


def _missing_result(name: str, keys: tuple[str, ...]) -> TemplateResult:
    return TemplateResult(template=name, scores={k: 0.0 for k in keys}, missing=True)


def score_item(item: Mapping, model_predict: Any, *, strict: bool = False, bleu: bool = True,
               keep_text: bool = True) -> ItemResult:
    """Score one item against its ``model_predict``; scores are fractions in [0, 1]."""
    typ = item.get("type")
    iid = str(item.get("id"))
    query = item.get("query", "")
    issues: list[str] = []
    templates: list[TemplateResult] = []
    scores: dict[str, float] = {}

    if model_predict is None:
        issues.append("no prediction: scored 0")
        model_predict = {} if typ != "profile" else ""

    if typ in ("plantooluse", "reflextion"):
        if not isinstance(model_predict, Mapping):
            issues.append("model_predict is not a {template: text} object: scored 0")
            model_predict = {}
        goldens = _goldens(item)
        funcs = item.get("funcs") or []
        last = _last_task(item) if typ == "reflextion" else {}
        missing: list[str] = []
        if strict:
            model_predict, missing = _strict_templates(item, model_predict, issues)
        parsed = _parse_all(model_predict, funcs, strict, issues)
        for name, p, reused, unparsed, raw in parsed:
            if typ == "plantooluse":
                s = {
                    "planning": plan_metric(goldens, p.thought, p.tool_name),
                    "tool_use": tool_metric(goldens, p.tool_name, p.tool_args),
                }
            else:
                s = {"reflection": reflection_metric(goldens, last, p.thought, p.tool_name, p.tool_args)}
            templates.append(TemplateResult(
                template=name, scores=s, thought=p.thought, tool_name=p.tool_name, tool_args=p.tool_args,
                reused_from=reused, unparsed=unparsed, json_ok=p.json_ok, repaired=p.repaired,
                text=_clip(raw) if keep_text else None,
            ))
        keys = ("planning", "tool_use") if typ == "plantooluse" else ("reflection",)
        templates.extend(_missing_result(name, keys) for name in missing)
        for k in keys:
            scores[k] = (sum(t.scores[k] for t in templates) / len(templates)) if templates else 0.0
        if not templates:
            issues.append("no template output: scored 0")

    elif typ == "conclusion":
        if not isinstance(model_predict, Mapping):
            issues.append("model_predict is not a {template: text} object: scored 0")
            model_predict = {}
        labels = _golden_texts(item)
        missing = []
        if strict:
            model_predict, missing = _strict_templates(item, model_predict, issues)
        for name, raw in model_predict.items():
            text = conclusion_text(name, raw)
            if text == "":
                r = 0.0
            else:
                r = max((kagent_rouge(lab, text) for lab in labels), default=0.0)
            s = {"concluding": r}
            if bleu:
                s["bleu"] = _bleu(str(text), [str(x) for x in labels]) if text != "" else 0.0
            templates.append(TemplateResult(template=name, scores=s, text=_clip(raw) if keep_text else None))
        templates.extend(_missing_result(name, ("concluding", "bleu") if bleu else ("concluding",)) for name in missing)
        if templates:
            scores["concluding"] = sum(t.scores["concluding"] for t in templates) / len(templates)
            if bleu:
                scores["bleu"] = sum(t.scores["bleu"] for t in templates) / len(templates)
        else:
            scores["concluding"] = 0.0
            issues.append("no template output: scored 0")

    elif typ == "profile":
        labels = _golden_texts(item)
        pred = model_predict
        if strict and isinstance(pred, Mapping):
            vals = [v for v in pred.values() if isinstance(v, str)]
            pred = vals[0] if len(vals) == 1 else ""
        if pred == "":
            r = 0.0
        else:
            r = max((kagent_rouge(lab, pred) for lab in labels), default=0.0)
        scores["profile"] = r
        s = {"profile": r}
        if bleu:
            scores["bleu"] = s["bleu"] = _bleu(str(pred), [str(x) for x in labels]) if pred != "" else 0.0
        templates.append(TemplateResult(template="profile", scores=s, text=_clip(pred) if keep_text else None))
    else:
        issues.append(f"unknown item type {typ!r}: ignored")

    return ItemResult(iid, str(typ), query if isinstance(query, str) else str(query), scores, templates, issues)


def _mean(xs: list[float]) -> float | None:
    return (sum(xs) / len(xs)) if xs else None


def score(items, predictions, *, strict: bool = False, bleu: bool = True, details: bool = True,
          name: str = "") -> KAgentReport:
    """Score ``items`` (see :func:`load_items`) against ``predictions`` (see :func:`load_predictions`).

    Every item of a known type counts, with or without a prediction (missing ones score 0 and are
    counted in ``counts["missing"]``); predictions for unknown ids are counted and ignored.
    """
    from toolgym.evals.punkt import params_status

    items = load_items(items) if not isinstance(items, list) else items
    if isinstance(predictions, Mapping) and not ("id" in predictions and "model_predict" in predictions):
        preds = {str(k): v for k, v in predictions.items()}
    else:
        preds = load_predictions(predictions)
    by_id: dict[str, Mapping] = {}
    for it in items:
        by_id[str(it["id"])] = it  # the reference keeps the last line of a repeated id
    per_type: dict[str, list[ItemResult]] = {t: [] for t in TYPES}
    results: list[ItemResult] = []
    missing = ignored = 0
    reused = unparsed = repaired = json_fail = 0
    missing_tpl = extra_tpl = 0
    template_counts: dict[str, int] = {}
    for iid, it in by_id.items():
        typ = it.get("type")
        if typ not in TYPES:
            ignored += 1
            continue
        mp = preds.get(iid)
        if iid not in preds:
            missing += 1
        res = score_item(it, mp, strict=strict, bleu=bleu, keep_text=details)
        per_type[typ].append(res)
        if typ != "profile" and isinstance(mp, Mapping):
            want = expected_templates(it)
            missing_tpl += sum(1 for k in want if k not in mp)  # counted in both modes, scored 0 in strict
            extra_tpl += sum(1 for k in mp if k not in want)
        for t in res.templates:
            if t.missing:
                continue
            template_counts[t.template] = template_counts.get(t.template, 0) + 1
            reused += t.reused_from is not None
            unparsed += t.unparsed
            repaired += t.repaired
            json_fail += t.json_ok is False
        if details:
            results.append(res)

    def col(typ, key):
        return [r.scores.get(key, 0.0) for r in per_type[typ]]

    frac = {
        "planning": _mean(col("plantooluse", "planning")),
        "tool_use": _mean(col("plantooluse", "tool_use")),
        "reflection": _mean(col("reflextion", "reflection")),
        "concluding": _mean(col("conclusion", "concluding")),
        "profile": _mean(col("profile", "profile")),
    }
    ov = None
    if all(v is not None for v in frac.values()):
        ov = overall(frac["planning"], frac["tool_use"], frac["reflection"], frac["concluding"], frac["profile"]) * 100
    pct = {k: (None if v is None else v * 100) for k, v in frac.items()}
    bleu_d: dict[str, float | None] = {}
    if bleu:
        bleu_d = {"concluding": _mean(col("conclusion", "bleu")), "profile": _mean(col("profile", "bleu"))}
    unknown_ids = sum(1 for k in preds if k not in by_id)
    counts: dict[str, Any] = {
        "items": sum(len(v) for v in per_type.values()),
        "plantooluse": len(per_type["plantooluse"]),
        "reflextion": len(per_type["reflextion"]),
        "conclusion": len(per_type["conclusion"]),
        "profile": len(per_type["profile"]),
        "predictions": len(preds),
        "missing": missing,
        "unknown_ids": unknown_ids,
        "ignored_items": ignored,
        "reused_parses": reused,
        "unparsed_outputs": unparsed,
        "repaired_json": repaired,
        "failed_json": json_fail,
        "missing_templates": missing_tpl,
        "extra_templates": extra_tpl,
        "templates": template_counts,
    }
    for v in list(pct.values()) + [ov]:
        if v is not None and not math.isfinite(v):  # pragma: no cover - defensive
            raise ArithmeticError("non-finite KAgentBench score")
    return KAgentReport(
        planning=pct["planning"], tool_use=pct["tool_use"], reflection=pct["reflection"],
        concluding=pct["concluding"], profile=pct["profile"], overall=ov, counts=counts, bleu=bleu_d,
        items=results, strict=strict, tokenizer=params_status(), name=name,
    )


def known_templates() -> tuple[str, ...]:
    return KNOWN_TEMPLATES
