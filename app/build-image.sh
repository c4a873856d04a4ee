#!/usr/bin/env bash
# Build the cost monitor image from a minimal context (the app and the shared schema file),
# not the whole repository.
#   app/build-image.sh [--tag TAG] [--base IMAGE] [--wheels DIR] [--offline]
# --wheels: a directory of wheels for the image's Python (see app/tests/integration/
# test_image.py for how the tests download them), used instead of PyPI with --offline.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
tag=aicost/cost-monitor:0.1.0
base=
wheels=
offline=
while (($#)); do
  case $1 in
    --tag) tag=$2; shift 2 ;;
    --base) base=$2; shift 2 ;;
    --wheels) wheels=$2; shift 2 ;;
    --offline) offline=1; shift ;;
    *) echo "build-image: unknown argument $1" >&2; exit 2 ;;
  esac
done

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
mkdir -p "$context/app" "$context/plugins/module_utils"
cp "$repo/app/Dockerfile" "$repo/app/pyproject.toml" "$context/app/"
cp -r "$repo/app/src" "$context/app/src"
find "$context/app/src" -name __pycache__ -prune -exec rm -rf {} +
cp "$repo/plugins/module_utils/timescaledb_schema.py" "$context/plugins/module_utils/"
if [ -n "$wheels" ]; then
  mkdir "$context/wheels"
  cp "$wheels"/*.whl "$context/wheels/"
fi

args=(-f "$context/app/Dockerfile" -t "$tag")
[ -n "$base" ] && args+=(--build-arg "BASE_IMAGE=$base")
[ -n "$offline" ] && args+=(--build-arg OFFLINE=1)
docker build "${args[@]}" "$context"
