"""Compliance and cost keys of the config (docs/compliance.md): the model they build, the rules
that refuse them where they cannot work, the min_age warning, and the min_age floor of retention."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from reconciler.config import load_config
from reconciler.config.rules import retention_horizon
from reconciler.errors import ConfigError
from reconciler.model import UTC, Config, Immutability, LockMode, Retention
from reconciler.plan.retention import Candidate, retain

BASE = """\
version: 1
services:
  analytics: {{dsn: "chdb:///tmp/x"}}
buckets:
  primary:
    provider: s3
    bucket: acme-ch-backups
{bucket}
schedules:
  daily:
    service: analytics
    bucket: primary
    cron: "0 3 * * *"
{schedule}
"""


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def load(bucket: str = "", schedule: str = "") -> Config:
    Path("cfg.yaml").write_text(BASE.format(bucket=bucket, schedule=schedule), encoding="utf-8")
    return load_config("cfg.yaml", {})


def test_bucket_keys_build_the_model() -> None:
    c = load(
        "    storage_class: STANDARD_IA\n"
        "    immutability: {mode: compliance, days: 30, recover_deleted: true}\n"
        "    price_per_gib_month: 0.0125",
        "    retention: {keep_daily: 7, min_age: 5d}",
    )
    b = c.buckets["primary"]
    assert b.storage_class == "STANDARD_IA" and b.price_per_gib_month == 0.0125
    assert b.immutability == Immutability(LockMode.COMPLIANCE, 30, True)
    assert c.schedules["daily"].retention.min_age == timedelta(days=5)
    assert c.warnings == ()
    plain = load()
    assert plain.buckets["primary"].immutability is None and plain.buckets["primary"].price_per_gib_month is None
    assert load("    immutability: {mode: governance, days: 1}").buckets["primary"].immutability == Immutability(
        LockMode.GOVERNANCE, 1, False
    )


def test_min_age_longer_than_the_rules_keep_is_a_warning() -> None:
    c = load(schedule="    retention: {keep_daily: 7, keep_weekly: 4, min_age: 90d}")
    [warning] = c.warnings
    assert "min_age=90d is longer than its retention rules keep a backup (about 28d)" in warning
    assert "(cfg.yaml:" in warning and "at schedules.daily.retention.min_age)" in warning
    assert load(schedule="    retention: {keep_daily: 7, keep_weekly: 4, min_age: 20d}").warnings == ()
    assert load(schedule="    retention: {min_age: 900d}").warnings == ()  # no rule: everything is kept


def test_retention_horizon_follows_the_rules_and_the_interval() -> None:
    day = timedelta(days=1)
    assert retention_horizon({}, day) is None
    assert retention_horizon({"keep_last": 10}, day) == 10 * day
    assert retention_horizon({"keep_last": 10}, timedelta(hours=6)) == timedelta(hours=60)
    assert retention_horizon({"keep_daily": 7}, timedelta(hours=6)) == 7 * day
    assert retention_horizon({"keep_daily": 7}, 2 * day) == 14 * day  # one backup every two days
    assert retention_horizon({"keep_monthly": 12, "keep_daily": 7}, day) == 372 * day
    assert retention_horizon({"keep_within": "48h"}, day) == 3 * day
    assert retention_horizon({"keep_daily": 0}, day) is None  # 0 is off


def test_glacier_needs_a_schedule_that_validates_nothing() -> None:
    with pytest.raises(ConfigError) as info:
        load("    storage_class: DEEP_ARCHIVE")  # after_export defaults to manifest
    [line] = info.value.lines()
    assert "storage_class DEEP_ARCHIVE, whose objects cannot be read until restored" in line
    assert "at schedules.daily.bucket)" in line
    ok = load("    storage_class: GLACIER", "    validate: {after_export: none}")
    assert ok.buckets["primary"].storage_class == "GLACIER"
    with pytest.raises(ConfigError):
        load("    storage_class: GLACIER", "    validate: {after_export: none, checksums_every: 7d}")
    assert load("    storage_class: GLACIER_IR").buckets["primary"].storage_class == "GLACIER_IR"


def test_storage_class_on_azure_is_not_supported_yet(tmp_path: Path) -> None:
    Path("cfg.yaml").write_text(
        "version: 1\nbuckets:\n  blob: {provider: azure, bucket: ch-backups, storage_class: STANDARD}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config("cfg.yaml", {})
    assert info.value.lines() == [
        "error: `storage_class` is not supported yet for azure buckets: storage_class is supported on s3 only; "
        "remove it, or use an s3 bucket (cfg.yaml:3:47 at buckets.blob.storage_class)"
    ]


def _daily(n: int, start: datetime) -> list[Candidate]:
    return [Candidate(f"b{i:02d}", start + timedelta(days=i), validated=True) for i in range(n)]


def test_min_age_keeps_every_younger_backup_whatever_the_rules() -> None:
    start = datetime(2026, 11, 1, 3, tzinfo=UTC)
    cands = _daily(20, start)
    now = start + timedelta(days=19, hours=2)  # b19 is 2 hours old
    _, pruned = retain(Retention(keep_last=2), cands, now)
    assert sorted(pruned) == [f"b{i:02d}" for i in range(18)]
    kept, pruned = retain(Retention(keep_last=2, min_age=timedelta(days=10)), cands, now)
    # ages 0d2h .. 19d2h: younger than 10d are b10 (9d2h) .. b19
    assert sorted(pruned) == [f"b{i:02d}" for i in range(10)]
    assert kept["b10"] == ["min_age=10d"] and "keep_last=2" in kept["b19"]
    # exactly min_age old is no longer younger than it
    _, pruned = retain(Retention(keep_last=2, min_age=timedelta(days=9, hours=2)), cands, now)
    assert "b10" in pruned and "b11" not in pruned
    # without now (callers that age nothing) min_age keeps nothing extra; a plan --now later frees them
    assert len(retain(Retention(keep_last=2, min_age=timedelta(days=10)), cands)[1]) == 18
    later = now + timedelta(days=30)
    assert len(retain(Retention(keep_last=2, min_age=timedelta(days=10)), cands, later)[1]) == 18


def test_min_age_keeps_the_bases_of_what_it_keeps() -> None:
    start = datetime(2026, 11, 1, 3, tzinfo=UTC)
    cands = [
        Candidate("f0", start, "full"),
        Candidate("i1", start + timedelta(days=1), "incremental", "f0"),
        Candidate("f2", start + timedelta(days=2), "full"),
    ]
    kept, pruned = retain(Retention(keep_last=1, min_age=timedelta(days=2)), cands, start + timedelta(days=2, hours=1))
    assert "i1" in kept and kept["f0"] == ["base of kept i1"] and pruned == {}


def test_backup_sql_carries_the_storage_class() -> None:
    from reconciler.clickhouse.sql import backup_sql
    from reconciler.model import Scope

    sql = backup_sql(Scope(("shop",)), "S3('u')", "op-1", storage_class="STANDARD_IA")
    assert sql == "BACKUP DATABASE `shop` TO S3('u') SETTINGS id = 'op-1', s3_storage_class = 'STANDARD_IA' ASYNC"
    assert "s3_storage_class" not in backup_sql(Scope(("shop",)), "S3('u')", "op-1")
