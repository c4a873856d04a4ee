#!/usr/bin/env bash
# healthy-after.sh VM reboot | kill SERVICE
# Causes the fault in the test VM, then prints the seconds until every service of the compose
# project is running and healthy again, with no converge in between. Fails after 300 s.
set -euo pipefail
vm=$1 fault=$2 service=${3:-}
compose() { docker exec "$vm" sh -c "cd /opt/aicost && docker compose $*" 2>/dev/null; }

all_healthy() {
  local want states
  want=$(compose config --services | wc -l) || return 1
  states=$(compose ps --all --format "'{{.State}} {{.Health}}'") || return 1
  [ "$want" -gt 0 ] && [ "$(grep -c '^running healthy$' <<<"$states")" -eq "$want" ]
}

start=$(date +%s.%N)
within() { (($(date +%s) - ${start%.*} < $1)); }

case $fault in
  reboot)
    docker restart --time 30 "$vm" >/dev/null
    ;;
  kill)
    id=$(compose ps --quiet "$service")
    restarts=$(docker exec "$vm" docker inspect --format '{{.RestartCount}}' "$id")
    pid=$(docker exec "$vm" docker inspect --format '{{.State.Pid}}' "$id")
    docker exec "$vm" kill -9 "$pid"
    # Wait until Docker has noticed the death before looking for health.
    until [ "$(docker exec "$vm" docker inspect --format '{{.RestartCount}}' "$id")" -gt "$restarts" ]; do
      sleep 0.2
      within 60 || {
        echo "$service was not restarted by Docker within 60 s:"
        docker exec "$vm" docker inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$id"
        exit 1
      }
    done
    ;;
  *) echo "usage: $0 VM reboot | kill SERVICE" >&2; exit 2 ;;
esac
until all_healthy; do
  sleep 1
  within 300 || {
    echo "not healthy 300 s after the $fault:"; compose ps --all; exit 1; }
done
awk "BEGIN {printf \"%s %s: every service healthy again after %.1f s\n\", \"$fault\", \"$service\", $(date +%s.%N) - $start}"
