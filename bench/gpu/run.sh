#!/usr/bin/env bash
# The GPU check of the bundled trainer, as one prepared script (see bench/gpu/README.md).
#
#   bench/gpu/run.sh --dry-run            tiny shapes on the CPU with the project venv (CI runs this)
#   bench/gpu/run.sh --install-only       on the device: install the carried wheel bundles, nothing else
#   bench/gpu/run.sh [bench_gpu args]     on the device: install what is missing, then the four timed runs
#
# On the device the wheels come from .cache/gpu-wheels/bundle-*/ (made here by bench/gpu/wheelhouse.py and
# carried one bundle per call: each call may carry 64 MiB). They go into .gpu-venv, a venv that sees the
# device's own torch and transformers (--system-site-packages) and survives between calls while the
# machine stays warm. The JSON summary goes to $OUT/gpu.json when $OUT is set (the device tool's folder).
set -euo pipefail
cd "$(dirname "$0")/../.."

mode=run
args=()
for a in "$@"; do
  case "$a" in
    --dry-run) mode=dry ;;
    --install-only) mode=install ;;
    *) args+=("$a") ;;
  esac
done

if [ "$mode" = dry ]; then
  py=${PYTHON:-.venv/bin/python}
  [ -x "$py" ] || py=python3
  exec "$py" bench/gpu/bench_gpu.py --dry-run ${args[@]+"${args[@]}"}
fi

venv=.gpu-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv --system-site-packages "$venv"
fi
pip=("$venv/bin/python" -m pip install --disable-pip-version-check -q --no-index --no-deps)
shopt -s nullglob
bundles=(.cache/gpu-wheels/bundle-*/)
for b in ${bundles[@]+"${bundles[@]}"}; do
  wheels=("$b"*.whl)
  [ ${#wheels[@]} -gt 0 ] && "${pip[@]}" "${wheels[@]}" && echo "installed ${#wheels[@]} wheels from $b"
done
# The working tree itself, editable, without build isolation (no index to fetch setuptools from).
if ! "$venv/bin/python" -c "import toolgym.env" 2>/dev/null; then
  "${pip[@]}" --no-build-isolation -e .
fi
missing=$("$venv/bin/python" - <<'PY'
import importlib.util
need = ["torch", "transformers", "trl", "peft", "accelerate", "datasets", "grpc", "grpc_health", "gymnasium", "bfcl_eval", "toolgym.env"]
print(" ".join(n for n in need if importlib.util.find_spec(n.split(".")[0]) is None))
PY
)
if [ -n "$missing" ]; then
  echo "bench/gpu/run.sh: still missing on this machine: $missing" >&2
  echo "  carry the remaining bundles (bench/gpu/wheelhouse.py prints them) with --install-only, one per call" >&2
  exit 3
fi
[ "$mode" = install ] && { echo "install complete"; exit 0; }

out=${OUT:-/tmp}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$out/nvidia-smi.txt" 2>&1 || true
exec timeout 470 "$venv/bin/python" bench/gpu/bench_gpu.py --device cuda --json-out "$out/gpu.json" ${args[@]+"${args[@]}"}
