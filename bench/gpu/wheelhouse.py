"""Fetch the cp312 wheels the GPU machine lacks, and pack them into carries of at most 56 MiB each.

The lent GPU machine has Python 3.12, torch and transformers, no internet, and takes at most 64 MiB of
carried files per command. This script runs HERE (with the project venv's Python, whose installed
versions are the ones the tests passed with):

1. roots: toolgym's core dependencies plus its ``train`` extra, plus ``bfcl-eval`` (its data, no deps)
   and setuptools (for the editable install of the working tree over there);
2. closes them over their installed requirements (importlib.metadata), pinned to the versions
   installed here, and drops what the device already ships: torch, transformers and everything they
   pull in (numpy, tokenizers, safetensors, huggingface-hub, ...);
3. downloads each pin as a wheel for CPython 3.12 / manylinux x86_64 with ``--no-deps``;
4. checks sizes (any wheel over the 64 MiB carry limit is an error) and packs the wheels
   first-fit-decreasing into ``.cache/gpu-wheels/bundle-N/`` folders of at most ``--bundle-mib``;
5. writes ``.cache/gpu-wheels/manifest.json`` and prints each bundle with the ``carry`` to use.

    .venv/bin/python bench/gpu/wheelhouse.py            # then see bench/gpu/README.md
    .venv/bin/python bench/gpu/wheelhouse.py --plan     # resolve and print, download nothing
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / ".cache" / "gpu-wheels"
CARRY_LIMIT_MIB = 64
# What the device ships (design.md §8: Python 3.12, torch 2.11, transformers 5.17): these and their
# requirements are never carried. Their pins there differ from ours, which is what the check is for.
DEVICE_HAS = ("torch", "transformers")
EXTRA_ROOTS = ("bfcl-eval", "setuptools")  # setuptools: the editable install over there (no build isolation)
NO_DEPS = {"bfcl-eval"}  # its declared pins (numpy==1.26.4, provider SDKs) are not needed: data and backends only
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "linux_x86_64", "any")


def canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _req_name(req: str) -> tuple[str, str]:
    """(name, marker) of a requirement string such as ``foo[bar]>=1; python_version < '3.12'``."""
    spec, _, marker = req.partition(";")
    return canon(re.split(r"[\s\[<>=!~(]", spec.strip(), maxsplit=1)[0]), marker.strip()


def _applies(marker: str) -> bool:
    """Markers of the device's interpreter: CPython 3.12 on Linux; requirements of extras are skipped."""
    if not marker:
        return True
    if "extra" in marker:
        return False
    from packaging.markers import Marker

    env = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
           "platform_system": "Linux", "platform_machine": "x86_64", "implementation_name": "cpython",
           "platform_python_implementation": "CPython", "os_name": "posix"}
    return Marker(marker).evaluate(env)


def closure(names: list[str]) -> set[str]:
    seen: set[str] = set()
    todo = [canon(n) for n in names]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        try:
            dist = md.distribution(n)
        except md.PackageNotFoundError:
            raise SystemExit(f"wheelhouse: {n!r} is not installed in this venv ({sys.executable}); run `make setup-dev` first")
        seen.add(n)
        if n in NO_DEPS:
            continue
        for req in dist.requires or []:
            dep, marker = _req_name(req)
            if _applies(marker):
                todo.append(dep)
    return seen


def roots() -> list[str]:
    proj = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(proj["dependencies"]) + list(proj.get("optional-dependencies", {}).get("train", []))
    return sorted({_req_name(r)[0] for r in reqs} | set(EXTRA_ROOTS))


def plan() -> dict[str, str]:
    device = closure(list(DEVICE_HAS))
    need = closure(roots()) - device - {canon("toolgym")}
    return {n: md.version(n) for n in sorted(need)}


def download(pins: dict[str, str], dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q", "--no-deps",
           "--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp", "--abi", "cp312",
           "--abi", "abi3", "--abi", "none", "-d", str(dest)]
    for p in PLATFORMS:
        cmd += ["--platform", p]
    failed = []
    for name, version in pins.items():
        r = subprocess.run(cmd + [f"{name}=={version}"], capture_output=True, text=True)
        if r.returncode != 0:  # sdist only (e.g. rouge-score): build it here; fine if it is pure Python
            r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "-q", "--no-deps",
                                "-w", str(dest), f"{name}=={version}"], capture_output=True, text=True)
            built = sorted(dest.glob(f"{canon(name).replace('-', '_')}-{version}-*.whl"))
            if r.returncode == 0 and built and all(w.name.endswith("-none-any.whl") for w in built):
                continue
            for w in built:
                w.unlink()
            failed.append(f"{name}=={version}: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else 'failed'}")
    if failed:
        raise SystemExit("wheelhouse: no cp312 wheel for:\n  " + "\n  ".join(failed))
    return sorted(dest.glob("*.whl"))


def pack(wheels: list[Path], bundle_mib: float) -> list[list[Path]]:
    limit = bundle_mib * 2**20
    too_big = [w for w in wheels if w.stat().st_size > CARRY_LIMIT_MIB * 2**20]
    if too_big:
        raise SystemExit("wheelhouse: over the 64 MiB carry limit on its own: " + ", ".join(w.name for w in too_big))
    bundles: list[list[Path]] = []
    sizes: list[int] = []
    for w in sorted(wheels, key=lambda w: -w.stat().st_size):
        size = w.stat().st_size
        for i, used in enumerate(sizes):
            if used + size <= limit:
                bundles[i].append(w)
                sizes[i] += size
                break
        else:
            bundles.append([w])
            sizes.append(size)
    return bundles


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--plan", action="store_true", help="print what would be fetched; download nothing")
    p.add_argument("--bundle-mib", type=float, default=56.0,
                   help="largest bundle (the carry limit is 64 MiB per call, working tree included)")
    args = p.parse_args(argv)
    if args.bundle_mib > CARRY_LIMIT_MIB:
        p.error(f"--bundle-mib {args.bundle_mib} is over the {CARRY_LIMIT_MIB} MiB carry limit")
    pins = plan()
    print(f"{len(pins)} packages to carry (device ships {', '.join(DEVICE_HAS)} and their requirements):")
    print("  " + " ".join(f"{n}=={v}" for n, v in pins.items()))
    if args.plan:
        return 0
    raw = OUT / "all"
    if raw.exists():
        shutil.rmtree(raw)
    wheels = download(pins, raw)
    for old in OUT.glob("bundle-*"):
        shutil.rmtree(old)
    manifest = {"pins": pins, "bundles": []}
    for i, group in enumerate(pack(wheels, args.bundle_mib), 1):
        d = OUT / f"bundle-{i}"
        d.mkdir(parents=True)
        for w in group:
            shutil.move(str(w), d / w.name)
        mib = sum((d / w.name).stat().st_size for w in group) / 2**20
        manifest["bundles"].append({"dir": str(d.relative_to(ROOT)), "mib": round(mib, 2), "wheels": [w.name for w in group]})
        print(f"bundle-{i}: {mib:6.1f} MiB, {len(group)} wheels  -> carry [\"{d.relative_to(ROOT)}\"]")
    shutil.rmtree(raw)
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2))
    print(f"manifest: {(OUT / 'manifest.json').relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
