"""The documented deployments run replicas on one shared Redis store with flags `toolgym serve`
actually accepts (a typo in compose.yaml or k8s.yaml would only show at deploy time)."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from toolgym.env.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[3]


def _serve_args(argv: list[str]):
    return build_parser().parse_args(argv)


def test_compose_replicas_share_redis():
    spec = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = spec["services"]
    replicas = [s for s in services.values() if str(s.get("command", "")).startswith("serve")]
    assert len(replicas) >= 2 and "redis" in services
    stores = set()
    for svc in replicas:
        args = _serve_args(shlex.split(svc["command"].replace("${TOOLGYM_1_ADDR:-toolgym-1:50051}", "x:1")
                                       .replace("${TOOLGYM_2_ADDR:-toolgym-2:50051}", "x:2")))
        stores.add(args.session_store)
        assert "redis" in svc["depends_on"]
    assert stores == {"redis://redis:6379/0"}


def test_k8s_is_a_plain_service_over_pods_sharing_redis():
    docs = list(yaml.safe_load_all((ROOT / "k8s.yaml").read_text()))
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("Deployment", "toolgym") in kinds and ("StatefulSet", "toolgym") not in kinds
    svc = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "toolgym")
    assert svc["spec"].get("clusterIP") != "None"  # plain: any pod serves any session
    dep = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "toolgym")
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    args = _serve_args(container["args"])
    assert args.session_store.startswith("redis://toolgym-redis.") and args.replica_id
