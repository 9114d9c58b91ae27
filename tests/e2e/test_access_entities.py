"""``include_access`` end to end, as far as the embedded engine allows.

ClickHouse Cloud's "entire service" backup lists ``TABLE system.users, system.roles,
system.settings_profiles, system.row_policies, system.quotas, system.functions`` before ``ALL
EXCEPT DATABASES ...``. The embedded engine (chdb 4.4, ClickHouse 26.9) has no writable access
storage (``CREATE USER`` fails with ACCESS_STORAGE_FOR_INSERTION_NOT_FOUND) and its BACKUP does
not find those system tables (UNKNOWN_TABLE, code 60), so here the plan and the exact statement
are checked, and the export is seen to fail the way the engine makes it fail, recorded as such.
The SQL of the backup and of the restore is pinned in tests/unit/test_sql.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.model import Bucket
from tests.support.e2e import keys, read_json, run, s3_bucket_doc, write_config

NOW = "2026-11-25T06:00:00Z"
SLOT = "20261125T030000Z"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, s3_server: Any, chdb_dsn: str) -> None:
    monkeypatch.setenv("TEST_S3_KEY", s3_server.access_key)
    monkeypatch.setenv("TEST_S3_SECRET", s3_server.secret_key)
    monkeypatch.setenv("TEST_DSN", chdb_dsn)


def test_include_access_plans_the_entire_service_backup_and_the_engine_refuses_it(
    tmp_path: Path, env: None, s3_bucket: Bucket, s3_server: Any
) -> None:
    cfg = write_config(
        tmp_path / "config.yaml",
        {
            "services": {"analytics": {"dsn": "${TEST_DSN}"}},
            "buckets": {"primary": s3_bucket_doc(s3_bucket)},
            "schedules": {
                "entire": {"service": "analytics", "bucket": "primary", "cron": "0 3 * * *", "include_access": True}
            },
        },
    )
    plan = run("plan", "-f", str(cfg), "--now", NOW, "--format", "json")
    assert plan.code == 0, plan.err
    (export,) = [a for a in plan.json()["actions"] if a["type"] == "export"]
    assert export["scope"] == {"all": True, "access": True}
    assert "include_access" in export["reason"]

    applied = run("apply", "-f", str(cfg), "--now", NOW, "--auto-approve")
    assert applied.code == 1, applied.out + applied.err
    assert "UNKNOWN_TABLE" in applied.out + applied.err
    s3 = s3_server.client()
    key = f"clickhouse/analytics/entire/{SLOT}/reconciler.json"
    sidecar = read_json(s3, s3_bucket.bucket, key)
    assert sidecar["state"] == "failed" and sidecar["scope"] == {"all": True, "access": True}
    assert "system" in sidecar["operation"]["error"] and "UNKNOWN_TABLE" in sidecar["operation"]["error"]
    # nothing but the reconciler's own records: the engine wrote no backup
    assert not [k for k in keys(s3, s3_bucket.bucket, "clickhouse/analytics/entire/") if k.endswith("/.backup")]
