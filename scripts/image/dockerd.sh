# shellcheck shell=bash
# A Docker daemon of our own for scripts/image/build-images.sh (sourced, not run):
# Debian's dockerd with its data and exec roots in the cache, its own socket, its own
# empty daemon.json, and nothing that touches the host's network: no bridge, no
# iptables rules, no ip_forward or masquerade change. Builds use --network host.
# The data root stays between runs (it is the layer cache); the daemon does not.
#
#   dockerd_start   # sets DOCKER_HOST; waits until the daemon answers
#   dockerd_stop    # stops it and removes what it left: mounts, cgroups, its containerd

DOCKER_DIR="${GRPC_MTLS_CACHE:-$HOME/.cache/grpc-mtls-service}/docker"
DOCKERD_PID=""
DOCKERD_CGROUPS_BEFORE=""

# The cgroup folders dockerd and its containerd create for build containers.
_dockerd_cgroups() {
  find /sys/fs/cgroup -maxdepth 3 -type d -name docker 2>/dev/null | sort
}

# Mount points under the daemon's folders (overlay2 layers, containerd's shm).
_dockerd_mounts() {
  awk -v d="$DOCKER_DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo
}

dockerd_start() {
  mkdir -p "$DOCKER_DIR/data" "$DOCKER_DIR/exec"
  # One build at a time per cache: a second caller waits here for the first. (dockerd
  # does not inherit the lock, so a run killed with SIGKILL frees it, and the next run
  # stops the daemon it left.)
  exec 8>"$DOCKER_DIR/lock"
  if ! flock -n 8; then
    echo "build-images: another build holds $DOCKER_DIR/lock; waiting (up to 30 min) ..." >&2
    flock -w 1800 8 || {
      echo "build-images: $DOCKER_DIR/lock still held after 30 min; giving up" >&2
      return 1
    }
  fi
  local pidfile="$DOCKER_DIR/dockerd.pid" stale
  stale="$(cat "$pidfile" 2>/dev/null || true)"
  if [[ -n "$stale" ]] && kill -0 "$stale" 2>/dev/null; then
    # We hold the lock, so the run that started it was killed (SIGKILL skips its trap).
    # Stop it only if it is this cache's daemon, never another process that reused the pid.
    if tr '\0' ' ' <"/proc/$stale/cmdline" | grep -Fq -- "--data-root $DOCKER_DIR/data "; then
      echo "build-images: stopping the dockerd a killed earlier run left (pid $stale)" >&2
      DOCKERD_PID="$stale"
      dockerd_stop
    else
      rm -f "$pidfile"
    fi
  fi
  if [[ -n "$(_dockerd_mounts)" ]]; then
    echo "build-images: mounts left under $DOCKER_DIR by an earlier, killed run; unmounting them" >&2
    _dockerd_mounts | sort -r | xargs -r -n1 umount -l
  fi
  DOCKERD_CGROUPS_BEFORE="$(_dockerd_cgroups)"
  # The system's /etc/docker/daemon.json must not change this daemon: one of our own,
  # which also moves the identity key dockerd 20.10 writes from /etc/docker/key.json.
  printf '{"deprecated-key-path": "%s"}\n' "$DOCKER_DIR/key.json" >"$DOCKER_DIR/daemon.json"
  export DOCKER_HOST="unix://$DOCKER_DIR/docker.sock"
  dockerd --config-file "$DOCKER_DIR/daemon.json" \
    --data-root "$DOCKER_DIR/data" --exec-root "$DOCKER_DIR/exec" \
    --pidfile "$pidfile" --host "$DOCKER_HOST" \
    --storage-driver overlay2 \
    --bridge none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    --log-level warn >"$DOCKER_DIR/dockerd.log" 2>&1 8>&- &
  DOCKERD_PID=$!
  local waited=0
  until "$DOCKER" version >/dev/null 2>&1; do
    if ! kill -0 "$DOCKERD_PID" 2>/dev/null; then
      echo "build-images: dockerd exited at start; its log ($DOCKER_DIR/dockerd.log) ends:" >&2
      tail -n 15 "$DOCKER_DIR/dockerd.log" >&2
      DOCKERD_PID=""
      return 1
    fi
    if ((waited >= 60)); then
      echo "build-images: dockerd did not answer on $DOCKER_HOST within 60 s (log: $DOCKER_DIR/dockerd.log)" >&2
      return 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
}

dockerd_stop() {
  if [[ -n "$DOCKERD_PID" ]] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
    kill -TERM "$DOCKERD_PID"
    local waited=0
    while kill -0 "$DOCKERD_PID" 2>/dev/null && ((waited < 30)); do
      sleep 1
      waited=$((waited + 1))
    done
    if kill -0 "$DOCKERD_PID" 2>/dev/null; then
      echo "build-images: dockerd (pid $DOCKERD_PID) ignored SIGTERM for 30 s; killing it" >&2
      kill -KILL "$DOCKERD_PID" 2>/dev/null || true
    fi
    wait "$DOCKERD_PID" 2>/dev/null || true
  fi
  DOCKERD_PID=""
  # Its containerd stops with it; one that outlived a killed dockerd is found by its
  # state folder, which only this daemon uses.
  local pid
  for pid in $(pgrep -f -- "--state $DOCKER_DIR/exec/containerd" || true); do
    kill -TERM "$pid" 2>/dev/null || true
  done
  _dockerd_mounts | sort -r | xargs -r -n1 umount -l
  local dir
  for dir in $(_dockerd_cgroups); do
    if ! grep -Fqx "$dir" <<<"$DOCKERD_CGROUPS_BEFORE"; then
      find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
    fi
  done
  rm -f "$DOCKER_DIR/docker.sock" "$DOCKER_DIR/dockerd.pid"
}
