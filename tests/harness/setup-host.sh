#!/usr/bin/env bash
# Prepare this machine for the test suite: host packages, a running Docker engine and the
# Python tool chain. Safe to re-run; every step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/../.."

apt_packages=(docker.io debootstrap python3-venv git rsync curl jq postgresql-client)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup-host: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  if command -v systemctl >/dev/null && [ "$(ps -o comm= -p 1)" = systemd ]; then
    systemctl start docker
  else
    echo "setup-host: starting dockerd (no systemd here)"
    nohup dockerd >/var/log/dockerd.log 2>&1 &
  fi
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "setup-host: dockerd did not start, see /var/log/dockerd.log" >&2; exit 1; }
fi

venv=.venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
stamp="$venv/.requirements.sha256"
want=$(cat requirements-dev.txt app/pyproject.toml 2>/dev/null | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup-host: installing Python requirements into $venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q -r requirements-dev.txt
  if [ -f app/pyproject.toml ]; then "$venv/bin/pip" install -q -e './app[test]'; fi
  echo "$want" >"$stamp"
fi
