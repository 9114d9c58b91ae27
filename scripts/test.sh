#!/usr/bin/env bash
# Set up (.venv, the package with its test extras) and run the whole test suite.
# Tests start their own servers (moto's S3 server, ...) on free loopback ports and stop them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export AWS_EC2_METADATA_DISABLED=true
exec .venv/bin/python -m pytest -q -n 2 "$@"
