#!/usr/bin/env bash
# Installs the real peers the tests drive, at pinned versions, into .tools/
# (git-ignored): grpc_health_probe, grpcurl and ghz built from tools/go.mod,
# promtool built from tools/promtool/go.mod, and Python grpcio in a virtual environment. Already-installed tools are kept.
#
#   bash scripts/install-test-tools.sh        # then: npm test
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
mkdir -p "$tools/bin"

# --- Go tools: versions pinned in tools/go.mod and checked against tools/go.sum.
# Built from the module (not `go install pkg@version`) because that form also asks
# the module proxy for the version list, which some mirrors refuse.
if ! command -v go >/dev/null 2>&1; then
  echo "install-test-tools: Go is required (https://go.dev/dl/); apt-get install golang-go also works" >&2
  exit 1
fi
stamp="$tools/bin/.go-tools-$(sha256sum "$root/tools/go.sum" | cut -c1-16)"
if [[ -f "$stamp" && -x "$tools/bin/grpc-health-probe" && -x "$tools/bin/grpcurl" && -x "$tools/bin/ghz" ]]; then
  echo "install-test-tools: Go tools already built ($tools/bin)"
else
  echo "install-test-tools: building grpc-health-probe, grpcurl and ghz from tools/go.mod ..."
  (cd "$root/tools" && GOBIN="$tools/bin" go install \
    github.com/grpc-ecosystem/grpc-health-probe \
    github.com/fullstorydev/grpcurl/cmd/grpcurl \
    github.com/bojand/ghz/cmd/ghz)
  # The probe's usual name, as Kubernetes manifests call it.
  ln -sf grpc-health-probe "$tools/bin/grpc_health_probe"
  rm -f "$tools/bin"/.go-tools-*
  touch "$stamp"
fi

# --- promtool, pinned in tools/promtool/go.mod (its own module: Prometheus's dependency tree
# is large and needs a newer go directive). A cold build takes minutes; it is cached like the others.
promstamp="$tools/bin/.promtool-$(sha256sum "$root/tools/promtool/go.sum" | cut -c1-16)"
if [[ -f "$promstamp" && -x "$tools/bin/promtool" ]]; then
  echo "install-test-tools: promtool already built ($tools/bin)"
else
  echo "install-test-tools: building promtool from tools/promtool/go.mod (a cold build takes minutes) ..."
  (cd "$root/tools/promtool" && GOBIN="$tools/bin" go install github.com/prometheus/prometheus/cmd/promtool)
  rm -f "$tools/bin"/.promtool-*
  touch "$promstamp"
fi

# --- Python grpcio for the interoperability tests, pinned in test/python/requirements.txt.
if [[ -f "$root/test/python/requirements.txt" ]]; then
  venv="$tools/venv"
  if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
  fi
  req_stamp="$venv/.req-$(sha256sum "$root/test/python/requirements.txt" | cut -c1-16)"
  if [[ ! -f "$req_stamp" ]]; then
    "$venv/bin/pip" install --quiet -r "$root/test/python/requirements.txt"
    rm -f "$venv"/.req-*
    touch "$req_stamp"
  fi
  echo "install-test-tools: Python venv ready ($venv)"
fi
echo "install-test-tools: done"
