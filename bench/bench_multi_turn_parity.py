"""Multi-turn parity: toolgym's env vs BFCL's own ``multi_turn_checker`` on perturbed trajectories.

    make bfcl-venv && .venv/bin/python bench/bench_multi_turn_parity.py [--per-task 4] [--seed 0]

Generates ``per_task`` trajectories for every task of multi_turn_base / miss_func / miss_param /
long_context (ground truth, then 14 perturbation kinds in rotation, see
``tests/env/reward/mt_parity_gen.py``; 4 per task = 3,200), scores each with BFCL's checker in
its own venv (a long-lived worker; each trajectory in a child forked from a pristine process)
and with ``gym.make("toolgym/ToolUse-v0", template="pythonic")`` (one long-lived env, episodes
back to back; one action per model step with its calls in parallel, a plain-text action ending
each user turn), and prints the agreement of the task verdicts, per category and kind, and every
disagreement grouped by its cause.

Then every disagreement, plus a control sample of agreements, is replayed with a fresh env and a
fresh sandbox worker pool per episode (``--fresh-all`` replays everything: ~1.4 s per episode),
which separates leaks between episodes from checker differences. bench/multi_turn_parity.md
explains each disagreement class.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import random
import sys
import time
from pathlib import Path

HELPERS = Path(__file__).resolve().parents[1] / "tests" / "env" / "reward"


def _helper(name: str):
    spec = importlib.util.spec_from_file_location(name, HELPERS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def classify(o) -> str:
    """A disagreement's cause, from what each side reported."""
    tg, bf = o.toolgym, o.bfcl
    note = tg.get("note", "")
    calls = [c for steps in o.traj.turns for s in steps for c in s]
    if "truncated at max_steps" in note:
        return "toolgym truncated the episode at max_steps (BFCL limits steps per turn, not per episode)"
    if "episode ended after" in note:
        import ast

        positional = any(ast.parse(c, mode="eval").body.args for c in calls if _parses(c))
        return "parser: positional arguments end the turn" if positional else "episode shape: turn ended early"
    if "raised" in note:
        return "toolgym crash"
    if "score invalid" in note:
        return "toolgym score invalid"
    if str(bf.get("error_type", "")).startswith(("checker_crash", "worker_crash")):
        return f"BFCL checker crash ({bf['error_type']})"
    side = "BFCL passes, toolgym fails" if bf["valid"] else "BFCL fails, toolgym passes"
    first = (tg.get("errors") or ["?"])[0]
    what = "state" if "state differs" in first else ("results" if "never returned" in first else ("no call" if "no call" in first else "other"))
    return f"{side}: {bf.get('error_type') or what}"


def _parses(text: str) -> bool:
    import ast

    try:
        return isinstance(ast.parse(text, mode="eval").body, ast.Call)
    except SyntaxError:
        return False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-task", type=int, default=4, help="trajectories per task (ground truth + perturbations)")
    ap.add_argument("--seed", type=int, default=0, help="generation seed")
    ap.add_argument("--tasks-per-category", type=int, default=None, help="only the first N tasks of each category")
    ap.add_argument("--control", type=int, default=100, help="agreements replayed with a fresh env as a control")
    ap.add_argument("--fresh-all", action="store_true", help="replay every trajectory with a fresh env (slow)")
    ap.add_argument("--out", type=Path, default=None, help="write every outcome as JSON lines here")
    ap.add_argument("--probes", action="store_true",
                    help="also score the known-divergence probes (list arguments written as tuples / sets), reported apart")
    args = ap.parse_args(argv)

    run = _helper("mt_parity_run")
    gen = _helper("mt_parity_gen")
    problem = run.bfcl_venv_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    trajs = list(gen.generate(per_task=args.per_task, seed=args.seed, tasks_per_category=args.tasks_per_category))
    print(f"{len(trajs)} trajectories over {len({t.task_id for t in trajs})} tasks, {len({t.kind for t in trajs})} kinds")

    t0 = time.perf_counter()
    tally = run.Tally()
    outcomes = []
    for o in run.score_all(trajs):
        tally.add(o, o.traj.category, o.traj.kind)
        outcomes.append(o)
    dt = time.perf_counter() - t0
    print(f"\nlong-lived env: agreement {tally.agree}/{tally.n} = {100 * tally.rate:.2f}%  "
          f"(same first failing turn {100 * tally.same_turn / tally.n:.2f}%; {tally.n / dt:.1f} trajectories/s)")
    _table(tally)
    _disagreements("long-lived env", tally.disagreements)

    if args.fresh_all:
        subset = trajs
    else:
        bad = {o.traj.traj_id for o in tally.disagreements}
        good = [o.traj for o in outcomes if o.traj.traj_id not in bad]
        subset = [o.traj for o in tally.disagreements] + random.Random(args.seed).sample(good, min(args.control, len(good)))
    fresh = run.Tally()
    long_lived = {o.traj.traj_id: o for o in outcomes}
    flipped = 0
    for o in run.score_all(subset, fresh=True):
        fresh.add(o, o.traj.category, o.traj.kind)
        flipped += o.toolgym["valid"] != long_lived[o.traj.traj_id].toolgym["valid"]
    if args.fresh_all:
        print(f"\nfresh env per episode: agreement {fresh.agree}/{fresh.n} = {100 * fresh.rate:.2f}%")
    else:
        bad_ids = {d.traj.traj_id for d in tally.disagreements}
        still = {o.traj.traj_id for o in fresh.disagreements}
        fixed = sum(1 for tid in bad_ids if tid not in still)
        control_broken = sum(1 for o in fresh.disagreements if o.traj.traj_id not in bad_ids)
        est = tally.agree + fixed
        print(f"\nfresh env per episode, replaying the {len(bad_ids)} disagreements + {len(subset) - len(bad_ids)} "
              f"control agreements: {fresh.agree}/{fresh.n} agree ({control_broken} controls disagree); "
              f"verdicts that moved vs the long-lived env: {flipped}")
        print(f"fresh env per episode, all {tally.n}: agreement {est}/{tally.n} = {100 * est / tally.n:.2f}% "
              f"(the long-lived agreements counted as agreeing, as the controls do)")
    _disagreements("fresh env", fresh.disagreements)

    if args.probes:
        probe = run.Tally()
        for o in run.score_all(list(gen.probes(seed=args.seed))):
            probe.add(o, o.traj.kind)
        print(f"\nprobes (not in the agreement above): {probe.agree}/{probe.n} = {100 * probe.rate:.2f}%")
        _table(probe)
        _disagreements("probes", probe.disagreements)

    if args.out:
        with open(args.out, "w") as fh:
            for o in outcomes:
                fh.write(json.dumps({"traj": o.traj.traj_id, "kind": o.traj.kind, "turns": o.traj.turns, "bfcl": o.bfcl, "toolgym": o.toolgym}) + "\n")
    return 0


def _table(t) -> None:
    print(f"{'':32s} {'n':>6s} {'agree':>8s}")
    for key in sorted(t.by):
        n, a = t.by[key]
        print(f"{key:32s} {n:6d} {100 * a / n:7.2f}%")


def _disagreements(label: str, items) -> None:
    groups = collections.defaultdict(list)
    for o in items:
        groups[classify(o)].append(o)
    print(f"\n{label}: {len(items)} disagreements")
    for cause, os_ in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        print(f"  {len(os_):5d}  {cause}   e.g. {', '.join(o.traj.traj_id for o in os_[:3])}")


if __name__ == "__main__":
    sys.exit(main())
