#!/usr/bin/env bash
# Builds, with no container registry, the images the single-node cluster runs, and
# writes them as `docker save` tarballs for `ctr -n k8s.io images import`:
#   grpc-mtls-service.tar  grpc-mtls-service:<package.json version>, from the project's
#                          own Dockerfile, its base images given as local stand-ins of
#                          exactly the versions the Dockerfile pins (scripts/image/stand-ins.sh)
#   pause.tar              registry.k8s.io/pause:3.10, scripts/image/pause.c, FROM scratch
#   coredns.tar            registry.k8s.io/coredns/coredns:v1.15.0, FROM scratch, the binary
#                          the cluster build made (~/.cache/grpc-mtls-service/cluster/bin/coredns,
#                          or $COREDNS_BIN); skipped, with a message, until that binary exists
# Progress goes to stderr; the last line on stdout is the folder of the tarballs.
#
#   sudo scripts/image/build-images.sh [repo-root]
#
# Runs its own dockerd (scripts/image/dockerd.sh) and stops it on exit, also on
# failure. Its data root (~/.cache/grpc-mtls-service/docker) is kept between runs as
# the layer cache. Needs root and Debian's docker.io, containerd, runc, debootstrap,
# gcc, plus npm and go. Exit codes: 0 built; 1 cannot run here (not root, a tool or
# the Dockerfile's pins missing); 2 a build step failed (the message names it).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "${1:-$HERE/../..}" && pwd)"
CACHE="${GRPC_MTLS_CACHE:-$HOME/.cache/grpc-mtls-service}"
IMAGES="$CACHE/images"
COREDNS_BIN="${COREDNS_BIN:-$CACHE/cluster/bin/coredns}"
PAUSE_IMAGE=registry.k8s.io/pause:3.10
COREDNS_IMAGE=registry.k8s.io/coredns/coredns:v1.15.0
# Debian's client, of the daemon's own version, when both are installed.
DOCKER="$(command -v /usr/bin/docker || command -v docker || true)"

step() { echo "build-images: $*" >&2; }
# Runs a long step as a child and waits for it: bash runs a trap only between commands,
# so a SIGTERM during a foreground build would wait for the build to end; during `wait`
# the trap runs at once (and stopping dockerd ends the build).
in_background() {
  "$@" &
  wait $!
}
fail() {
  echo "build-images: $1" >&2
  exit "${2:-2}"
}

# --- can it run here? ------------------------------------------------------------------
[[ "$(id -u)" == 0 ]] || fail "needs root (it runs its own dockerd); run it with sudo" 1
missing=()
for tool in dockerd:docker.io containerd:containerd runc:runc debootstrap:debootstrap gcc:gcc \
  npm:npm go:golang-go flock:util-linux; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
done
[[ -n "$DOCKER" ]] || missing+=(docker.io)
((${#missing[@]} == 0)) || fail "missing tools; install them with: apt-get install ${missing[*]}" 1
[[ -f "$ROOT/Dockerfile" && -f "$ROOT/package.json" ]] || fail "no Dockerfile and package.json in $ROOT" 1

# The stand-ins' versions come from the Dockerfile's own defaults: one place to pin.
arg_default() { sed -n "s/^ARG $1=\(.*\)$/\1/p" "$ROOT/Dockerfile" | head -n1; }
node_image="$(arg_default NODE_IMAGE)"
go_image="$(arg_default GO_IMAGE)"
[[ "$node_image" =~ ^node:([0-9]+\.[0-9]+\.[0-9]+)-([a-z]+)-slim(@sha256:[0-9a-f]{64})?$ ]] ||
  fail "Dockerfile: ARG NODE_IMAGE=$node_image is not node:<x.y.z>-<suite>-slim[@sha256:...]" 1
node_version="${BASH_REMATCH[1]}" suite="${BASH_REMATCH[2]}"
[[ "$go_image" =~ ^golang:([0-9]+\.[0-9]+\.[0-9]+)-([a-z]+)(@sha256:[0-9a-f]{64})?$ ]] ||
  fail "Dockerfile: ARG GO_IMAGE=$go_image is not golang:<x.y.z>-<suite>[@sha256:...]" 1
go_version="${BASH_REMATCH[1]}"
[[ "${BASH_REMATCH[2]}" == "$suite" ]] || fail "Dockerfile: NODE_IMAGE and GO_IMAGE name different Debian suites" 1
app_version="$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$ROOT/package.json" | head -n1)"
[[ -n "$app_version" ]] || fail "package.json: no version" 1
APP_IMAGE="grpc-mtls-service:$app_version"

# --- a daemon of our own, stopped whatever happens -----------------------------------------
# shellcheck source=scripts/image/dockerd.sh
source "$HERE/dockerd.sh"
# shellcheck source=scripts/image/stand-ins.sh
source "$HERE/stand-ins.sh"
WORK="$(mktemp -d)"
unmount_under() {
  awk -v d="$1/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  dockerd_stop
  unmount_under "$WORK"
  rm -rf --one-file-system "$WORK"
  ((rc == 0)) || step "failed (exit $rc)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

started=$SECONDS
step "starting dockerd (data root $DOCKER_DIR/data)"
dockerd_start || fail "could not start dockerd" 2
mkdir -p "$IMAGES"

# Writes `docker save` of $1 to $IMAGES/$2 unless the tarball already holds that image.
save() {
  local image="$1" file="$IMAGES/$2" id
  id="$("$DOCKER" image inspect -f '{{.Id}}' "$image")"
  if [[ -s "$file" && "$(cat "$file.id" 2>/dev/null)" == "$id" ]]; then
    step "$file already holds $image ($id)"
    return 0
  fi
  step "docker save $image > $file"
  "$DOCKER" save -o "$file.tmp" "$image" || fail "docker save $image failed"
  mv "$file.tmp" "$file"
  echo "$id" >"$file.id"
}

# --- the project's image ----------------------------------------------------------------
stand_in_node "$node_version" "$suite" || fail "building the node:$node_version-$suite-slim stand-in failed"
stand_in_golang "$go_version" "$suite" || fail "building the golang:$go_version-$suite stand-in failed"
step "docker build $ROOT (Dockerfile) as $APP_IMAGE, NODE_IMAGE=$STAND_IN_NODE GO_IMAGE=$STAND_IN_GOLANG"
build_started=$SECONDS
# The build's output, each line stamped with the seconds since the build began.
build_log="$DOCKER_DIR/build.log"
docker_build() {
  DOCKER_BUILDKIT=0 "$DOCKER" build --network host --pull=false \
    --build-arg NODE_IMAGE="$STAND_IN_NODE" --build-arg GO_IMAGE="$STAND_IN_GOLANG" \
    -t "$APP_IMAGE" "$ROOT" 2>&1 | while IFS= read -r line; do
    printf '%4d s %s\n' $((SECONDS - build_started)) "$line"
  done >"$build_log"
}
in_background docker_build || {
  tail -n 30 "$build_log" >&2
  fail "docker build of $ROOT/Dockerfile failed (last lines above; all of it in $build_log)"
}
size="$("$DOCKER" image inspect -f '{{.Size}}' "$APP_IMAGE")"
step "built $APP_IMAGE in $((SECONDS - build_started)) s, $((size / 1000000)) MB"
# A first check that it runs as the pods run it: user 10001, read-only root, no network.
smoke() {
  "$DOCKER" run --rm --network none --read-only --user 10001:10001 --cap-drop ALL \
    --security-opt no-new-privileges "$APP_IMAGE" "$@"
}
got="$(smoke node --version)" || fail "$APP_IMAGE: node --version failed"
[[ "$got" == "v$node_version" ]] || fail "$APP_IMAGE runs Node $got, not the pinned v$node_version"
smoke node dist/server.cjs --help >/dev/null || fail "$APP_IMAGE: the server's --help failed"
smoke node dist/client.cjs --help >/dev/null || fail "$APP_IMAGE: the client's --help failed"
smoke grpc_health_probe -version >/dev/null 2>&1 || fail "$APP_IMAGE: grpc_health_probe -version failed"
step "$APP_IMAGE runs: Node $got, server and client --help, grpc_health_probe (user 10001, read-only root)"
save "$APP_IMAGE" grpc-mtls-service.tar

# A one-binary image FROM scratch: an import of a one-file tarball, labelled with the
# binary's source hash, so an unchanged source keeps the same image (and tarball).
# Usage: scratch_image <image> <source file> <dir holding the binary> <name> [--change ...]
scratch_image() {
  local image="$1" source="$2" dir="$3" name="$4" hash
  shift 4
  hash="$(sha256sum "$source" | cut -c1-16)"
  if [[ "$("$DOCKER" image inspect -f '{{ index .Config.Labels "grpc-mtls.source" }}' "$image" 2>/dev/null)" == "$hash" ]]; then
    return 0
  fi
  tar --numeric-owner --owner=0 --group=0 -C "$dir" -cf "$dir.tar" "$name"
  "$DOCKER" import --change "LABEL grpc-mtls.source=$hash" "$@" "$dir.tar" "$image" >/dev/null ||
    fail "docker import of $image failed"
}

# --- pause: a static binary of our own ---------------------------------------------------------
step "building $PAUSE_IMAGE from scripts/image/pause.c"
mkdir -p "$WORK/pause"
gcc -static -O2 -Wall -Wextra -Werror -o "$WORK/pause/pause" "$HERE/pause.c" || fail "compiling pause.c failed"
strip "$WORK/pause/pause"
# 65535: the user the upstream pause image runs as.
scratch_image "$PAUSE_IMAGE" "$HERE/pause.c" "$WORK/pause" pause \
  --change 'USER 65535:65535' --change 'ENTRYPOINT ["/pause"]'
save "$PAUSE_IMAGE" pause.tar

# --- CoreDNS: the cluster build's static binary ------------------------------------------------
if [[ -x "$COREDNS_BIN" ]]; then
  step "building $COREDNS_IMAGE from $COREDNS_BIN"
  mkdir -p "$WORK/coredns"
  cp -L "$COREDNS_BIN" "$WORK/coredns/coredns"
  scratch_image "$COREDNS_IMAGE" "$WORK/coredns/coredns" "$WORK/coredns" coredns \
    --change 'ENTRYPOINT ["/coredns"]'
  save "$COREDNS_IMAGE" coredns.tar
else
  step "SKIPPED $COREDNS_IMAGE: $COREDNS_BIN is not built yet (the cluster build makes it); run this again once it is"
fi

# The classic builder's cache is its untagged intermediate images, the earlier stages'
# (probe, build, deps) included: a plain prune would drop those on every run. Only
# untagged images older than a week go, so the data root does not grow without end.
"$DOCKER" image prune -f --filter until=168h >/dev/null
step "done in $((SECONDS - started)) s"
echo "$IMAGES"
