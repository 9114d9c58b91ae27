#!/usr/bin/env bash
# Create .venv and install the package with everything the demo and the tests need.
# Idempotent: a second run only checks that everything is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test,embedded]"
# Azurite (Microsoft's Azure Storage emulator) for the Azure tests: pinned in
# tests/azurite/package-lock.json, installed into tests/azurite/node_modules. `npm ci` runs only
# when that folder does not match the lock file (a stamp records the lock file it was made from).
if command -v npm >/dev/null; then
  azurite_lock=$(sha256sum tests/azurite/package-lock.json | cut -d' ' -f1)
  azurite_stamp=tests/azurite/node_modules/.installed-from-lock
  if [ ! -x tests/azurite/node_modules/.bin/azurite-blob ] || [ "$(cat "$azurite_stamp" 2>/dev/null)" != "$azurite_lock" ]; then
    npm ci --prefix tests/azurite --no-audit --no-fund --loglevel=error
    echo "$azurite_lock" > "$azurite_stamp"
  fi
else
  echo "setup: npm not found: Azurite is not installed and the Azure tests will fail (install Node.js and npm)" >&2
fi
