"""Speed work must not change one verdict: every result is diffed against a recorded reference.

The reference (``data/score_reference.txt.gz``) was recorded with the engine as it was before the
speed work of issue 13 and holds, per scored item, two short hashes:

- the *numbers*: ``total``, every component and penalty (``repr`` of the floats, so bit-exact, in
  their order), ``valid`` and, for the parity set, the AST verdict (ok, counts, ``arg_accuracy``,
  assignment);
- the *text*: ``feedback``, ``details`` (``repr``, key order included) and the AST verdict's errors.

Two sets are scored:

- **realistic**: :func:`bench_score_realistic.realistic_items` (seed 7): every single-turn BFCL
  category, every template, declared or auto-detected, every perturbation kind, scored with
  ``score_output`` from the raw text (parse, match, components);
- **parity**: the BFCL parity set of ``test_bfcl_agreement.py`` (``bfcl_oracle.generate_cases``,
  seed 0, every case of every AST category), its decoded calls scored with ``score_trajectory``
  and ``match_calls``.

The header also holds a hash of the inputs, so a changed generator or changed BFCL data is told
apart from a changed result. A deliberate reward change (not a speed change) lands on its own and
regenerates the file::

    .venv/bin/python tests/env/reward/test_score_reference.py --write
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("bfcl_eval")

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
REFERENCE = HERE / "data" / "score_reference.txt.gz"
REALISTIC_ITEMS = 6000
REALISTIC_SEED = 7


def _load(name: str, path: Path):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _h(s: str) -> str:
    return hashlib.blake2b(s.encode("utf-8", "backslashreplace"), digest_size=4).hexdigest()


def _result_hashes(r, verdict=None) -> str:
    num = repr((repr(r.total), [(k, repr(v)) for k, v in r.components.items()], [(k, repr(v)) for k, v in r.penalties.items()], r.valid))
    text = repr((r.feedback, r.details))
    if verdict is not None:
        num += repr((verdict.ok, verdict.expected, verdict.matched, repr(verdict.arg_accuracy), verdict.assignment))
        text += repr(verdict.errors)
    return f"{_h(num)} {_h(text)}"


def realistic_set():
    """[(label, input fingerprint, thunk → hashes)] for the realistic set."""
    bench = _load("toolgym_bench_score_realistic", REPO / "bench" / "bench_score_realistic.py")
    from toolgym.env.reward.engine import score_output
    from toolgym.env.tasks.jsonl import task_from_bfcl_record

    records = bench.bfcl_records()
    items = bench.realistic_items(records, REALISTIC_ITEMS, REALISTIC_SEED)
    recs = {r["id"]: r for r in records}
    tasks: dict = {}
    out = []
    for it in items:
        tid = it["id"]
        if tid not in tasks:
            tasks[tid] = task_from_bfcl_record(recs[tid])
        task, text, template = tasks[tid], it["output"], it["template"]
        out.append((f"realistic {tid} {it['perturbation']} template={template}", repr((tid, template, text)),
                    lambda task=task, text=text, template=template: _result_hashes(score_output(task, text, template))))
    return out


def parity_set():
    """[(label, input fingerprint, thunk → hashes)] for the BFCL parity set."""
    bo = _load("toolgym_tests_bfcl_oracle", HERE / "bfcl_oracle.py")
    from toolgym.env.reward.ast_match import match_calls
    from toolgym.env.reward.engine import score_trajectory
    from toolgym.env.reward.trajectory import StepRecord, Trajectory
    from toolgym.env.tasks.suite import load_bfcl_category
    from toolgym.env.types import ParsedAction, ToolCall

    out = []
    for cat in bo.CATEGORIES:
        suite_tasks = {t.id: t for t in load_bfcl_category(cat)}
        for bt in bo.load_category(cat):
            task = suite_tasks[bt.id]
            for label, raw in bo.generate_cases(bt, 0):
                calls = bo.json_roundtrip(raw)
                tcalls = tuple(ToolCall(n, a) for n, a in calls)

                def run(task=task, tcalls=tcalls):
                    traj = Trajectory(steps=(StepRecord(output="", parsed=ParsedAction("json", calls=tcalls)),))
                    v = match_calls(tcalls, task.ground_truth, task.tools, language=task.language)
                    return _result_hashes(score_trajectory(task, traj), v)

                out.append((f"parity {bt.id} {label}", repr((bt.id, label, json.dumps(calls, sort_keys=True))), run))
    return out


def _inputs_hash(items) -> str:
    h = hashlib.sha256()
    for _, fp, _ in items:
        h.update(fp.encode("utf-8", "backslashreplace"))
        h.update(b"\0")
    return h.hexdigest()


def compute() -> dict:
    sets = {"realistic": realistic_set(), "parity": parity_set()}
    return {name: {"inputs": _inputs_hash(items), "labels": [lab for lab, _, _ in items], "hashes": [f() for _, _, f in items]}
            for name, items in sets.items()}


def write_reference(res: dict) -> None:
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(REFERENCE, "wt", encoding="utf-8", compresslevel=9) as f:
        header = {name: {"inputs": s["inputs"], "n": len(s["hashes"])} for name, s in res.items()}
        f.write(json.dumps(header, sort_keys=True) + "\n")
        for name in sorted(res):
            f.writelines(h + "\n" for h in res[name]["hashes"])


def read_reference() -> dict:
    with gzip.open(REFERENCE, "rt", encoding="utf-8") as f:
        header = json.loads(f.readline())
        lines = [line.rstrip("\n") for line in f]
    out, k = {}, 0
    for name in sorted(header):
        n = header[name]["n"]
        out[name] = {"inputs": header[name]["inputs"], "hashes": lines[k:k + n]}
        k += n
    return out


@pytest.fixture(scope="module")
def results() -> tuple[dict, dict]:
    if not REFERENCE.exists():
        pytest.fail(f"{REFERENCE} is missing: record it with `python {Path(__file__).relative_to(REPO)} --write`")
    return read_reference(), compute()


@pytest.mark.parametrize("name", ["realistic", "parity"])
def test_verdicts_and_components_unchanged(results, name):
    ref, now = results
    r, c = ref[name], now[name]
    assert c["inputs"] == r["inputs"] and len(c["hashes"]) == len(r["hashes"]), (
        f"the {name} inputs changed (generator or BFCL data), not the engine: regenerate the reference on purpose")
    num = [lab for lab, a, b in zip(c["labels"], c["hashes"], r["hashes"]) if a.split()[0] != b.split()[0]]
    text = [lab for lab, a, b in zip(c["labels"], c["hashes"], r["hashes"]) if a.split()[1] != b.split()[1]]
    assert not num, f"{len(num)} {name} items changed their numbers/verdict, e.g. {num[:5]}"
    assert not text, f"{len(text)} {name} items changed their feedback/details, e.g. {text[:5]}"


def test_sets_are_large_and_varied(results):
    _, now = results
    assert len(now["realistic"]["hashes"]) == REALISTIC_ITEMS
    assert len(now["parity"]["hashes"]) > 40_000
    kinds = {lab.split()[2].split("/")[0] for lab in now["realistic"]["labels"]}
    assert {"exact", "wrong_value", "missing_arg", "extra_arg", "type_change", "reorder_calls", "no_call"} <= kinds


if __name__ == "__main__":  # pragma: no cover
    if "--write" not in sys.argv:
        raise SystemExit("usage: test_score_reference.py --write   (records the reference with the engine as it is now)")
    sys.path.insert(0, str(REPO))
    res = compute()
    write_reference(res)
    print(f"wrote {REFERENCE} ({REFERENCE.stat().st_size} bytes): " + ", ".join(f"{k} {len(v['hashes'])}" for k, v in res.items()))
