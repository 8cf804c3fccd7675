"""BFCL's own ``multi_turn_checker`` as a long-lived scoring worker (runs in BFCL's venv).

Run with the interpreter of ``.cache/venvs/bfcl-2026.3.23`` (``make bfcl-venv``): BFCL's pins
clash with toolgym's, so this file imports nothing of toolgym and only the stdlib plus
``bfcl_eval`` (and, through its math backend, ``mpmath``). Protocol: one JSON object per line on
stdin, one per line on stdout, in order::

    in:  {"id": ..., "entry": {"id", "involved_classes", "initial_config"},
          "ground_truth": [[call, ...], ...], "turns": [[[call, ...] per step] per turn]}
    out: {"id": ..., "valid": bool, "error_type": str, "turn": int | null, "error": str}

What it reproduces of BFCL's pipeline (``eval_runner._evaluate_single_multi_turn_entry``):
a trajectory with a different number of turns than the ground truth is ``force_terminated``;
steps that decode to no call are dropped before the checker sees them; then
``multi_turn_checker`` runs unchanged.

Two things it does that BFCL's runner does not, so that one BFCL verdict never depends on what
was scored before it (the reference must be BFCL on a fresh process):

- every trajectory runs in a child forked from this pristine worker, so state BFCL's backends
  keep at module, class or default-argument level (``post_tweet``'s ``mentions=[]``, which
  ``mention()`` mutates in place) starts clean, as in a fresh process;
- the child uses a unique model name, because BFCL caches backend instances in the checker
  module's ``globals()`` under model name + entry id.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
import traceback

from bfcl_eval.constants.executable_backend_config import CLASS_FILE_PATH_MAPPING
from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker import multi_turn_checker

# Import every backend before forking: children then start from the same pristine modules.
_CLASSES = ("GorillaFileSystem", "MathAPI", "MessageAPI", "TwitterAPI", "TicketAPI", "TradingBot", "TravelAPI", "VehicleControlAPI")
for _name in _CLASSES:
    importlib.import_module(CLASS_FILE_PATH_MAPPING[_name])

_TURN = re.compile(r"\bturn (\d+)")


def score(item: dict, serial: int) -> dict:
    """BFCL's verdict on one trajectory (run in a forked child)."""
    entry = dict(item["entry"])
    ground_truth = item["ground_truth"]
    turns = item["turns"]
    if len(turns) != len(ground_truth):
        return {"valid": False, "error_type": "multi_turn:force_terminated", "turn": None, "error": f"{len(turns)} turns"}
    # BFCL's runner drops steps that decode to nothing (prose, an empty list) before checking.
    decoded = [[step for step in turn if step] for turn in turns]
    try:
        res = multi_turn_checker(decoded, ground_truth, entry, entry["id"].rsplit("_", 1)[0], f"parity{serial}")
    except Exception as e:  # BFCL's checker asserts / getattr()s; a crash is its verdict too
        return {"valid": False, "error_type": f"checker_crash:{type(e).__name__}", "turn": None,
                "error": "".join(traceback.format_exception_only(type(e), e)).strip()[:300]}
    if res.get("valid"):
        return {"valid": True, "error_type": "", "turn": None, "error": ""}
    msg = str(res.get("error_message", ""))
    m = _TURN.search(msg)
    # The state failure names no turn: its execution log holds one entry per turn checked.
    log = res.get("execution_result") or (res.get("details") or {}).get("execution_result")
    turn = int(m.group(1)) if m else (len(log) - 1 if isinstance(log, list) and log else None)
    return {"valid": False, "error_type": str(res.get("error_type", "")), "turn": turn, "error": msg[:300]}


def _in_child(item: dict, serial: int) -> dict:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: score, write one line, leave without running the parent's cleanup
        os.close(r)
        sys.stdout = open(os.devnull, "w")  # a backend's print() must not reach the protocol
        try:
            out = score(item, serial)
        except BaseException as e:  # noqa: BLE001
            out = {"valid": False, "error_type": f"worker_crash:{type(e).__name__}", "turn": None, "error": str(e)[:300]}
        with os.fdopen(w, "w") as fh:
            fh.write(json.dumps(out))
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as fh:
        text = fh.read()
    os.waitpid(pid, 0)
    return json.loads(text) if text else {"valid": False, "error_type": "worker_crash:no_output", "turn": None, "error": ""}


def main() -> int:
    fresh = "--no-fork" not in sys.argv[1:]
    for serial, line in enumerate(sys.stdin):
        if not line.strip():
            continue
        item = json.loads(line)
        out = _in_child(item, serial) if fresh else score(item, serial)
        out["id"] = item.get("id")
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
