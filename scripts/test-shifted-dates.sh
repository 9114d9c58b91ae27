#!/usr/bin/env bash
# Run the tests that involve time (marker `clock`) as if today were another date, under
# libfaketime: the suite must pass on any date (decisions as of --now, records with the real
# time). Usage: bash scripts/test-shifted-dates.sh [+47d +400d ...] (default: +47d +400d).
#
# Python, moto and Azurite see the shifted clock; chdb's ClickHouse and fake-gcs-server (Go)
# read the clock without libc and do not. Debian's libfaketime 0.9.10 hangs timed lock waits
# unless FAKETIME_DONT_FAKE_MONOTONIC=1, and in that mode breaks time.sleep (EINVAL):
# tests/faketime/sleep_fix.py, loaded into every Python process of the venv through a .pth file
# for the duration of this run, sleeps with a timed wait instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! command -v faketime >/dev/null; then
  if command -v apt-get >/dev/null; then
    echo "setup: installing Debian's faketime" >&2
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get install -y -qq faketime >/dev/null 2>&1 || { $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq faketime >/dev/null; }
  else
    echo "error: faketime is not installed and apt-get is not available" >&2
    exit 1
  fi
fi
site=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
pth="$site/zz_reconciler_faketime_sleep.pth"
fix="$PWD/tests/faketime/sleep_fix.py"
echo "import os; exec(open('$fix').read(), {'__name__': 'faketime_sleep_fix'}) if os.environ.get('FAKETIME') else None" > "$pth"
trap 'rm -f "$pth"' EXIT
export AWS_EC2_METADATA_DISABLED=true FAKETIME_DONT_FAKE_MONOTONIC=1
offsets=("$@")
[ ${#offsets[@]} -gt 0 ] || offsets=(+47d +400d)
for offset in "${offsets[@]}"; do
  echo "--- tests that involve time, with the clock at $offset: $(faketime -f "$offset" date -u +%Y-%m-%dT%H:%M:%SZ) ---"
  faketime -f "$offset" .venv/bin/python -m pytest -q -n 2 -m clock -p no:cacheprovider
done
