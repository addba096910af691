# syntax=docker/dockerfile:1
#
# grpc-mtls-service image: the mTLS server and the client CLI on Node 24 LTS, plus
# grpc_health_probe for the Kubernetes exec probes.
#
#   docker build -t grpc-mtls-service:0.1.0 .
#
# The tag follows package.json's version; k8s/*.yaml and the README use the same.
# Runs as the numeric user 10001 with nothing writable but the volumes Kubernetes
# mounts (readOnlyRootFilesystem works: the app writes no file).

# Base images, as build arguments whose defaults are the official images pinned to full
# versions: a rebuild gets the same Node and Go, and an upgrade is a reviewed change of
# these two lines. Where no registry can be reached, pass local images of exactly these
# versions instead (scripts/image/build-images.sh does, and reads the versions from here):
#   docker build --build-arg NODE_IMAGE=... --build-arg GO_IMAGE=... .
#
# GO_IMAGE is also pinned by digest: the index digest docker-library/repo-info records
# for golang:1.26.8-bookworm (repos/golang/remote/1.26.8-bookworm.md, the build of
# 2026-09-19). The tag is rebuilt on Debian updates, so the digest is what fixes it.
# NODE_IMAGE is pinned by tag only, for now: no published digest of
# node:24.22.3-bookworm-slim could be found to check against, and a digest nobody has
# checked would be a pin in name only. Add @sha256:<index digest> once it is read from
# the registry (docker buildx imagetools inspect node:24.22.3-bookworm-slim).
# Node 24.22.3 (2026-11-11) is a security release with fixes in TLS (mTLS session
# resumption, SNI) and HTTP/2 that this service uses.
ARG NODE_IMAGE=node:24.22.3-bookworm-slim
ARG GO_IMAGE=golang:1.26.8-bookworm@sha256:f4191582e1522dfc5980a6bdc0309a756f9697f3e7d0f199c7e26fc82ab324fd

# --- grpc_health_probe, built from source at a pinned version -------------------------
# Why build instead of downloading the release binary: the version and the hash of its
# source are already pinned in this repository (tools/go.mod, tools/go.sum: the same
# pins the tests use), while a release binary's sha256 would be a second pin that
# nothing here can check. The go command verifies every module it downloads against
# go.sum and stops on any mismatch; -mod=readonly forbids it to add or change a pin;
# GOTOOLCHAIN=local forbids it to fetch another Go. The grep lines make the pinned
# version and module hash visible here and fail the build if tools/ drifts from them.
FROM ${GO_IMAGE} AS probe
ENV CGO_ENABLED=0 GOFLAGS=-mod=readonly GOTOOLCHAIN=local
WORKDIR /src/tools
COPY tools/go.mod tools/go.sum ./
RUN grep -Eq '^[[:space:]]*github.com/grpc-ecosystem/grpc-health-probe v0\.4\.40$' go.mod \
 && grep -Fqx 'github.com/grpc-ecosystem/grpc-health-probe v0.4.40 h1:Lr1E28yjpR3D1V42tNDjrFB0Vk+4X0TCDSVfiWXo008=' go.sum
# A static binary (CGO off), so it runs on any base image. The last check reads the
# module version and hash the binary itself records (go version -m).
RUN go build -trimpath -ldflags='-s -w' -o /out/grpc_health_probe github.com/grpc-ecosystem/grpc-health-probe \
 && go version -m /out/grpc_health_probe \
    | grep -Eq '^[[:space:]]+mod[[:space:]]+github.com/grpc-ecosystem/grpc-health-probe[[:space:]]+v0\.4\.40[[:space:]]+h1:Lr1E28yjpR3D1V42tNDjrFB0Vk\+4X0TCDSVfiWXo008=$'

# --- build: the two entry points bundled into dist/, with the dev dependencies (esbuild) ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts/build.ts ./scripts/
COPY scripts/lib/bundle.ts ./scripts/lib/
# src/ without src/pki/ (.dockerignore): the certificate tool is not part of the image, and
# the bundle fails if anything it holds imports it.
COPY src ./src
RUN npm run build

# --- production dependencies only ----------------------------------------------------------
# Their code is in the bundle; node_modules/ ships for the files packages read at run time
# (grpc-health-check's and @grpc/reflection's protos) and for the CRL decoder, loaded on first
# use, from the same lock file. No install scripts: none of the runtime dependencies needs one,
# and none gets to run code at build time.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# --- runtime -----------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="grpc-mtls-service" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production
WORKDIR /app
# Everything stays owned by root (COPY's default): user 10001 may read it but not change
# it, even where the root file system is not mounted read-only.
COPY package.json ./
COPY proto ./proto
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=probe /out/grpc_health_probe /usr/local/bin/grpc_health_probe
# Numeric, so Kubernetes can check runAsNonRoot without a passwd entry; above 10000 so it
# matches no account on the host.
USER 10001:10001
EXPOSE 50051
# The server; the client Deployment sets its own command (node dist/client.cjs).
CMD ["node", "dist/server.cjs"]
