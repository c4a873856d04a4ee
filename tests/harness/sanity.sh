#!/usr/bin/env bash
# Run `ansible-test sanity` on a copy of the collection laid out as
# ansible_collections/aicost/monitoring (ansible-test needs that path, outside this git tree).
# The copy holds what `ansible-galaxy collection build` ships: the app and the benchmarks are
# not part of the collection (ruff and pytest check them).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${AICOST_SANITY_DIR:-/tmp/aicost-sanity}
collection="$work/ansible_collections/aicost/monitoring"

# The pip version ansible-test bootstraps into its virtual environments.
pip_version=$(sed -n "s/^ *pip='\([0-9.]*\)',$/\1/p" \
  "$repo"/.venv/lib/python3.*/site-packages/ansible_test/_internal/python_requirements.py)
cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
mkdir -p "$(dirname "$cache")"
cp "$repo/tests/harness/get-pip-offline.py" "$cache"

mkdir -p "$collection"
rsync -a --delete --delete-excluded --exclude .venv --exclude .venv-litellm --exclude .cache --exclude .git --exclude __pycache__ \
  --exclude .pytest_cache --exclude .ruff_cache --exclude .hypothesis --exclude '*.egg-info' \
  --exclude /app --exclude /benchmarks "$repo/" "$collection/"
cd "$collection"
exec "$repo/.venv/bin/ansible-test" sanity --python 3.11 --color no "$@"
