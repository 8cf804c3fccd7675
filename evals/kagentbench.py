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
``strict=True`` such outputs score 0 instead. Where the reference would crash (no prediction for an item,
no usable golden, an item type with no items) this module scores 0 / reports ``None`` and counts it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from toolgym.evals.kagent_parsers import KNOWN_TEMPLATES, Parsed, conclusion_text, parse_template
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
ABILITIES = ("planning", "tool_use", "reflection", "concluding", "profile")
ABILITY_LABELS = {
    "planning": "Planning",
    "tool_use": "Tool-use",
    "reflection": "Reflection",
    "concluding": "Concluding",
    "profile": "Profile",
}
WEIGHTS = {"planning": 0.25, "tool_use": 0.35, "reflection": 0.1, "concluding": 0.2, "profile": 0.1}


def overall(plan: float, tool_use: float, reflection: float, concluding: float, profile: float) -> float:
    """KAgentBench's Overall (same scale as the inputs, 0-100 in the published table)."""
    return 0.25 * plan + 0.35 * tool_use + 0.1 * reflection + 0.2 * concluding + 0.1 * profile


# ------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------
def _iter_json_records(src) -> Iterable[dict]:
    if isinstance(src, (str, os.PathLike)):
        text = Path(src).read_text(encoding="utf-8")
        stripped = text.lstrip()
        if stripped.startswith("["):
            yield from json.loads(stripped)
            return
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{src}:{n}: not a JSON object: {e}") from e
        return
    if isinstance(src, Mapping):
        yield src
        return
    yield from src


_LIST_FIELDS = ("golden_result_list", "funcs")


def validate_item(rec: Any) -> dict:
    """Check the fields the scorer iterates have the right shape; ValueError says which is wrong."""
    if not isinstance(rec, dict) or "id" not in rec:
        raise ValueError(f"not a KAgentBench item (needs an 'id'): {str(rec)[:200]}")
    for key in _LIST_FIELDS:
        value = rec.get(key)
        if value is not None and not isinstance(value, list):
            raise ValueError(f"item {str(rec['id'])[:80]!r}: {key!r} must be a list (KAgentBench schema), got {type(value).__name__}")
    return rec


def load_items(src) -> list[dict]:
    """Items from a JSONL/JSON-array file or an iterable of dicts (kept as dicts, key order kept)."""
    return [validate_item(rec) for rec in _iter_json_records(src)]


def load_predictions(src) -> dict[str, Any]:
    """``{id: model_predict}`` from ``{"id", "model_predict"}`` records (a mapping is returned as is)."""
    if isinstance(src, Mapping) and "id" not in src:
        return dict(src)
    out: dict[str, Any] = {}
    for rec in _iter_json_records(src):
        if not isinstance(rec, dict) or "id" not in rec:
            raise ValueError(f"not a prediction record (needs an 'id'): {str(rec)[:200]}")
        out[str(rec["id"])] = rec.get("model_predict", {})
    return out


# ------------------------------------------------------------------------------------------------
# Metrics (one golden list vs one parse)
# ------------------------------------------------------------------------------------------------
def _arg_rouge(golden_args, args) -> float:
    if golden_args == {} and args == {}:
        return 1.0
    if args != {}:
        if not isinstance(golden_args, dict):
            return 0.0  # the reference crashes here
        vals = []
        for k, v in golden_args.items():
            if k in args:
                vals.append(kagent_rouge(v, args[k]))
            else:
                vals.append(0.0)
        return sum(vals) / len(vals) if vals else 0
    return 0.0


def _goldens(item) -> list[dict]:
    out = []
    for g in item.get("golden_result_list") or ():
        if isinstance(g, dict):
            out.append(g)
    return out


def plan_metric(goldens: list[dict], thought, tool_name) -> float:
    vals = []
    for g in goldens:
        gt, gn = g.get("thought"), g.get("tool_name")
        if gt == "None" or gn == "None":
            continue
        vals.append(kagent_rouge(gt, thought) if tool_name == gn else 0.0)
    return max(vals) if vals else 0.0


def tool_metric(goldens: list[dict], tool_name, tool_args) -> float:
    vals = []
    for g in goldens:
        gn = g.get("tool_name")
        if gn == "None":
            continue
        vals.append(_arg_rouge(g.get("tool_args", {}), tool_args) if tool_name == gn else 0.0)
    return max(vals) if vals else 0.0


def _last_task(item) -> dict:
    lt = item.get("memory_last_task")
    if isinstance(lt, list):
        lt = next((x for x in reversed(lt) if isinstance(x, dict)), {})
    return lt if isinstance(lt, dict) else {}


def reflection_metric(goldens: list[dict], last_task: dict, thought, tool_name, tool_args) -> float:
    vals = []
    for g in goldens:
        gt, gn, ga = g.get("thought"), g.get("tool_name"), g.get("tool_args", {})
        if gt == "None" or gn == "None":
            continue
        em = 1 if tool_name == gn else 0
        if em:
            tr = kagent_rouge(gt, thought)
            ar = _arg_rouge(ga, tool_args)
        else:
            tr = ar = 0.0
        pw = 1 if (last_task.get("tool_name") == gn and last_task.get("tool_args") == ga) else 0
        vals.append((1 - pw) * (0.3 * em * tr + 0.7 * em * ar))
    return max(vals) if vals else 0.0


def _golden_texts(item) -> list:
    out = []
    for g in item.get("golden_result_list") or ():
        if isinstance(g, dict):
            out.append(g.get("golden_result", ""))
        else:
            out.append(g)  # lenient: plain strings (the reference needs {"golden_result": ...})
    return out


# ------------------------------------------------------------------------------------------------
# Results
# ------------------------------------------------------------------------------------------------
@dataclass
class TemplateResult:
    template: str
    scores: dict[str, float]
    thought: Any = None
    tool_name: Any = None
    tool_args: Any = None
    reused_from: str | None = None
    unparsed: bool = False
    json_ok: bool | None = None
    repaired: bool = False
    text: str | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: v for k, v in d.items() if v is not None}


@dataclass
class ItemResult:
    id: str
    type: str
    query: str
    scores: dict[str, float]
    templates: list[TemplateResult] = field(default_factory=list)
    issues: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "type": self.type,
            "query": self.query,
            "scores": self.scores,
            "templates": [t.to_dict() for t in self.templates],
            "issues": self.issues,
        }


@dataclass
class KAgentReport:
    """Five abilities and Overall on 0-100 (``None`` when the data has no item of that type)."""

    planning: float | None
    tool_use: float | None
    reflection: float | None
    concluding: float | None
    profile: float | None
    overall: float | None
    counts: dict[str, Any]
    bleu: dict[str, float | None] = field(default_factory=dict)
    items: list[ItemResult] = field(default_factory=list)
    strict: bool = False
    tokenizer: str = "exact"
    name: str = ""

    def abilities(self) -> dict[str, float | None]:
        return {a: getattr(self, a) for a in ABILITIES}

    def summary(self) -> dict[str, Any]:
        """The one-line ``--json`` summary: five abilities, overall, counts, BLEU, mode."""
        d: dict[str, Any] = dict(self.abilities())
        d["overall"] = self.overall
        d["counts"] = {k: v for k, v in self.counts.items() if isinstance(v, int)}
        d["bleu_concluding"] = self.bleu.get("concluding")
        d["bleu_profile"] = self.bleu.get("profile")
        d["strict"] = self.strict
        d["tokenizer"] = self.tokenizer
        return d

    def to_dict(self, *, items: bool = True) -> dict[str, Any]:
        d = {
            "name": self.name,
            **self.abilities(),
            "overall": self.overall,
            "counts": self.counts,
            "bleu": self.bleu,
            "strict": self.strict,
            "tokenizer": self.tokenizer,
        }
        if items:
            d["items"] = [i.to_dict() for i in self.items]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> KAgentReport:
        items = []
        for it in d.get("items") or ():
            tpls = [TemplateResult(**{k: v for k, v in t.items() if k in TemplateResult.__dataclass_fields__})
                    for t in it.get("templates") or ()]
            items.append(ItemResult(it["id"], it["type"], it.get("query", ""), it.get("scores", {}), tpls,
                                    it.get("issues", [])))
        return cls(
            planning=d.get("planning"), tool_use=d.get("tool_use"), reflection=d.get("reflection"),
            concluding=d.get("concluding"), profile=d.get("profile"), overall=d.get("overall"),
            counts=d.get("counts", {}), bleu=d.get("bleu", {}), items=items, strict=d.get("strict", False),
            tokenizer=d.get("tokenizer", "exact"), name=d.get("name", ""),
        )

    def format_line(self) -> str:
        """The reference's own print format."""

        def f(v):
            return "n/a" if v is None else f"{v:.2f}"

        return (f"plan : {f(self.planning)}, tooluse : {f(self.tool_use)}, reflextion : {f(self.reflection)}, "
                f"conclusion : {f(self.concluding)}, profile : {f(self.profile)}, overall : {f(self.overall)}")


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
        for k in keys:
            scores[k] = (sum(t.scores[k] for t in templates) / len(templates)) if templates else 0.0
        if not templates:
            issues.append("no template output: scored 0")

    elif typ == "conclusion":
        if not isinstance(model_predict, Mapping):
            issues.append("model_predict is not a {template: text} object: scored 0")
            model_predict = {}
        labels = _golden_texts(item)
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
        for t in res.templates:
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
