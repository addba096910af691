#!/usr/bin/env bash
# Builds the single-node Kubernetes that npm run test:cluster starts: the components
# pinned in tools/cluster/*/go.mod (every module hash checked against its go.sum),
# into a cache outside the repository. A finished build is reused; the first one takes
# about 40 minutes on 2 cores and prints a line per component as it goes.
#
#   bash scripts/cluster/build.sh          # prints the bin folder on its last line
#
# CLUSTER_CACHE (default ~/.cache/grpc-mtls-service/cluster) moves the cache.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
mods="$root/tools/cluster"
cache="${CLUSTER_CACHE:-$HOME/.cache/grpc-mtls-service/cluster}"
bin="$cache/bin"

if ! command -v go >/dev/null 2>&1; then
  echo "cluster build: Go is required (apt-get install golang-go, or https://go.dev/dl/)" >&2
  exit 1
fi
mkdir -p "$bin"

# build MODULE_DIR NAME PACKAGE [LDFLAGS]: one binary into a folder keyed by its module's
# go.mod and go.sum, skipped when that folder already holds it; bin/NAME links to it.
build() {
  local dir="$1" name="$2" pkg="$3" ldflags="${4:-}"
  local key out start ticker
  key="$(printf '%s\n' "$ldflags" | cat "$mods/$dir/go.mod" "$mods/$dir/go.sum" - | sha256sum | cut -c1-16)"
  out="$cache/$dir-$key"
  if [[ ! -x "$out/$name" ]]; then
    start=$SECONDS
    echo "cluster build: building $name ($pkg) ..."
    # A ticker so a long build (kube-apiserver: about 15 minutes) shows it is alive.
    (while sleep 60; do echo "cluster build: ... $name still building ($((SECONDS - start)) s)"; done) &
    ticker=$!
    mkdir -p "$out"
    if ! (cd "$mods/$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$out/$name.tmp" "$pkg"); then
      kill "$ticker" 2>/dev/null || true
      echo "cluster build: $name failed to build (module tools/cluster/$dir)" >&2
      exit 1
    fi
    kill "$ticker" 2>/dev/null || true
    wait "$ticker" 2>/dev/null || true
    mv "$out/$name.tmp" "$out/$name"
    echo "cluster build: $name built in $((SECONDS - start)) s"
  fi
  ln -sfn "$out/$name" "$bin/$name"
}

k8s_version="v1.37.2"
v="k8s.io/component-base/version"
k8s_ldflags="-X $v.gitVersion=$k8s_version -X $v.gitMajor=1 -X $v.gitMinor=37 -X $v.gitTreeState=clean -X $v.buildDate=1970-01-01T00:00:00Z"
k8s_ldflags="$k8s_ldflags -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version"
# In the order a cluster starts, so the first pieces can be tried while the rest build.
build etcd etcd go.etcd.io/etcd/server/v3
for cmd in kube-apiserver kubectl kube-controller-manager kube-scheduler kubelet kube-proxy; do
  build kubernetes "$cmd" "k8s.io/kubernetes/cmd/$cmd" "$k8s_ldflags"
done
build coredns coredns github.com/coredns/coredns
build kube-router kube-router github.com/cloudnativelabs/kube-router/v2/cmd/kube-router

echo "cluster build: all components ready"
echo "$bin"
