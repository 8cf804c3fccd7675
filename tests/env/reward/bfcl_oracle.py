"""BFCL's reference AST checker as a test oracle, BFCL data, and seeded model-output generation.

Used by ``test_bfcl_agreement.py``; also runnable on its own to print the agreement table::

    python tests/env/reward/bfcl_oracle.py
"""

from __future__ import annotations

import copy
import json
import math
import random
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

CATEGORIES = (
    "simple_python",
    "multiple",
    "parallel",
    "parallel_multiple",
    "live_simple",
    "live_multiple",
    "live_parallel",
    "live_parallel_multiple",
)
ORACLE_MODEL = "gorilla-openfunctions-v2"


# --------------------------------------------------------------------------- loading the oracle


class _AnyModelConfig(dict):
    """Stands in for ``MODEL_CONFIG_MAPPING``: every model reads as ``underscore_to_dot=False``."""

    def __missing__(self, key: str) -> Any:
        return types.SimpleNamespace(model_name=key, underscore_to_dot=False)


def load_oracle() -> types.ModuleType:
    """Import ``bfcl_eval.eval_checker.ast_eval.ast_checker`` without BFCL's provider SDKs.

    ``ast_checker`` imports ``bfcl_eval.constants.model_config``, which at module level imports the
    model handlers and through them every provider SDK (anthropic, openai, google-genai, ...); BFCL
    is installed with ``--no-deps`` so none of them exists and the import fails. The checker uses
    that module for one thing only: ``convert_func_name`` reads
    ``MODEL_CONFIG_MAPPING[model].underscore_to_dot`` to turn ``.`` into ``_`` in function names for
    providers that forbid dots. So before importing the checker we register a minimal module object
    under that name whose ``MODEL_CONFIG_MAPPING`` answers ``underscore_to_dot=False`` for every
    model — the value BFCL's own config has for ``gorilla-openfunctions-v2``, the model we name, i.e.
    names are compared as given. (A plain ``{}`` would be enough for names without a dot but raises
    ``KeyError`` on the many dotted BFCL names such as ``math.factorial``.) A real, already imported
    ``model_config`` is left alone.
    """
    name = "bfcl_eval.constants.model_config"
    if name not in sys.modules:
        stub = types.ModuleType(name)
        stub.__doc__ = "test stub: see tests/env/reward/bfcl_oracle.py"
        stub.MODEL_CONFIG_MAPPING = _AnyModelConfig()
        sys.modules[name] = stub
    from bfcl_eval.eval_checker.ast_eval import ast_checker

    return ast_checker


def oracle_verdict(checker: types.ModuleType, functions: list, calls: list[tuple[str, dict]], gt: list, category: str) -> dict:
    """BFCL's verdict for decoded calls ``[(name, args)]`` (its model-output form is ``[{name: args}]``)."""
    from bfcl_eval.constants.enums import Language

    model_output = [{n: a} for n, a in calls]
    return checker.ast_checker(functions, model_output, gt, Language.PYTHON, category, ORACLE_MODEL)


# --------------------------------------------------------------------------- data


def _data_file(rel: str):
    return resources.files("bfcl_eval").joinpath("data", *rel.split("/"))


def _read_jsonl(rel: str) -> list[dict]:
    with _data_file(rel).open("r", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@dataclass(frozen=True)
class BfclTask:
    id: str
    category: str
    functions: list  # BFCL format, as in the data file
    ground_truth: list  # [{name: {param: [allowed...]}}]


def load_category(category: str) -> list[BfclTask]:
    tasks = _read_jsonl(f"BFCL_v4_{category}.json")
    answers = {a["id"]: a["ground_truth"] for a in _read_jsonl(f"possible_answer/BFCL_v4_{category}.json")}
    return [BfclTask(t["id"], category, t["function"], answers[t["id"]]) for t in tasks]


# --------------------------------------------------------------------------- BFCL → JSON Schema

_LOCAL_MAP = {"dict": "object", "float": "number", "tuple": "array", "any": None}


def _local_convert(node: Any) -> Any:
    """Minimal BFCL → JSON Schema mapping keeping the original type as ``x-bfcl-type``."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k == "type":
            out["x-bfcl-type"] = v
            jt = _LOCAL_MAP.get(v, v) if isinstance(v, str) else None
            if jt is not None:
                out["type"] = jt
        elif k == "properties" and isinstance(v, dict):
            out[k] = {p: _local_convert(s) for p, s in v.items()}
        elif k == "items":
            out[k] = _local_convert(v)
        else:
            out[k] = v
    return out


def schema_converter() -> tuple[str, Callable[[dict], dict]]:
    """toolgym's own ``bfcl_to_json_schema`` when present, else the local minimal mapping."""
    try:
        from toolgym.env.tasks.schema import bfcl_to_json_schema

        probe = bfcl_to_json_schema({"type": "dict", "properties": {"x": {"type": "float"}}, "required": []})
        if probe["properties"]["x"].get("x-bfcl-type") == "float":
            return "toolgym.env.tasks.schema.bfcl_to_json_schema", bfcl_to_json_schema
    except Exception:
        pass
    return "local", _local_convert


def to_toolspecs(functions: list, convert: Callable[[dict], dict]):
    from toolgym.env.types import ToolSpec

    return tuple(ToolSpec(f["name"], f.get("description", ""), convert(f["parameters"])) for f in functions)


# --------------------------------------------------------------------------- model outputs

Calls = list  # list[tuple[str, dict]]


def _first(allowed: list) -> tuple[bool, Any]:
    for v in allowed:
        if v != "":
            return True, v
    return False, None


def _realize_template(template: Any, full: bool) -> Any:
    """A dict value from a BFCL dict template ``{key: [allowed...]}``: first allowed per key,
    keys whose allowed values include ``""`` left out unless ``full``."""
    if not isinstance(template, dict):
        return copy.deepcopy(template)
    out = {}
    for k, allowed in template.items():
        if not isinstance(allowed, list):
            continue
        if "" in allowed and not full:
            continue
        has, v = _first(allowed)
        if has:
            out[k] = copy.deepcopy(v)
    return out


def reference_calls(gt: list, full: bool = False, functions: list | None = None) -> Calls:
    """The ground truth as calls: first allowed value per param; optional ones (not required and
    ``""`` allowed) are omitted unless ``full``. With ``functions`` (BFCL format), dict-typed
    params (and arrays of dicts), whose allowed values are templates, are filled in."""
    fdesc = {f["name"]: f for f in functions or ()}
    out = []
    for entry in gt:
        ((name, params),) = entry.items()
        schema = fdesc.get(name, {}).get("parameters", {})
        props = schema.get("properties", {})
        required = schema.get("required", [])
        args = {}
        for p, allowed in params.items():
            if not isinstance(allowed, list):
                continue
            if "" in allowed and not full and p not in required:
                continue
            has, v = _first(allowed)
            if not has:
                continue
            ptype = props.get(p, {}).get("type")
            itype = (props.get(p, {}).get("items") or {}).get("type")
            if ptype == "dict" and isinstance(v, dict):
                v = _realize_template(v, full)
            elif ptype in ("array", "tuple") and itype == "dict" and isinstance(v, list):
                v = [_realize_template(x, full) for x in v]
            else:
                v = copy.deepcopy(v)
            args[p] = v
        out.append((name, args))
    return out


def _wrong_value(v: Any, rng: random.Random) -> Any:
    if isinstance(v, bool):
        return not v
    if isinstance(v, int):
        return v + rng.choice((1, 7919, -3))
    if isinstance(v, float):
        return v + rng.choice((0.5, 1.0, 1e-9))
    if isinstance(v, str):
        return v + rng.choice(("zq", " x", "1"))
    if isinstance(v, list):
        return (v + [v[0]]) if v else ["zq"]
    if isinstance(v, dict):
        if not v:
            return {"zq": 1}
        k = rng.choice(sorted(v))
        return {**v, k: _wrong_value(v[k], rng)}
    return "zq"


def _str_variants(s: str, rng: random.Random) -> list[tuple[str, str]]:
    out = [
        ("str_upper", s.upper()),
        ("str_swapcase", s.swapcase()),
        ("str_space_to_underscore", s.replace(" ", "_")),
        ("str_ignored_punct", rng.choice((".", "-", "*", "^", "/", ",")).join(s.split(" ")) + "."),
        ("str_space_per_char", " ".join(s)),
        ("str_quote_swap", s.replace("'", '"').replace('"', "'") if ("'" in s or '"' in s) else "'" + s + "'"),
        ("str_tab_for_space", s.replace(" ", "\t") if " " in s else s + "\t"),
        ("str_bang", s + "!"),
        ("str_strip_punct", "".join(c for c in s if c.isalnum())),
    ]
    return out


def _retype(kind: str, v: Any) -> tuple[bool, Any]:
    if kind == "int_to_float":
        return (type(v) is int), float(v) if type(v) is int else v
    if kind == "float_to_int":
        ok = type(v) is float and math.isfinite(v)
        return ok, int(v) if ok else v
    if kind == "int_to_str":
        return (type(v) in (int, float)), str(v)
    if kind == "bool_to_str":
        return (type(v) is bool), (str(v).lower() if type(v) is bool else v)
    if kind == "bool_to_int":
        return (type(v) is bool), int(v) if type(v) is bool else v
    if kind == "to_none":
        return True, None
    if kind == "list_to_tuple_str":
        return (type(v) is list), json.dumps(v)
    if kind == "list_reverse":
        return (type(v) is list and len(v) > 1 and v != v[::-1]), v[::-1] if type(v) is list else v
    if kind == "list_elems_upper":
        ok = type(v) is list and any(isinstance(x, str) for x in v)
        return ok, [x.upper() if isinstance(x, str) else x for x in v] if ok else v
    if kind == "list_int_to_float":
        ok = type(v) is list and any(type(x) is int for x in v)
        return ok, [float(x) if type(x) is int else x for x in v] if ok else v
    if kind == "dict_value_upper":
        ok = type(v) is dict and any(isinstance(x, str) for x in v.values())
        return ok, {k: (x.upper() if isinstance(x, str) else x) for k, x in v.items()} if ok else v
    if kind == "dict_drop_key":
        ok = type(v) is dict and len(v) > 0
        return ok, dict(list(v.items())[1:]) if ok else v
    if kind == "dict_extra_key":
        return (type(v) is dict), {**v, "zq_extra": 1} if type(v) is dict else v
    raise KeyError(kind)


_RETYPES = ("int_to_float", "float_to_int", "int_to_str", "bool_to_str", "bool_to_int", "to_none",
            "list_to_tuple_str", "list_reverse", "list_elems_upper", "list_int_to_float",
            "dict_value_upper", "dict_drop_key", "dict_extra_key")


def _clone(calls: Calls) -> Calls:
    return [(n, copy.deepcopy(a)) for n, a in calls]


def generate_cases(task: BfclTask, seed: int = 0) -> Iterator[tuple[str, Calls]]:
    """Deterministic model outputs for one task: the ground truth and its perturbations."""
    rng = random.Random(f"{seed}:{task.id}")
    gt = task.ground_truth
    fdesc = {f["name"]: f for f in task.functions}
    ref = reference_calls(gt, functions=task.functions)
    full = reference_calls(gt, full=True, functions=task.functions)
    yield "ground_truth", _clone(ref)
    if full != ref:
        yield "ground_truth_with_optionals", _clone(full)
    yield "empty", []

    def targets(calls: Calls) -> list[tuple[int, str]]:
        return [(i, p) for i, (_, a) in enumerate(calls) for p in a]

    # parameter-level perturbations on up to two random (call, param) targets each
    for base_name, base in (("", ref), ("full:", full)):
        tg = targets(base)
        if not tg:
            continue
        picks = rng.sample(tg, min(2, len(tg)))
        for i, p in picks:
            v = base[i][1][p]
            c = _clone(base)
            c[i][1][p] = _wrong_value(v, rng)
            yield base_name + "wrong_value", c
            for kind in _RETYPES:
                applicable, nv = _retype(kind, v)
                if applicable:
                    c = _clone(base)
                    c[i][1][p] = nv
                    yield base_name + kind, c
            if isinstance(v, str):
                for label, nv in _str_variants(v, rng):
                    c = _clone(base)
                    c[i][1][p] = nv
                    yield base_name + label, c
    # dropped required / optional params, extra params
    for i, (name, args) in enumerate(full):
        params = fdesc.get(name, {}).get("parameters", {})
        required = params.get("required", [])
        req = [p for p in args if p in required]
        opt = [p for p in args if p not in required]
        if req:
            c = _clone(full)
            del c[i][1][rng.choice(req)]
            yield "drop_required", c
        if opt:
            c = _clone(full)
            del c[i][1][rng.choice(opt)]
            yield "drop_optional", c
        c = _clone(ref)
        c[i][1]["zq_unknown_param"] = 1
        yield "extra_unknown_param", c
        extra = [p for p in params.get("properties", {}) if p not in args and p not in gt[i][name]]
        if extra:
            c = _clone(ref)
            c[i][1][rng.choice(extra)] = "zq"
            yield "extra_schema_param", c
        # every value of this call replaced with a wrong type
        c = _clone(ref)
        c[i] = (name, {p: ([] if isinstance(v, str) else "zq") for p, v in c[i][1].items()})
        yield "wrong_types_everywhere", c
        if i >= 3:
            break
    # function-name perturbations
    i = rng.randrange(len(ref)) if ref else 0
    if ref:
        name = ref[i][0]
        for label, nn in (("rename_suffix", name + "_v2"), ("rename_case", name.upper() if name != name.upper() else name.lower()),
                          ("rename_dot_underscore", name.replace(".", "_") if "." in name else name + "_")):
            c = _clone(ref)
            c[i] = (nn, c[i][1])
            yield label, c
        other = [f["name"] for f in task.functions if f["name"] != name]
        if other:
            c = _clone(ref)
            c[i] = (rng.choice(other), c[i][1])
            yield "other_offered_function", c
    # call-list perturbations
    if len(ref) > 1:
        yield "reorder_reverse", _clone(ref[::-1])
        perm = list(range(len(ref)))
        rng.shuffle(perm)
        yield "reorder_shuffle", _clone([ref[k] for k in perm])
        yield "reorder_full_reverse", _clone(full[::-1])
        c = _clone(ref)
        del c[rng.randrange(len(c))]
        yield "missing_call", c
        # swap the arguments of two same-name calls
        by: dict[str, list[int]] = {}
        for k, (n, _) in enumerate(ref):
            by.setdefault(n, []).append(k)
        same = [ks for ks in by.values() if len(ks) > 1]
        if same:
            a, b = rng.sample(rng.choice(same), 2)
            c = _clone(ref)
            c[a], c[b] = (c[a][0], c[b][1]), (c[b][0], c[a][1])
            yield "swap_same_name_args", c
            c = _clone(ref)
            c[a] = (c[b][0], copy.deepcopy(c[b][1]))
            yield "duplicate_in_place", c
    if ref:
        c = _clone(ref)
        c.append(copy.deepcopy(c[rng.randrange(len(c))]))
        yield "extra_duplicate_call", c
        c = _clone(ref)
        c.insert(0, copy.deepcopy(c[-1]))
        yield "extra_duplicate_call_first", c


def json_roundtrip(calls: Calls) -> Calls:
    """Decoded model output, as a JSON-based parser would hand it over."""
    return [(n, json.loads(json.dumps(a))) for n, a in calls]


if __name__ == "__main__":  # pragma: no cover
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from test_bfcl_agreement import format_table, run_agreement

    print(format_table(run_agreement()))
