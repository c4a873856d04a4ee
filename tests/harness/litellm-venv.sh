#!/usr/bin/env bash
# Create .venv-litellm: LiteLLM (the differential test's reference) with the app, kept apart
# from .venv so LiteLLM's dependencies never reach the main test suite. Safe to re-run; it
# reinstalls only when the requirements or the app's dependencies change.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=.venv-litellm
requirements=app/tests/differential/requirements.txt
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
stamp="$venv/.requirements.sha256"
want=$(cat "$requirements" app/pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "litellm-venv: installing $requirements and the app into $venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q -r "$requirements" -e ./app
  echo "$want" >"$stamp"
fi
