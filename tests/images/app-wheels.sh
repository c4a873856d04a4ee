#!/usr/bin/env bash
# Download the wheels the cost monitor image installs (its dependencies from app/pyproject.toml,
# plus what building the app needs) for the Python of the Debian 13 test image, into DEST.
# Builds inside test VMs and containers cannot reach PyPI (only this machine trusts the TLS
# in between), so the host's pip fetches them and the image build installs offline.
# Skipped when DEST already holds the wheels for the current pyproject.toml.
#   tests/images/app-wheels.sh [DEST]        (default: .cache/app-wheels)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
dest=${1:-$repo/.cache/app-wheels}
python=${PYTHON:-$repo/.venv/bin/python}
base=aicost-test/debian:trixie

stamp="$dest/.inputs"
inputs=$( (cat "$repo/app/pyproject.toml"; docker image inspect -f '{{.Id}}' "$base") | sha256sum | cut -c1-16)
[ "$(cat "$stamp" 2>/dev/null || true)" = "$inputs" ] && exit 0

version=$(docker run --rm --entrypoint python3 "$base" -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')
mapfile -t requirements < <("$python" - "$repo/app/pyproject.toml" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))
print("\n".join(project["project"]["dependencies"] + project["build-system"]["requires"]))
PY
)
rm -rf "$dest"
mkdir -p "$dest"
echo "images: downloading the cost monitor's wheels for Python $version"
"$python" -m pip download -q --disable-pip-version-check --dest "$dest" --only-binary=:all: \
  --python-version "$version" --implementation cp --abi "cp$version" --abi abi3 --abi none \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform any "${requirements[@]}"
echo "$inputs" >"$stamp"
