#!/usr/bin/env bash
# Build the test images from Debian packages and push the service stand-ins to the local test
# registry the test VMs pull from. An image is rebuilt only when its inputs change (a hash of
# its folder and of its base image is kept as a label).
#   tests/images/build.sh            # everything
#   tests/images/build.sh vm timescaledb
# Where a registry is reachable, AICOST_TEST_TIMESCALEDB_UPSTREAM=timescale/timescaledb:2.29.2-pg17
# pulls the upstream image and uses it in place of the one built from source.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
base=aicost-test/debian:trixie
registry_name=aicost-test-registry
registry_port=${AICOST_TEST_REGISTRY_PORT:-5000}
network=aicost-test

timescale_image=aicost-test/timescaledb:2.29.2-pg17
# image name:tag | build folder | build args | base image (default: the Debian 13 base)
images=(
  "aicost-test/vm:trixie|vm||"
  "aicost-test/postgres:17|timescaledb|WITH_TIMESCALEDB=false|"
  "aicost-test/timescaledb-apache:pg17|timescaledb|WITH_TIMESCALEDB=true|"
  "$timescale_image|timescaledb-tsl||aicost-test/postgres:17"
  "aicost-test/prometheus:trixie|prometheus||"
  "aicost-test/alertmanager:trixie|alertmanager||"
  "aicost-test/node-exporter:trixie|node-exporter||"
  "aicost-test/caddy:trixie|proxy||"
  "aicost-test/registry:trixie|registry||"
)
# the images the test VMs pull through the registry
pushed=(aicost-test/prometheus:trixie aicost-test/alertmanager:trixie
        aicost-test/node-exporter:trixie aicost-test/caddy:trixie "$timescale_image" "$base")

label() { docker image inspect -f "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true; }

build_base() {
  docker image inspect "$base" >/dev/null 2>&1 && return
  local rootfs mirror
  rootfs=$(mktemp -d)
  mirror=$("$here/debian-mirror.sh")
  echo "images: debootstrap Debian 13 into $rootfs"
  debootstrap --variant=minbase --include=python3,ca-certificates trixie "$rootfs" "$mirror" \
    >/tmp/aicost-debootstrap.log 2>&1 || { tail -20 /tmp/aicost-debootstrap.log; exit 1; }
  tar -C "$rootfs" -c . | docker import - "$base" >/dev/null
  rm -rf "$rootfs"
}

build_one() {
  local name=$1 dir=$2 args=$3 from=${4:-$base} inputs
  if [ "$name" = "$timescale_image" ] && [ -n "${AICOST_TEST_TIMESCALEDB_UPSTREAM:-}" ]; then
    use_upstream "$AICOST_TEST_TIMESCALEDB_UPSTREAM" "$name"
    return
  fi
  inputs=$( (cd "$here/$dir" && find . -type f -print0 | sort -z | xargs -0 sha256sum;
             echo "$args"; docker image inspect -f '{{.Id}}' "$from") | sha256sum | cut -c1-16)
  if [ "$(label "$name" aicost.inputs)" = "$inputs" ]; then
    return
  fi
  echo "images: building $name"
  local build_args=(--build-arg "BASE_IMAGE=$from")
  [ -n "$args" ] && build_args+=(--build-arg "$args")
  if ! docker build "${build_args[@]}" --label "aicost.inputs=$inputs" -t "$name" "$here/$dir" \
       >/tmp/aicost-image-build.log 2>&1; then
    tail -30 /tmp/aicost-image-build.log >&2
    exit 1
  fi
}

use_upstream() {
  local upstream=$1 name=$2
  echo "images: using $upstream as $name"
  docker pull -q "$upstream" >/dev/null
  docker tag "$upstream" "$name"
}

start_registry() {
  docker network inspect "$network" >/dev/null 2>&1 || docker network create "$network" >/dev/null
  if [ "$(docker inspect -f '{{.State.Running}}' "$registry_name" 2>/dev/null)" != true ]; then
    docker rm -f "$registry_name" >/dev/null 2>&1 || true
    docker run -d --name "$registry_name" --network "$network" --restart unless-stopped \
      -p "127.0.0.1:$registry_port:5000" -v aicost-test-registry:/var/lib/docker-registry \
      aicost-test/registry:trixie >/dev/null
    for _ in $(seq 1 30); do
      curl -fsS "http://127.0.0.1:$registry_port/v2/" >/dev/null 2>&1 && break
      sleep 0.5
    done
  fi
}

push_one() {
  local name=$1 target="127.0.0.1:$registry_port/$1"
  # The registry keeps its volume between runs: push only what it does not hold yet.
  if [ "$(docker image inspect -f '{{.Id}}' "$target" 2>/dev/null)" = \
       "$(docker image inspect -f '{{.Id}}' "$name")" ] &&
     curl -fsS -o /dev/null "http://127.0.0.1:$registry_port/v2/${name%%:*}/manifests/${name##*:}" \
       -H 'Accept: application/vnd.docker.distribution.manifest.v2+json'; then
    return
  fi
  docker tag "$name" "$target"
  docker push -q "$target" >/dev/null
  echo "images: pushed $name to the test registry"
}

build_base
selected=("$@")
for entry in "${images[@]}"; do
  IFS='|' read -r name dir args from <<<"$entry"
  if ((${#selected[@]})); then
    match=false
    for s in "${selected[@]}"; do [ "$s" = "$dir" ] || [ "$s" = "$name" ] && match=true; done
    $match || continue
  fi
  build_one "$name" "$dir" "$args" "$from"
done
if ((${#selected[@]} == 0)); then
  start_registry
  for name in "${pushed[@]}"; do push_one "$name"; done
  # The cost monitor image is built in the test VMs, from wheels fetched here.
  "$here/app-wheels.sh"
fi
