"""S3 Object Lock end to end (docs/compliance.md): chdb's BACKUP into moto buckets created with
Object Lock (COMPLIANCE, default retention 1 day) or with versioning only. Locks are real time
(the server stamps them); plans take their --now from tests/support/clock.py, so nothing here
depends on the date it runs."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler import clickhouse
from reconciler.model import UTC, iso, parse_iso
from reconciler.model.slots import slot_name
from tests.support.clock import base_day
from tests.support.e2e import keys, run, s3_bucket_doc, small_source, write_config

pytestmark = pytest.mark.clock

PRICE = 1000.0  # per GiB-month: large enough that the cost of a small backup is not rounded away


def _bucket(s3_server: Any, *, lock: tuple[str, int] | None = None, versioned: bool = False) -> Any:
    from reconciler.model import Bucket, Credentials, Provider

    name = f"l-{uuid.uuid4().hex[:8]}"
    s3 = s3_server.client()
    if lock is not None:
        s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
        rule = {"DefaultRetention": {"Mode": lock[0].upper(), "Days": lock[1]}}
        s3.put_object_lock_configuration(
            Bucket=name, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled", "Rule": rule}
        )
    else:
        s3.create_bucket(Bucket=name)
        if versioned:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return Bucket(
        "primary",
        Provider.S3,
        name,
        prefix="clickhouse",
        region=s3_server.region,
        endpoint=s3_server.endpoint,
        credentials=Credentials(access_key_id=s3_server.access_key, secret_access_key=s3_server.secret_key),
    )


def _config(tmp_path: Path, bucket: Any, db: str, **extra: Any) -> str:
    return str(
        write_config(
            tmp_path / "c.yaml",
            {
                "services": {"analytics": {"dsn": "${TEST_DSN}"}},
                "buckets": {"primary": {**s3_bucket_doc(bucket), **extra}},
                "schedules": {
                    "hourly": {
                        "service": "analytics",
                        "bucket": "primary",
                        "databases": [db],
                        "every": "1h",
                        "retention": {"keep_last": 1},
                    }
                },
            },
        )
    )


def _folder_bytes(s3: Any, bucket: str, prefix: str) -> int:
    return sum(size for key, size in keys(s3, bucket, prefix).items() if not key.endswith("/reconciler.json"))


def test_locked_backups_are_held_in_the_plan_and_by_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server: Any, chdb_dsn: str, ch: clickhouse.ClickHouse
) -> None:
    db = small_source(monkeypatch, s3_server, chdb_dsn, ch, "locked")
    bucket = _bucket(s3_server, lock=("compliance", 1))
    s3 = s3_server.client()
    cfg = _config(tmp_path, bucket, db, immutability={"mode": "compliance", "days": 1}, price_per_gib_month=PRICE)
    t0 = base_day()
    a, b = slot_name(t0), slot_name(t0 + timedelta(hours=1))
    for hours in (0, 1):  # A, then B (A stays: B is not validated when it is planned)
        r = run("apply", "-f", cfg, "--now", iso(t0 + timedelta(hours=hours)), "--auto-approve")
        assert r.code == 0, r.out + r.err
    folder_a = f"clickhouse/analytics/hourly/{a}/"
    # every object ClickHouse wrote got the default retain-until date
    head = s3.head_object(Bucket=bucket.bucket, Key=folder_a + ".backup")
    assert head["ObjectLockMode"] == "COMPLIANCE"
    lock_end = head["ObjectLockRetainUntilDate"]
    assert lock_end > datetime.now(UTC) + timedelta(hours=23)

    # two hours later retention would prune A: the plan holds it until its lock ends, and prices the bucket
    step = iso(t0 + timedelta(hours=2))
    r = run("plan", "-f", cfg, "--now", step, "--format", "json", "--stats")
    assert r.code == 0, r.err
    # when each lock ends is in the index (read once by the apply that wrote the sidecar): no HEAD per backup
    assert "storage requests:" in r.err and "S3 HeadObject" not in r.err, r.err
    plan = r.json()
    assert not [x for x in plan["actions"] if x["type"] == "prune"]
    [held] = plan["held"]
    assert (held["schedule"], held["bucket"], held["backup"]) == ("hourly", "primary", a)
    assert held["reason"] == "object lock (compliance)"
    assert lock_end - timedelta(seconds=1) <= parse_iso(held["until"]) <= lock_end + timedelta(minutes=5)
    assert not [d for d in plan["drift"] if d["type"] == "config_drift"]  # the lock is what is declared
    size_a = _folder_bytes(s3, bucket.bucket, folder_a)
    size_b = _folder_bytes(s3, bucket.bucket, f"clickhouse/analytics/hourly/{b}/")
    [storage] = plan["storage"]
    assert storage["bucket"] == "primary" and storage["bytes_now"] == size_a + size_b and size_a > 0
    # the export is estimated as B (the previous full); A is held, so nothing is taken away
    assert storage["bytes_after"] == size_a + 2 * size_b
    assert storage["monthly_cost_now"] == round((size_a + size_b) / 2**30 * PRICE, 6)
    assert storage["monthly_cost_after"] == round((size_a + 2 * size_b) / 2**30 * PRICE, 6)
    text = run("plan", "-f", cfg, "--now", step).out
    assert f"hourly/{a} in primary until" in text and "object lock (compliance)" in text
    md = run("plan", "-f", cfg, "--now", step, "--format", "markdown").out
    assert "**Held by an object lock**" in md and "| bucket | now | after |" in md

    r = run("apply", "-f", cfg, "--now", step, "--auto-approve")
    assert r.code == 0, r.out + r.err
    assert folder_a + ".backup" in keys(s3, bucket.bucket, folder_a)

    # planned as of after the lock ends, the prunes are planned ...
    later = iso(t0 + timedelta(days=3))
    plan = run("plan", "-f", cfg, "--now", later, "--format", "json").json()
    assert {x["backup"] for x in plan["actions"] if x["type"] == "prune"} == {a, b}
    assert plan["held"] == []
    # ... but the store still refuses them today: held, neither failed nor done, and nothing is lost
    r = run("apply", "-f", cfg, "--now", later, "--auto-approve")
    assert r.code == 0, r.out + r.err
    assert "2 held by an object lock" in r.out and "0 failed" in r.out, r.out
    assert "held: the object lock keeps" in r.out
    listing = keys(s3, bucket.bucket, "clickhouse/analytics/hourly/")
    assert folder_a + ".backup" in listing and folder_a + "reconciler.json" in listing
    assert f"clickhouse/analytics/hourly/{b}/.backup" in listing


def test_a_weaker_lock_is_config_drift(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server: Any, chdb_dsn: str, ch: clickhouse.ClickHouse
) -> None:
    db = small_source(monkeypatch, s3_server, chdb_dsn, ch, "weak")
    governance = _bucket(s3_server, lock=("governance", 1))
    cfg = _config(tmp_path, governance, db, immutability={"mode": "compliance", "days": 30})
    plan = run("plan", "-f", cfg, "--now", iso(base_day()), "--format", "json").json()
    [drift] = [d for d in plan["drift"] if d["type"] == "config_drift"]
    assert drift["bucket"] == "primary"
    assert "declares compliance, 30 days, but the bucket's default retention is governance, 1 days" in drift["detail"]
    plain = _bucket(s3_server)
    cfg = _config(tmp_path, plain, db, immutability={"mode": "compliance", "days": 1})
    plan = run("plan", "-f", cfg, "--now", iso(base_day()), "--format", "json").json()
    [drift] = [d for d in plan["drift"] if d["type"] == "config_drift"]
    assert "Object Lock is not enabled on the bucket" in drift["detail"]
    r = run("drift", "-f", cfg, "--now", iso(base_day()))
    assert r.code == 2 and "config_drift" in r.out


def test_a_prune_on_a_versioned_bucket_removes_every_version_and_marker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server: Any, chdb_dsn: str, ch: clickhouse.ClickHouse
) -> None:
    db = small_source(monkeypatch, s3_server, chdb_dsn, ch, "versioned")
    bucket = _bucket(s3_server, versioned=True)
    s3 = s3_server.client()
    cfg = _config(tmp_path, bucket, db, storage_class="STANDARD_IA")
    t0 = base_day()
    a = slot_name(t0)
    for hours in (0, 1, 2):  # A is pruned by the third apply (B is then the newest validated)
        r = run("apply", "-f", cfg, "--now", iso(t0 + timedelta(hours=hours)), "--auto-approve")
        assert r.code == 0, r.out + r.err
    folder_a = f"clickhouse/analytics/hourly/{a}/"
    left = s3.list_object_versions(Bucket=bucket.bucket, Prefix=folder_a)
    assert not left.get("Versions") and not left.get("DeleteMarkers"), left
    # the kept backup still has its files, and ClickHouse's deleted .lock is still a marker there
    b_folder = f"clickhouse/analytics/hourly/{slot_name(t0 + timedelta(hours=2))}/"
    listing = keys(s3, bucket.bucket, b_folder)
    assert b_folder + ".backup" in listing
    # ClickHouse wrote the backup's files in the bucket's storage_class (s3_storage_class)
    data = next(k for k in listing if "/data/" in k)
    assert s3.head_object(Bucket=bucket.bucket, Key=data).get("StorageClass") == "STANDARD_IA"


def test_a_deleted_manifest_is_deleted_backup_drift_and_recovered_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server: Any, chdb_dsn: str, ch: clickhouse.ClickHouse
) -> None:
    db = small_source(monkeypatch, s3_server, chdb_dsn, ch, "recover")
    bucket = _bucket(s3_server, lock=("compliance", 1))
    s3 = s3_server.client()
    immutability = {"mode": "compliance", "days": 1, "recover_deleted": True}
    cfg = _config(tmp_path, bucket, db, immutability=immutability)
    t0 = base_day()
    step = iso(t0 + timedelta(minutes=30))
    assert run("apply", "-f", cfg, "--now", iso(t0), "--auto-approve").code == 0
    folder = f"clickhouse/analytics/hourly/{slot_name(t0)}/"
    data = next(k for k in keys(s3, bucket.bucket, folder) if "/data/" in k)
    # behind the reconciler's back: the manifest and a data file deleted (delete markers: the lock keeps them)
    for key in (folder + ".backup", data):
        s3.delete_object(Bucket=bucket.bucket, Key=key)

    r = run("drift", "-f", cfg, "--now", step, "--format", "json")  # a full refresh
    assert r.code == 2, r.out + r.err
    [found] = [d for d in r.json()["drift"] if d["type"] == "deleted_backup"]
    assert found["backup"] == slot_name(t0) and "its version survives" in found["detail"], found
    assert not [d for d in r.json()["drift"] if d["type"] == "failed_backup"]  # not a failed attempt

    r = run("apply", "-f", cfg, "--now", step, "--refresh", "full", "--auto-approve")
    assert r.code == 0, r.out + r.err
    done = [line for line in r.err.splitlines() if " done " in line]
    recovered = f"recover/analytics/hourly/{slot_name(t0)}"
    assert any(recovered in x and "removed 2 delete markers" in x for x in done), r.err
    assert any(f"validate/analytics/hourly/{slot_name(t0)}" in x for x in done), r.err
    assert "0 export" in r.out  # the slot's backup comes back: no new attempt
    listing = keys(s3, bucket.bucket, folder)
    assert folder + ".backup" in listing and data in listing
    # ClickHouse's own .lock stays deleted: its delete marker is still the newest entry
    lock = s3.list_object_versions(Bucket=bucket.bucket, Prefix=folder + ".lock")
    assert [m["IsLatest"] for m in lock.get("DeleteMarkers", ())] == [True]
    assert folder + ".lock" not in listing

    r = run("drift", "-f", cfg, "--now", step)
    assert r.code == 0, r.out + r.err
    status = run("status", "-f", cfg, "--format", "json").json()
    [entry] = [b for s in status["schedules"] for b in s["backups"]]
    assert entry["name"] == slot_name(t0) and entry["state"] == "complete" and entry["validation"]["result"] == "ok"
    # and ClickHouse restores it
    url = f"{s3_server.endpoint}/{bucket.bucket}/{folder}"
    ch.command(
        f"RESTORE TABLE {db}.t AS {db}.back FROM S3('{url}', '{s3_server.access_key}', '{s3_server.secret_key}')"
    )
    assert ch.query(f"SELECT count() FROM {db}.back") == [(100,)]
