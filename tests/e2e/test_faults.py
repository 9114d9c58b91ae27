"""Transient faults from the store — throttling, 5xx, connection resets — are retried with
backoff and jitter within a bound, then surfaced with what was tried. A fault-injecting HTTP
proxy on loopback sits between the reconciler (and ClickHouse) and moto's S3 server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler import clickhouse
from reconciler.model import Bucket
from tests.support.e2e import keys, run, s3_bucket_doc, unique, write_config
from tests.support.fault_proxy import FaultProxy

NOW = "2026-11-25T06:00:00Z"


@pytest.fixture
def proxy(s3_server: Any) -> Iterator[FaultProxy]:
    p = FaultProxy(s3_server.endpoint)
    p.start()
    yield p
    p.stop()


@pytest.fixture
def cfg(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    s3_server: Any,
    s3_bucket: Bucket,
    chdb_dsn: str,
    ch: clickhouse.ClickHouse,
    proxy: FaultProxy,
) -> str:
    monkeypatch.setenv("TEST_S3_KEY", s3_server.access_key)
    monkeypatch.setenv("TEST_S3_SECRET", "fault-secret-value")
    monkeypatch.setenv("TEST_DSN", chdb_dsn)
    db = unique("fault")
    ch.command(f"CREATE DATABASE {db}")
    ch.command(f"CREATE TABLE {db}.t (id UInt64) ENGINE = MergeTree ORDER BY id")
    ch.command(f"INSERT INTO {db}.t SELECT number FROM numbers(100)")
    doc = s3_bucket_doc(s3_bucket)
    doc["endpoint"] = proxy.endpoint
    return str(
        write_config(
            tmp_path / "c.yaml",
            {
                "services": {"analytics": {"dsn": "${TEST_DSN}"}},
                "buckets": {"primary": doc},
                "schedules": {
                    "daily": {"service": "analytics", "bucket": "primary", "databases": [db], "cron": "0 3 * * *"}
                },
            },
        )
    )


@pytest.mark.parametrize(
    "fault",
    ["503 SlowDown", "500 InternalError", "429 TooManyRequests", "reset"],
)
def test_passing_faults_are_ridden_out(
    fault: str, cfg: str, proxy: FaultProxy, s3_server: Any, s3_bucket: Bucket
) -> None:
    # two faults on the listing of the plan, two on the writes of the apply
    for match in ("GET /" + s3_bucket.bucket + "?list-type", "PUT /"):
        if fault == "reset":
            proxy.inject_reset(times=2, match=match)
        else:
            status, code = fault.split()
            proxy.inject(int(status), code, times=2, match=match)
    r = run("apply", "-f", cfg, "--now", NOW, "--auto-approve", "--stats")
    assert r.code == 0, r.out + r.err
    injected = [s for s in proxy.seen if s[2] != "forwarded"]
    assert len(injected) == 4, proxy.seen
    assert "20261125T030000Z/.backup" in "".join(keys(s3_server.client(), s3_bucket.bucket))
    assert run("plan", "-f", cfg, "--now", NOW, "--detailed-exitcode").code == 0


def test_a_lasting_fault_is_surfaced_with_what_was_tried(cfg: str, proxy: FaultProxy) -> None:
    proxy.inject(503, "SlowDown", times=1000)
    r = run("plan", "-f", cfg, "--now", NOW, "--format", "json")
    # the bucket cannot be read: drift, with what was tried, and no secret
    assert r.code == 0, r.err
    (d,) = [d for d in r.json()["drift"] if d["type"] == "missing_bucket"]
    assert "S3 HeadBucket" in d["detail"] and "failed 5 times: 503" in d["detail"]  # a HEAD has no body
    a = run("apply", "-f", cfg, "--now", NOW, "--auto-approve")
    assert a.code == 1
    line = a.err.strip().splitlines()[-1]
    assert line.startswith("error: S3 PutObject on s3://") and "failed 5 times" in line and "SlowDown" in line
    assert "fault-secret-value" not in r.out + r.err + a.out + a.err
    proxy.clear()
    assert run("apply", "-f", cfg, "--now", NOW, "--auto-approve").code == 0  # and once it passes, it converges
