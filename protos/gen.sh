#!/usr/bin/env bash
# Regenerates the committed Python code for protos/toolgym/v1/*.proto.
# CI runs it and fails if the result differs from what is committed (see .ci/run).
set -euo pipefail
cd "$(dirname "$0")"
python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. --grpc_python_out=. toolgym/v1/*.proto
