"""Adopting backups made before the reconciler, end to end on chdb and moto's S3 server: folders
written by a plain ``BACKUP ... TO S3(...)`` outside the reconciler, under a schedule's folder.
With ``adopt_unmanaged: true`` one whose manifest validates and holds the schedule's whole scope
gets a sidecar (kind and base from the manifest, slot from its name or else the manifest's
timestamp) and joins retention; a partial one is refused with a warning; without the flag
nothing changes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler import clickhouse
from reconciler.model import Bucket, parse_iso
from tests.support.clock import daily_slot, now_text
from tests.support.e2e import keys, read_json, run, s3_bucket_doc, unique, write_config

# Not run at shifted dates (no `clock` mark): the incremental's slot comes from the timestamp
# ClickHouse writes into its manifest, and chdb's ClickHouse ignores libfaketime, so under a
# shifted clock that slot would fall before its base's. Its times still come from the real clock.


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, s3_server: Any, chdb_dsn: str) -> None:
    monkeypatch.setenv("TEST_S3_KEY", s3_server.access_key)
    monkeypatch.setenv("TEST_S3_SECRET", s3_server.secret_key)
    monkeypatch.setenv("TEST_DSN", chdb_dsn)


def _backup_by_hand(
    ch: clickhouse.ClickHouse, s3_server: Any, bucket: str, key: str, what: str, base: str = ""
) -> None:
    """What an operator ran before the reconciler existed: plain SQL, no sidecar."""

    def s3(k: str) -> str:
        return f"S3('{s3_server.endpoint}/{bucket}/{k}', '{s3_server.access_key}', '{s3_server.secret_key}')"

    settings = f" SETTINGS base_backup = {s3(base)}" if base else ""
    ch.command(f"BACKUP {what} TO {s3(key)}{settings}")


def test_adopt_unmanaged_backups_made_by_plain_sql(
    tmp_path: Path, env: None, s3_server: Any, s3_bucket: Bucket, ch: clickhouse.ClickHouse
) -> None:
    s3 = s3_server.client()
    shop, users = unique("shop"), unique("users")
    for db in (shop, users):
        ch.command(f"CREATE DATABASE {db}")
        ch.command(f"CREATE TABLE {db}.t (id UInt64, v String) ENGINE = MergeTree ORDER BY id")
        ch.command(f"INSERT INTO {db}.t SELECT number, toString(number) FROM numbers(2000)")
    folder = "clickhouse/analytics/daily/"
    old = daily_slot(timedelta(days=-3))  # named like a slot: the slot comes from the name
    _backup_by_hand(ch, s3_server, s3_bucket.bucket, folder + old, f"DATABASE {shop}, DATABASE {users}")
    ch.command(f"INSERT INTO {shop}.t SELECT number, 'more' FROM numbers(2000, 100)")
    _backup_by_hand(  # an incremental on it, named freely: the slot comes from its manifest
        ch, s3_server, s3_bucket.bucket, folder + "manual-inc", f"DATABASE {shop}, DATABASE {users}", folder + old
    )
    _backup_by_hand(ch, s3_server, s3_bucket.bucket, folder + "only-shop", f"DATABASE {shop}")  # partial

    schedule: dict[str, Any] = {
        "service": "analytics",
        "bucket": "primary",
        "databases": [shop, users],
        "cron": "0 3 * * *",
    }
    doc = {
        "services": {"analytics": {"dsn": "${TEST_DSN}"}},
        "buckets": {"primary": s3_bucket_doc(s3_bucket)},
        "schedules": {"daily": schedule},
    }
    cfg = str(write_config(tmp_path / "c.yaml", doc))

    # without the flag nothing changes: reported as unmanaged, nothing planned for them
    plain = run("plan", "-f", cfg, "--now", now_text(), "--format", "json").json()
    assert not [a for a in plain["actions"] if a["type"] == "validate" and "adopt" in a]
    assert len([d for d in plain["drift"] if d["type"] == "unmanaged_backup"]) == 3
    assert not [w for w in plain["warnings"] if "adopt" in w]

    schedule["adopt_unmanaged"] = True
    schedule["retention"] = {"keep_last": 2}
    write_config(tmp_path / "c.yaml", doc)
    plan = run("plan", "-f", cfg, "--now", now_text(), "--format", "json")
    assert plan.code == 0, plan.err
    adopting = {a["backup"]: a for a in plan.json()["actions"] if a["type"] == "validate" and "adopt" in a}
    assert sorted(adopting) == sorted(["manual-inc", old])
    first, inc = adopting[old], adopting["manual-inc"]
    assert first["level"] == "manifest" and "adopt unmanaged folder" in first["reason"]
    assert first["adopt"]["kind"] == "full" and first["adopt"]["base"] is None
    assert first["adopt"]["slot"] == f"{old[:4]}-{old[4:6]}-{old[6:8]}T03:00:00Z"
    assert first["adopt"]["scope"] == {"databases": sorted([shop, users])}
    assert (inc["adopt"]["kind"], inc["adopt"]["base"], inc["depends_on"]) == ("incremental", old, [first["id"]])
    (refused,) = [w for w in plan.json()["warnings"] if "only-shop" in w]
    assert "does not hold the schedule's whole scope" in refused and f"database {users}" in refused

    applied = run("apply", "-f", cfg, "--now", now_text(), "--auto-approve")
    assert applied.code == 0, applied.out + applied.err
    sc = read_json(s3, s3_bucket.bucket, folder + old + "/reconciler.json")
    assert (sc["state"], sc["kind"], sc["base"], sc["slot"]) == ("complete", "full", None, first["adopt"]["slot"])
    assert [(v["level"], v["result"]) for v in sc["validations"]] == [("manifest", "ok")]
    sc_inc = read_json(s3, s3_bucket.bucket, folder + "manual-inc/reconciler.json")
    assert (sc_inc["kind"], sc_inc["base"], sc_inc["chain"]) == ("incremental", old, [old])
    assert parse_iso(sc_inc["slot"]) > parse_iso(sc["slot"])  # the manifest's timestamp: when it was taken
    assert folder + "only-shop/reconciler.json" not in keys(s3, s3_bucket.bucket, folder + "only-shop/")

    # from the next plan they are managed and count for retention: keep_last 2 keeps the adopted
    # incremental (taken after this plan's slot) and the next export, and the adopted full as their
    # base, so the export of this plan's slot is what goes
    after = run("plan", "-f", cfg, "--now", now_text(timedelta(days=1)), "--format", "json").json()
    unmanaged = [d["backup"] for d in after["drift"] if d["type"] == "unmanaged_backup"]
    assert unmanaged == ["only-shop"]
    assert not [a for a in after["actions"] if a["type"] == "validate" and "adopt" in a]
    assert [a["backup"] for a in after["actions"] if a["type"] == "prune"] == [daily_slot()]
