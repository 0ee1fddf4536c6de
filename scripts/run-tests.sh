#!/usr/bin/env bash
# Runs the whole test suite. pytest's "no tests collected" (exit 5) is a failure here.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.tools/bin:$PATH"
mkdir -p test-artifacts
status=0
.venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 \
  --junitxml=test-artifacts/junit.xml "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit "$status"
