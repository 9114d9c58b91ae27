"""Pure decisions of snapshots, as-of restores and adoption (plan/snapshots.py, plan/asof.py,
plan/adopt.py) on hand-built observed states, and the manifest facts adoption reads."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest

from reconciler.clickhouse.manifest_facts import base_folder, parse_timestamp
from reconciler.model import (
    UTC,
    BackupState,
    DriftType,
    ObservedBackup,
    PruneAction,
    Restore,
    RestoreSource,
    RestoreTarget,
    Schedule,
    ScheduleInventory,
    Scope,
    Snapshot,
)
from reconciler.model.adoption import ManifestFacts
from reconciler.model.snapshots import ObservedSnapshot, SnapshotRecordInfo, SnapshotRecordState
from reconciler.plan import build_plan
from reconciler.plan.adopt import decide_adoptions
from reconciler.plan.asof import resolve_before
from reconciler.plan.schedules import ScheduleDecision
from reconciler.schemas import validate_plan
from tests.unit.test_plan_unit import NOW, backup, make

pytestmark = pytest.mark.clock


def with_snapshot(keep_until: date | None = None, observed_snapshot: ObservedSnapshot | None = None):  # type: ignore[no-untyped-def]
    config, observed = make([backup("20261125T030000Z")])
    sn = Snapshot("pre-upgrade", "analytics", "primary", Scope(databases=("shop",)), keep_until)
    config = replace(config, snapshots={"pre-upgrade": sn})
    if observed_snapshot is not None:
        observed = replace(observed, snapshots=(observed_snapshot,))
    return config, observed


def ids(plan) -> list[str]:  # type: ignore[no-untyped-def]
    """The snapshots' actions (the schedule beside them plans its own)."""
    return [a.id for a in plan.actions if a.snapshot]


def test_a_declared_snapshot_is_exported_then_validated_and_the_plan_is_schema_valid() -> None:
    config, observed = with_snapshot()
    plan = build_plan(config, observed, NOW)
    assert ids(plan) == ["export/analytics/_snapshots/pre-upgrade", "validate/analytics/_snapshots/pre-upgrade"]
    export = plan.actions[0]
    assert export.snapshot == "pre-upgrade" and export.schedule is None
    assert export.location == "s3://acme-ch-backups/clickhouse/analytics/_snapshots/pre-upgrade/"
    assert validate_plan(plan.to_json()) is None
    doc = plan.to_json()["actions"][0]
    assert doc["snapshot"] == "pre-upgrade" and "schedule" not in doc


def folder(state: BackupState = BackupState.COMPLETE, validated: bool | None = True) -> ObservedBackup:
    b = backup("pre-upgrade", state=state, validated=validated)
    return replace(b, slot=NOW - timedelta(days=1))


def made(state: SnapshotRecordState = SnapshotRecordState.MADE) -> SnapshotRecordInfo:
    return SnapshotRecordInfo(state, NOW - timedelta(days=1), "run-1")


def test_a_snapshot_deleted_by_hand_is_drift_and_not_made_again() -> None:
    config, observed = with_snapshot(
        observed_snapshot=ObservedSnapshot("pre-upgrade", "analytics", "primary", True, None, made())
    )
    plan = build_plan(config, observed, NOW)
    assert ids(plan) == []
    (d,) = [d for d in plan.drift if d.type == DriftType.DELETED_BACKUP]
    assert "not made again" in d.detail


def test_keep_until_is_the_end_of_that_day_utc() -> None:
    o = ObservedSnapshot("pre-upgrade", "analytics", "primary", True, folder(), made())
    config, observed = with_snapshot(date(2026, 11, 24), o)
    end = datetime(2026, 11, 25, tzinfo=UTC)
    assert ids(build_plan(config, observed, end - timedelta(seconds=1))) == []
    plan = build_plan(config, observed, end)
    assert ids(plan) == ["prune/analytics/_snapshots/pre-upgrade"]
    (prune,) = [a for a in plan.actions if a.snapshot]
    assert isinstance(prune, PruneAction) and prune.state == "complete"
    # pruned: nothing more, and no drift
    gone = ObservedSnapshot("pre-upgrade", "analytics", "primary", True, None, made(SnapshotRecordState.PRUNED))
    config, observed = with_snapshot(date(2026, 11, 24), gone)
    plan = build_plan(config, observed, end)
    assert ids(plan) == [] and not [d for d in plan.drift if d.backup == "_snapshots/pre-upgrade"]


def test_a_failed_attempt_is_removed_then_made_again() -> None:
    o = ObservedSnapshot("pre-upgrade", "analytics", "primary", True, folder(BackupState.FAILED, None), made())
    config, observed = with_snapshot(observed_snapshot=o)
    plan = build_plan(config, observed, NOW)
    by_id = {a.id: a for a in plan.actions}
    export = by_id["export/analytics/_snapshots/pre-upgrade"]
    assert export.depends_on == ("prune/analytics/_snapshots/pre-upgrade",)
    assert [d.type for d in plan.drift if d.backup == "_snapshots/pre-upgrade"] == [DriftType.FAILED_BACKUP]


def test_an_undeclared_snapshot_folder_is_reported_and_never_pruned() -> None:
    o = ObservedSnapshot("old-one", "analytics", "primary", False, folder(), made())
    config, observed = with_snapshot(observed_snapshot=o)
    config = replace(config, snapshots={})
    plan = build_plan(config, observed, NOW)
    assert not [a for a in plan.actions if a.snapshot]
    (d,) = [d for d in plan.drift if d.type == DriftType.UNMANAGED_BACKUP]
    assert "no longer declared" in d.detail


def test_restore_from_a_snapshot_waits_for_this_plans_export() -> None:
    config, observed = with_snapshot()
    r = Restore("back", RestoreSource(snapshot="pre-upgrade"), RestoreTarget("staging", {"shop": "shop_pre"}))
    config = replace(config, restores={"back": r})
    plan = build_plan(config, observed, NOW)
    restore = next(a for a in plan.actions if a.id == "restore/back")
    assert restore.snapshot == "pre-upgrade" and restore.depends_on == (
        "export/analytics/_snapshots/pre-upgrade",
        "validate/analytics/_snapshots/pre-upgrade",
    )


def test_as_of_is_strictly_before_t_and_skips_a_broken_chain() -> None:
    a = backup("20261120T030000Z")
    b = backup("20261121T030000Z", kind="incremental", base=a.name)
    c = backup("20261122T030000Z", kind="incremental", base=b.name)
    t = datetime(2026, 11, 22, 3, tzinfo=UTC)
    got = resolve_before([a, b, c], t)
    assert got.backup is b and got.chain == (a.name,)
    assert resolve_before([a, b, c], t + timedelta(seconds=1)).chain == (b.name, a.name)
    assert resolve_before([a, b, c], datetime(2026, 11, 20, 3, tzinfo=UTC)).backup is None
    broken = replace(b, validations=backup("x", validated=False).validations)
    got = resolve_before([a, broken, c], t + timedelta(hours=1))
    assert got.backup is a and [n for n, _ in got.passed_over] == [c.name]


def adopting(scope: Scope) -> Schedule:
    return Schedule(
        "daily", "analytics", "primary", scope, cron="0 3 * * *", adopt_unmanaged=True, prune_unmanaged=True
    )


def test_adoption_refuses_partial_scope_and_wins_over_prune_unmanaged() -> None:
    from reconciler.model import Bucket, Provider

    bucket = Bucket("primary", Provider.S3, "acme", prefix="p")
    ours = replace(backup("20261101T030000Z", state=BackupState.UNMANAGED), has_manifest=True)
    part = replace(backup("partial", state=BackupState.UNMANAGED), has_manifest=True)
    inv = ScheduleInventory("daily", "p/analytics/daily/", (ours, part))
    facts = {
        ours.name: ManifestFacts(timestamp=None, databases=("shop", "users")),
        part.name: ManifestFacts(timestamp=datetime(2026, 11, 2, tzinfo=UTC), databases=("shop",)),
    }
    d = ScheduleDecision()
    for name in (ours.name, part.name):
        d.actions.append(PruneAction(id=f"prune/{name}", backup=name, location="", state="unmanaged", reason="x"))
    decide_adoptions(adopting(Scope(databases=("shop", "users"))), bucket, inv, facts, None, d)
    adopt = [a for a in d.actions if getattr(a, "adopt", None)]
    assert [a.backup for a in adopt] == [ours.name]
    assert adopt[0].adopt == {
        "kind": "full",
        "base": None,
        "slot": "2026-11-01T03:00:00Z",
        "scope": {"databases": ["shop", "users"]},
    }
    assert [a.backup for a in d.actions if isinstance(a, PruneAction)] == ["partial"]
    (w,) = d.warnings
    assert "partial is not adopted" in w and "database users" in w

    # without the flag: nothing
    d2 = ScheduleDecision()
    decide_adoptions(replace(adopting(Scope()), adopt_unmanaged=False), bucket, inv, facts, (), d2)
    assert d2.actions == [] and d2.warnings == []


def test_manifest_base_and_timestamp() -> None:
    path = "clickhouse/analytics/daily/"
    assert base_folder("S3('http://127.0.0.1:5000/bk1/clickhouse/analytics/daily/B/')", path) == "B"
    assert base_folder("S3('http://h/bk1/clickhouse/analytics/other/B/')", path) is None
    assert base_folder("AzureBlobStorage('[HIDDEN]', 'c', 'clickhouse/analytics/daily/B/')", path) == "B"
    assert parse_timestamp("2026-11-25 03:00:01") == datetime(2026, 11, 25, 3, 0, 1, tzinfo=UTC)
    assert parse_timestamp("garbage") is None


def test_a_whole_service_schedule_adopts_only_a_backup_of_every_database_the_service_has() -> None:
    from reconciler.model import Bucket, Provider

    bucket = Bucket("primary", Provider.S3, "acme", prefix="p")
    whole = replace(backup("all", state=BackupState.UNMANAGED), has_manifest=True)
    inv = ScheduleInventory("daily", "p/analytics/daily/", (whole,))
    facts = {"all": ManifestFacts(timestamp=datetime(2026, 11, 2, tzinfo=UTC), databases=("shop", "users"))}
    d = ScheduleDecision()
    decide_adoptions(adopting(Scope()), bucket, inv, facts, ("shop", "users"), d)
    (a,) = d.actions
    assert a.adopt["scope"] == {"all": True} and a.adopt["slot"] == "2026-11-02T00:00:00Z"
    d = ScheduleDecision()
    decide_adoptions(adopting(Scope()), bucket, inv, facts, ("billing", "shop", "users"), d)
    assert d.actions == [] and "lacks database billing" in d.warnings[0]
    d = ScheduleDecision()  # the service cannot be reached: not decided now
    decide_adoptions(adopting(Scope()), bucket, inv, facts, None, d)
    assert d.actions == [] and "cannot be reached" in d.warnings[0]
