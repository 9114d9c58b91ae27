"""A real crash mid-copy: SIGKILL of `reconciler apply` while it writes a copy's files (held at
a data file's PUT by a proxy in front of the copy bucket). The copy is never complete (no
manifest), the next apply — a fresh process, after the lock's lease — redoes it, and the copy
is then complete and verified."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from reconciler import clickhouse
from reconciler.model import Bucket
from tests.support.e2e import keys, read_json, run, s3_bucket_doc, unique, write_config
from tests.support.processes import ROOT, cli
from tests.support.tcp_proxy import TcpProxy

NOW = "2026-11-25T06:00:00Z"
SLOT = "20261125T030000Z"


@pytest.mark.slow
def test_sigkill_mid_copy_is_redone_by_the_next_apply(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    s3_server: Any,
    s3_bucket: Bucket,
    chdb_dsn: str,
    ch: clickhouse.ClickHouse,
) -> None:
    monkeypatch.setenv("TEST_S3_KEY", s3_server.access_key)
    monkeypatch.setenv("TEST_S3_SECRET", s3_server.secret_key)
    monkeypatch.setenv("TEST_DSN", chdb_dsn)
    s3 = s3_server.client()
    db = unique("shop")
    ch.command(f"CREATE DATABASE {db}")
    ch.command(f"CREATE TABLE {db}.t (id UInt64, s String) ENGINE = MergeTree ORDER BY id")
    ch.command(f"INSERT INTO {db}.t SELECT number, toString(cityHash64(number)) FROM numbers(20000)")
    schedule: dict[str, Any] = {"service": "analytics", "bucket": "primary", "databases": [db], "cron": "0 3 * * *"}
    doc: dict[str, Any] = {
        "services": {"analytics": {"dsn": "${TEST_DSN}"}},
        "buckets": {"primary": s3_bucket_doc(s3_bucket)},
        "schedules": {"daily": schedule},
    }
    made = run("apply", "-f", str(write_config(tmp_path / "plain.yaml", doc)), "--now", NOW, "--auto-approve")
    assert made.code == 0, made.out + made.err  # the source backup, in this process's engine

    dr = f"t-{uuid.uuid4().hex[:8]}"
    s3_server.create_bucket(dr)
    proxy = TcpProxy(int(s3_server.endpoint.rsplit(":", 1)[1]))
    proxy.start()
    try:
        doc["buckets"]["dr"] = {**s3_bucket_doc(s3_bucket), "bucket": dr, "endpoint": proxy.endpoint}
        schedule["copies"] = [{"bucket": "dr", "validate": "checksums"}]
        # the copying process has an engine of its own (a copy needs none of its data)
        doc["services"]["analytics"]["dsn"] = f"chdb://{tmp_path / 'other-engine'}"
        cfg = str(write_config(tmp_path / "copies.yaml", doc))
        env = {**os.environ, "RECONCILER_LOCK_LEASE": "5s", "PYTHONPATH": str(ROOT)}
        folder = f"clickhouse/analytics/daily/{SLOT}/"
        hold = proxy.hold_request(f"PUT /{dr}/{folder}data/".encode())
        proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "apply", "-f", cfg, "--now", NOW, "--auto-approve"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            assert hold.caught.wait(120), proc.communicate(timeout=5)[0]
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        hold.release()

        present = keys(s3, dr, folder)
        assert folder + "reconciler.json" in present and folder + ".backup" not in present  # never complete
        assert read_json(s3, dr, folder + "reconciler.json")["state"] == "in_progress"

        time.sleep(5.5)  # the killed apply's lease ends
        again = cli(env, "apply", "-f", cfg, "--now", NOW, "--auto-approve", ok=(), timeout=300)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "abandoned" in again.stdout  # the plan said what it found
        sidecar = read_json(s3, dr, folder + "reconciler.json")
        assert sidecar["state"] == "complete"
        assert [(v["level"], v["result"]) for v in sidecar["validations"]] == [("checksums", "ok")]
        assert set(keys(s3, dr, folder)) == set(keys(s3, s3_bucket.bucket, folder))
    finally:
        proxy.stop()
