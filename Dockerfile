# syntax=docker/dockerfile:1
# pruner as a container: `pruner daemon` by default, `pruner run` for one pass (a CronJob).
# Operating it (config, token, state, stop timeout): docs/operating.md.
# CI has no Docker engine: ci/check-deploy.sh lints this file with hadolint, and
# tests/test_deploy.py runs its ENTRYPOINT, CMD and HEALTHCHECK from a venv built the same way.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the wheel, installed with its dependencies into a venv at /opt/pruner -----------
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md config.example.yaml ./
COPY pruner ./pruner
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && python -m venv /opt/pruner \
    && /opt/pruner/bin/pip install --no-cache-dir /wheels/pruner-*.whl

# --- runtime: the venv on a slim Python, tini as PID 1, a numeric non-root user --------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="pruner" \
      org.opencontainers.image.description="Backup retention daemon for VPSBG cloud servers" \
      org.opencontainers.image.licenses="MIT"

# tini is pinned (hadolint DL3008) to bookworm's build: bump it with the base image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini=0.19.0-1+b3 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 pruner \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/pruner \
       --shell /usr/sbin/nologin pruner \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/pruner

COPY --from=build /opt/pruner /opt/pruner

# The config is mounted at /etc/pruner/config.yaml. The API token is read from the file
# /run/secrets/vpsbg-token when there is one (a Docker or Kubernetes secret: pruner reads
# $CREDENTIALS_DIRECTORY/vpsbg-token, as under systemd), else from $VPSBG_API_TOKEN;
# api.token_file in the config, when set, wins over both.
ENV PATH=/opt/pruner/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PRUNER_CONFIG=/etc/pruner/config.yaml \
    CREDENTIALS_DIRECTORY=/run/secrets

USER 10001:10001
WORKDIR /var/lib/pruner
# state_dir (the default /var/lib/pruner): lock, heartbeat, last plan
VOLUME ["/var/lib/pruner"]

# tini forwards signals to pruner: SIGHUP reloads its config, and SIGTERM lets requests on the
# wire finish: give `docker stop` more than api.timeout (docker run --stop-timeout 90, compose
# stop_grace_period: 90s).
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["pruner", "daemon"]
# Liveness only: the daemon's heartbeat is fresh (pass results are in the logs).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["pruner", "health"]
