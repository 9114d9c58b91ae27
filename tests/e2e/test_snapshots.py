"""Snapshots end to end on chdb and moto's S3 server: a declared snapshot is made once by the next
apply into ``<prefix>/<service>/_snapshots/<name>/``, validated, restored from by name, never
touched by the schedule's retention, pruned after ``keep_until``; one deleted by hand is
``deleted_backup`` drift and not made again; one removed from the config is reported, kept."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler import clickhouse
from reconciler.model import Bucket
from tests.support.clock import base_day, now_text
from tests.support.e2e import keys, read_json, requests, run, s3_bucket_doc, unique, write_config

pytestmark = pytest.mark.clock  # --now and keep_until against the records' real times


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, s3_server: Any, chdb_dsn: str) -> None:
    monkeypatch.setenv("TEST_S3_KEY", s3_server.access_key)
    monkeypatch.setenv("TEST_S3_SECRET", s3_server.secret_key)
    monkeypatch.setenv("TEST_DSN", chdb_dsn)


def _count(ch: clickhouse.ClickHouse, table: str) -> int:
    return int(ch.query(f"SELECT count() FROM {table}")[0][0])


def test_snapshot_made_once_restored_kept_from_retention_and_pruned_after_keep_until(
    tmp_path: Path, env: None, s3_server: Any, s3_bucket: Bucket, ch: clickhouse.ClickHouse
) -> None:
    s3 = s3_server.client()
    db = unique("shop")
    ch.command(f"CREATE DATABASE {db}")
    ch.command(f"CREATE TABLE {db}.orders (id UInt64, note String) ENGINE = MergeTree ORDER BY id")
    ch.command(f"INSERT INTO {db}.orders SELECT number, toString(number) FROM numbers(3000)")
    keep_until = (base_day() + timedelta(days=1)).date()  # pruned from base_day + 2 days, 00:00 UTC
    doc: dict[str, Any] = {
        "services": {"analytics": {"dsn": "${TEST_DSN}"}, "staging": {"dsn": "${TEST_DSN}"}},
        "buckets": {"primary": s3_bucket_doc(s3_bucket)},
        "schedules": {
            "daily": {
                "service": "analytics",
                "bucket": "primary",
                "databases": [db],
                "cron": "0 3 * * *",
                "retention": {"keep_last": 1},
            }
        },
        "snapshots": {
            "pre-upgrade": {
                "service": "analytics",
                "bucket": "primary",
                "databases": [db],
                "keep_until": keep_until.isoformat(),
            }
        },
        "restores": {
            "before-upgrade": {
                "from": {"snapshot": "pre-upgrade"},
                "to": {"service": "staging", "databases": {db: f"{db}_pre"}},
            }
        },
    }
    cfg = str(write_config(tmp_path / "c.yaml", doc))
    assert run("validate", "-f", cfg).code == 0

    plan = run("plan", "-f", cfg, "--now", now_text(), "--format", "json")
    assert plan.code == 0, plan.err
    actions = {a["id"]: a for a in plan.json()["actions"]}
    export = actions["export/analytics/_snapshots/pre-upgrade"]
    assert export["snapshot"] == "pre-upgrade" and "schedule" not in export and export["kind"] == "full"
    folder = "clickhouse/analytics/_snapshots/pre-upgrade/"
    assert export["location"] == f"s3://{s3_bucket.bucket}/{folder}"
    assert actions["validate/analytics/_snapshots/pre-upgrade"]["depends_on"] == [export["id"]]
    restore = actions["restore/before-upgrade"]
    assert restore["snapshot"] == "pre-upgrade" and restore["backup"] == "pre-upgrade"
    assert restore["depends_on"] == [export["id"], "validate/analytics/_snapshots/pre-upgrade"]

    applied = run("apply", "-f", cfg, "--now", now_text(), "--auto-approve")
    assert applied.code == 0, applied.out + applied.err
    present = keys(s3, s3_bucket.bucket, folder)
    assert folder + ".backup" in present
    sidecar = read_json(s3, s3_bucket.bucket, folder + "reconciler.json")
    assert sidecar["schedule"] == "_snapshots" and sidecar["state"] == "complete"
    assert [(v["level"], v["result"]) for v in sidecar["validations"]] == [("manifest", "ok")]
    record = read_json(s3, s3_bucket.bucket, "clickhouse/.reconciler/snapshots/pre-upgrade.json")
    assert record["state"] == "made" and record["snapshot"] == "pre-upgrade"
    assert _count(ch, f"{db}_pre.orders") == 3000  # restored from the snapshot

    # made once: later rows, later plans, later days never make it again
    ch.command(f"INSERT INTO {db}.orders SELECT number, 'late' FROM numbers(3000, 500)")
    again = run("plan", "-f", cfg, "--now", now_text(timedelta(hours=1)), "--format", "json").json()
    assert [a["id"] for a in again["actions"]] == []
    assert again["drift"] == []

    # the schedule's retention (keep_last: 1) prunes its own backups, never the snapshot
    day1 = run("apply", "-f", cfg, "--now", now_text(timedelta(days=1)), "--auto-approve")
    assert day1.code == 0, day1.out + day1.err
    later = run("plan", "-f", cfg, "--now", now_text(timedelta(days=1, hours=1)), "--format", "json").json()
    assert [a["id"] for a in later["actions"] if a["type"] == "prune"] == [
        f"prune/analytics/daily/{(base_day()).replace(hour=3):%Y%m%dT%H%M%SZ}"
    ]

    # past the end of keep_until (UTC) the snapshot is pruned, and only then
    edge = (base_day() + timedelta(days=2)).replace(hour=0)
    before_end = run(
        "plan", "-f", cfg, "--target", "pre-upgrade", "--now", _iso(edge - timedelta(seconds=1)), "--format", "json"
    )
    assert [a["type"] for a in before_end.json()["actions"]] == []
    past = run("plan", "-f", cfg, "--target", "pre-upgrade", "--now", _iso(edge), "--format", "json").json()
    assert [(a["id"], a["snapshot"]) for a in past["actions"]] == [
        ("prune/analytics/_snapshots/pre-upgrade", "pre-upgrade")
    ]
    assert "keep_until" in past["actions"][0]["reason"]
    pruned = run("apply", "-f", cfg, "--target", "pre-upgrade", "--now", _iso(edge), "--auto-approve")
    assert pruned.code == 0, pruned.out + pruned.err
    assert keys(s3, s3_bucket.bucket, folder) == {}
    assert read_json(s3, s3_bucket.bucket, "clickhouse/.reconciler/snapshots/pre-upgrade.json")["state"] == "pruned"
    done = run("plan", "-f", cfg, "--target", "pre-upgrade", "--now", _iso(edge), "--format", "json").json()
    assert done["actions"] == [] and done["drift"] == []


def _iso(t: Any) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_snapshot_deleted_by_hand_is_drift_and_one_removed_from_config_is_kept(
    tmp_path: Path, env: None, s3_server: Any, s3_bucket: Bucket, ch: clickhouse.ClickHouse
) -> None:
    s3 = s3_server.client()
    db = unique("mig")
    ch.command(f"CREATE DATABASE {db}")
    ch.command(f"CREATE TABLE {db}.t (id UInt64) ENGINE = MergeTree ORDER BY id")
    ch.command(f"INSERT INTO {db}.t SELECT number FROM numbers(1000)")
    snap = {"service": "analytics", "bucket": "primary", "databases": [db]}
    doc: dict[str, Any] = {
        "services": {"analytics": {"dsn": "${TEST_DSN}"}},
        "buckets": {"primary": s3_bucket_doc(s3_bucket)},
        "snapshots": {"before-migration": snap, "before-reindex": snap},
    }
    cfg = str(write_config(tmp_path / "c.yaml", doc))
    assert "1 service, 1 bucket, 0 schedules, 0 restores, 2 snapshots" in run("validate", "-f", cfg).out
    saved = str(tmp_path / "plan.json")  # a saved plan of snapshot actions is applied exactly
    assert run("plan", "-f", cfg, "--now", now_text(), "--out", saved).code == 0
    applied = run("apply", "-f", cfg, saved)
    assert applied.code == 0, applied.out + applied.err
    assert "4 done, 0 failed" in applied.out

    # a warm plan reads the snapshots by folder: the listing of the records and a read of each, one
    # delimiter listing of `_snapshots/` and its index (written by that apply), never each file
    warm = run("plan", "-f", cfg, "--now", now_text(), "--stats", "--detailed-exitcode")
    assert warm.code == 0, warm.out + warm.err
    index = read_json(s3, s3_bucket.bucket, "clickhouse/.reconciler/index/analytics/_snapshots.json")
    assert sorted(index["backups"]) == ["before-migration", "before-reindex"]
    # the bucket check, the lock, the 2 records and the index; the records, `_snapshots/`
    assert requests(warm.err) == {"S3 HeadBucket": 1, "S3 GetObject": 4, "S3 ListObjectsV2": 2}, warm.err
    # a data file deleted behind the reconciler's back: a fast plan cannot see it, a full refresh does
    kept = "clickhouse/analytics/_snapshots/before-reindex/"
    data = next(k for k in sorted(keys(s3, s3_bucket.bucket, kept)) if "/data/" in k)
    body = s3.get_object(Bucket=s3_bucket.bucket, Key=data)["Body"].read()
    s3.delete_object(Bucket=s3_bucket.bucket, Key=data)
    assert run("plan", "-f", cfg, "--now", now_text(), "--detailed-exitcode").code == 0
    full = run("drift", "-f", cfg, "--now", now_text(), "--format", "json")
    assert full.code == 2, full.out + full.err
    (broken,) = full.json()["drift"]
    assert broken["type"] == "broken_backup" and "before-reindex" in broken["detail"], broken
    assert "a file was deleted, added or changed outside the reconciler" in broken["detail"], broken
    s3.put_object(Bucket=s3_bucket.bucket, Key=data, Body=body)

    # deleted by hand: drift, and never made again under that name
    gone = "clickhouse/analytics/_snapshots/before-migration/"
    for key in keys(s3, s3_bucket.bucket, gone):
        s3.delete_object(Bucket=s3_bucket.bucket, Key=key)
    drift = run("drift", "-f", cfg, "--now", now_text(), "--format", "json")
    assert drift.code == 2
    (entry,) = drift.json()["drift"]
    assert entry["type"] == "deleted_backup" and "before-migration" in entry["detail"]
    assert "not made again" in entry["detail"]
    plan = run("plan", "-f", cfg, "--now", now_text(), "--format", "json").json()
    assert plan["actions"] == []

    # removed from the config: left in the bucket and reported as unmanaged, never deleted
    del doc["snapshots"]["before-reindex"]
    write_config(tmp_path / "c.yaml", doc)
    kept = "clickhouse/analytics/_snapshots/before-reindex/"
    before = keys(s3, s3_bucket.bucket, kept)
    plan = run("plan", "-f", cfg, "--now", now_text(), "--format", "json").json()
    assert plan["actions"] == []
    unmanaged = [d for d in plan["drift"] if d["type"] == "unmanaged_backup"]
    assert len(unmanaged) == 1 and "before-reindex" in unmanaged[0]["detail"]
    assert "no longer declared" in unmanaged[0]["detail"]
    assert run("apply", "-f", cfg, "--now", now_text(), "--auto-approve").code == 0
    assert keys(s3, s3_bucket.bucket, kept) == before
    status = run("status", "-f", cfg, "--format", "json", "--now", now_text()).json()
    assert [(s["snapshot"], s["state"], s["declared"]) for s in status["snapshots"]] == [
        ("before-migration", "absent", True),
        ("before-reindex", "complete", False),
    ]
    text = run("status", "-f", cfg, "--now", now_text()).out
    assert "before-reindex" in text and "no longer declared" in text

    # the last snapshot of the bucket removed from the config too: drift (a full refresh) still
    # finds the undeclared one by its record; it is never deleted
    del doc["snapshots"]
    doc["schedules"] = {"daily": {"service": "analytics", "bucket": "primary", "databases": [db], "cron": "0 3 * * *"}}
    write_config(tmp_path / "c.yaml", doc)
    drift = run("drift", "-f", cfg, "--now", now_text(), "--format", "json")
    unmanaged = [d for d in drift.json()["drift"] if d["type"] == "unmanaged_backup"]
    assert len(unmanaged) == 1 and "before-reindex" in unmanaged[0]["detail"], drift.out
    assert keys(s3, s3_bucket.bucket, kept) == before
