"""KAgentBench's per-ability metrics: one item's golden list against one template's parse.

Each function returns a fraction in [0, 1] for a single template output; averaging over templates, items
and abilities is :mod:`toolgym.evals.kagentbench`'s job (its module docstring states the formulas). The
checks mirror the reference scorer's: goldens whose thought or tool is ``"None"`` are skipped, and the
tool-name match gates the ROUGE terms (so ROUGE is not even computed when the name already zeroes the
product).
"""

from __future__ import annotations

from toolgym.evals.rouge import kagent_rouge

__all__ = ["plan_metric", "tool_metric", "reflection_metric"]


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
