"""A long apply renews its lock's lease; another apply is refused all along, not only for the
first lease."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from reconciler.model import Bucket
from tests.e2e.test_crash import SEED
from tests.support.e2e import keys, s3_bucket_doc, write_config
from tests.support.processes import ROOT, cli

NOW = "2026-11-25T06:00:00Z"
LOCK = "clickhouse/.reconciler/lock"


@pytest.mark.slow
def test_lease_is_renewed_while_a_long_export_runs(tmp_path: Path, s3_server: Any, s3_bucket: Bucket) -> None:
    dsn = f"chdb://{tmp_path / 'chdb'}"
    subprocess.run([sys.executable, "-c", SEED, dsn], check=True, timeout=300)
    cfg = write_config(
        tmp_path / "c.yaml",
        {
            "services": {"analytics": {"dsn": dsn}},
            "buckets": {"primary": s3_bucket_doc(s3_bucket)},
            "schedules": {
                "daily": {
                    "service": "analytics",
                    "bucket": "primary",
                    "databases": ["big"],
                    "cron": "0 3 * * *",
                    "validate": {"after_export": "checksums"},
                }
            },
        },
    )
    env = {
        **os.environ,
        "TEST_S3_KEY": s3_server.access_key,
        "TEST_S3_SECRET": s3_server.secret_key,
        "RECONCILER_LOCK_LEASE": "3s",
        "PYTHONPATH": str(ROOT),
    }
    s3, bucket = s3_server.client(), s3_bucket.bucket
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "apply", "-f", str(cfg), "--now", NOW, "--auto-approve"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    expiries: list[str] = []
    refused = 0
    deadline = time.monotonic() + 180
    while proc.poll() is None and time.monotonic() < deadline:
        if LOCK in keys(s3, bucket, LOCK):
            try:
                lock = json.loads(s3.get_object(Bucket=bucket, Key=LOCK)["Body"].read())
            except s3.exceptions.NoSuchKey:
                continue
            if not expiries or expiries[-1] != lock["lease_expires_at"]:
                expiries.append(lock["lease_expires_at"])
            if len(expiries) >= 3 and refused == 0:
                # past the first lease: a second apply is still refused, naming the holder
                other = cli(env, "apply", "-f", str(cfg), "--now", NOW, "--auto-approve", ok=(), timeout=120)
                if other.returncode == 0:
                    # only possible if the long apply ended meanwhile (a fast machine): nothing to do
                    assert proc.poll() is not None and "Nothing to do" in other.stdout, other.stdout + other.stderr
                else:
                    assert other.returncode == 1 and lock["lock_id"] in other.stderr, other.stderr
                refused += 1
        time.sleep(0.2)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, out
    assert len(expiries) >= 3, f"the lease was not renewed during a long apply: {expiries}"
    assert expiries == sorted(expiries)
    assert refused == 1  # a second apply was tried past the first lease
    assert LOCK not in keys(s3, bucket, LOCK)  # released at the end
