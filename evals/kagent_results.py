"""KAgentBench result types: per-template, per-item and whole-run results (:class:`KAgentReport`).

Scores inside :class:`TemplateResult` / :class:`ItemResult` are fractions in [0, 1]; :class:`KAgentReport`
holds the five abilities and Overall on 0-100 and serializes to the ``scores.json`` shape that
:mod:`toolgym.evals.report` renders (:meth:`KAgentReport.to_dict` / :meth:`KAgentReport.from_dict`).
The scorer that fills them is :mod:`toolgym.evals.kagentbench`, which re-exports these names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["ABILITIES", "ABILITY_LABELS", "TemplateResult", "ItemResult", "KAgentReport"]

ABILITIES = ("planning", "tool_use", "reflection", "concluding", "profile")
ABILITY_LABELS = {
    "planning": "Planning",
    "tool_use": "Tool-use",
    "reflection": "Reflection",
    "concluding": "Concluding",
    "profile": "Profile",
}


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
    #: strict mode: True for an expected template the prediction left out (scored 0)
    missing: bool | None = None

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
