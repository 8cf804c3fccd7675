# toolgym server image: gRPC server + embedded BFCL v4 suite + bubblewrap sandbox (no training stack).
#
#   docker build -t toolgym:latest .
#   docker run --rm -p 127.0.0.1:50051:50051 --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
#       -v "$PWD/certs:/certs:ro" -e TOOLGYM_AUTH_TOKEN="$(cat token)" toolgym:latest \
#       serve --host 0.0.0.0 --tls-cert /certs/server.pem --tls-key /certs/server-key.pem
#
# The sandbox (bubblewrap) creates user namespaces; Docker's default seccomp profile forbids that,
# hence seccomp=unconfined for this container (code calls get toolgym's own seccomp filter inside
# the sandbox). See compose.yaml / k8s.yaml for the two-replica deployment.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml setup.py README.md NOTICE ./
COPY env ./env
COPY evals ./evals
COPY protos ./protos
COPY trainer ./trainer
RUN python -m venv /opt/toolgym \
 && /opt/toolgym/bin/pip install '.[store]' \
 # BFCL's wheel ships the data and backends; its pinned provider SDKs are not needed.
 && /opt/toolgym/bin/pip install --no-deps bfcl-eval==2026.3.23
# KAgentBench-faithful sentence splitting (reports say "approx" without it; needs network at build).
RUN XDG_CACHE_HOME=/opt/toolgym-cache /opt/toolgym/bin/python -m toolgym.evals.punkt fetch --if-missing \
 || echo "punkt parameters not fetched: EvalService reports tokenizer=approx"

FROM python:3.11-slim
ENV PATH=/opt/toolgym/bin:$PATH PYTHONUNBUFFERED=1 XDG_CACHE_HOME=/opt/toolgym-cache
COPY --from=build /opt/toolgym /opt/toolgym
COPY --from=build /opt/toolgym-cache /opt/toolgym-cache
# Run as an unprivileged user; sandbox workers get their own user namespace below it.
RUN useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin toolgym
USER 10001
EXPOSE 50051
STOPSIGNAL SIGTERM
# Health: the standard gRPC health service (open without a token); plaintext or TLS with $TOOLGYM_TLS_CA.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 CMD ["python", "-c", "import os,sys,grpc;from grpc_health.v1 import health_pb2 as h,health_pb2_grpc as g;a='127.0.0.1:'+os.environ.get('TOOLGYM_PORT','50051');ca=os.environ.get('TOOLGYM_TLS_CA');o=[('grpc.ssl_target_name_override',os.environ.get('TOOLGYM_TLS_SERVER_NAME','localhost'))];ch=grpc.secure_channel(a,grpc.ssl_channel_credentials(open(ca,'rb').read()),o) if ca else grpc.insecure_channel(a);sys.exit(0 if g.HealthStub(ch).Check(h.HealthCheckRequest(),timeout=4).status==1 else 1)"]
ENTRYPOINT ["toolgym"]
CMD ["serve", "--host", "0.0.0.0", "--port", "50051"]
