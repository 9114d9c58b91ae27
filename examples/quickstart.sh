#!/usr/bin/env bash
# The quickstart, end to end: set up, start a local S3 server (moto) on a free loopback port,
# seed an embedded ClickHouse (chdb) with sample data, then validate -> plan -> apply -> status.
# Everything it starts is stopped when it ends; its files are under .demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

rm -rf .demo && mkdir -p .demo
PORT=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
.venv/bin/moto_server -H 127.0.0.1 -p "$PORT" > .demo/s3-server.log 2>&1 &
S3_PID=$!
trap 'kill $S3_PID 2>/dev/null || true; wait $S3_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if .venv/bin/python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/')" 2>/dev/null; then break; fi
  sleep 0.2
done

export QUICKSTART_DSN="chdb://$PWD/.demo/chdb"
export QUICKSTART_S3_ENDPOINT="http://127.0.0.1:$PORT"
export QUICKSTART_S3_KEY_ID=quickstart
export QUICKSTART_S3_SECRET=quickstart-secret
export AWS_EC2_METADATA_DISABLED=true

R=".venv/bin/reconciler"
CFG=examples/quickstart.yaml
set -x
.venv/bin/python examples/seed_quickstart.py
$R validate -f $CFG
$R plan -f $CFG
$R apply -f $CFG --auto-approve
$R status -f $CFG
$R plan -f $CFG --detailed-exitcode
set +x
