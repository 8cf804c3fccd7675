"""toolgym.evals — KAgentBench-style automatic evaluation, model runs, reports and the EvalService.

In-process API::

    from toolgym.evals import kagentbench
    report = kagentbench.score(kagentbench.load_items("items.jsonl"), kagentbench.load_predictions("preds.jsonl"))
    report.overall, report.planning, report.tool_use, report.reflection, report.concluding, report.profile

See :mod:`toolgym.evals.kagentbench` for the formulas and the reference's quirks that are reproduced.
"""

from toolgym.evals.kagentbench import KAgentReport, load_items, load_predictions, overall, score

__all__ = ["KAgentReport", "load_items", "load_predictions", "overall", "score"]
