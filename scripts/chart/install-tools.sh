#!/usr/bin/env bash
# Builds helm and kubeconform with Go (through the Go module proxy) when they are not on PATH, and
# prepares the Kubernetes JSON schemas kubeconform validates against (PyPI kubernetes-validate).
# Idempotent; prints the PATH entry to use. See docs/DEPLOYMENT.md "Getting helm and kubeconform".
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="$(go env GOPATH)/bin"
export PATH="$BIN:$PATH"
log() { echo "install-tools: $*" >&2; }

if ! command -v helm >/dev/null; then
  log "building helm v3.16.4 (first time: about 2-3 minutes)"
  K=helm.sh/helm/v3
  GOFLAGS=-mod=mod go install -ldflags "-X $K/internal/version.version=v3.16.4 \
    -X $K/pkg/lint/rules.k8sVersionMajor=1 -X $K/pkg/lint/rules.k8sVersionMinor=31 \
    -X $K/pkg/chartutil.k8sVersionMajor=1 -X $K/pkg/chartutil.k8sVersionMinor=31" \
    "$K/cmd/helm@v3.16.4" >&2
fi
if ! command -v kubeconform >/dev/null; then
  log "building kubeconform v0.8.0"
  GOFLAGS=-mod=mod go install github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0 >&2
fi
node scripts/chart/kube-schemas.mjs >&2
echo "$BIN"
