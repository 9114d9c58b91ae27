"""The planner is pure: (config, observed, now) -> plan. These tests build both by hand."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from reconciler.model import (
    UTC,
    ActionType,
    BackupState,
    Bucket,
    BucketState,
    Config,
    DriftType,
    ExportAction,
    Observed,
    ObservedBackup,
    Provider,
    Restore,
    RestoreAction,
    RestoreRecord,
    RestoreSource,
    RestoreTarget,
    Schedule,
    ScheduleInventory,
    Scope,
    Service,
    ServiceState,
    Validation,
    ValidationLevel,
    ValidationResult,
)
from reconciler.plan import build_plan
from reconciler.schemas import validate_plan

pytestmark = pytest.mark.clock  # also run at shifted dates (scripts/test-shifted-dates.sh)

NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


def slot(day: int, hour: int = 3) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


def backup(
    name: str,
    state: BackupState = BackupState.COMPLETE,
    kind: str | None = "full",
    base: str | None = None,
    validated: bool | None = True,
) -> ObservedBackup:
    from reconciler.model.slots import parse_backup_name

    parsed = parse_backup_name(name)
    vals = ()
    if validated is not None:
        vals = (
            Validation(
                ValidationLevel.MANIFEST,
                NOW - timedelta(hours=1),
                ValidationResult.OK if validated else ValidationResult.FAILED,
                "x",
            ),
        )
    return ObservedBackup(
        name=name,
        state=state,
        slot=parsed[0] if parsed else None,
        attempt=parsed[1] if parsed else 1,
        kind=kind if state != BackupState.UNMANAGED else None,
        base=base,
        has_manifest=state == BackupState.COMPLETE,
        validations=vals if state == BackupState.COMPLETE else (),
        error="boom" if state != BackupState.COMPLETE else None,
    )


def make(
    backups: list[ObservedBackup] = (),
    *,
    full_every: int | None = None,
    restores: dict | None = None,
    records: dict | None = None,
    reachable: bool = True,
    bucket_ok: bool = True,
) -> tuple[Config, Observed]:
    schedule = Schedule(
        name="daily",
        service="analytics",
        bucket="primary",
        scope=Scope(databases=("shop",)),
        cron="0 3 * * *",
        full_every=full_every,
    )
    config = Config(
        path="c.yaml",
        services={"analytics": Service("analytics", "chdb:///tmp/x"), "staging": Service("staging", "chdb:///tmp/x")},
        buckets={"primary": Bucket("primary", Provider.S3, "acme-ch-backups", prefix="clickhouse")},
        schedules={"daily": schedule},
        restores=restores or {},
        digest="sha256:" + "0" * 64,
    )
    inv = ScheduleInventory("daily", "clickhouse/analytics/daily/", tuple(backups))
    observed = Observed(
        buckets={
            "primary": BucketState("primary", bucket_ok, None if bucket_ok else "s3://acme-ch-backups/ does not exist")
        },
        services={n: ServiceState(n, reachable, None if reachable else "refused") for n in ("analytics", "staging")},
        schedules={"daily": inv} if bucket_ok else {},
        restores=records or {},
        digest="sha256:" + "1" * 64,
    )
    return config, observed


def types(plan) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(a.type.value, a.id) for a in plan.actions]


def test_empty_bucket_plans_one_full_export_and_its_validation() -> None:
    config, observed = make()
    plan = build_plan(config, observed, NOW)
    assert types(plan) == [
        ("export", "export/analytics/daily/20261125T030000Z"),
        ("validate", "validate/analytics/daily/20261125T030000Z"),
    ]
    export = plan.actions[0]
    assert isinstance(export, ExportAction)
    assert export.kind == "full" and export.base is None
    assert export.location == "s3://acme-ch-backups/clickhouse/analytics/daily/20261125T030000Z/"
    assert plan.actions[1].depends_on == (export.id,)
    assert [d.type for d in plan.drift] == [DriftType.RPO_VIOLATION]
    doc = plan.to_json()
    assert validate_plan(doc) is None
    assert doc["summary"] == {
        "configure": 0,
        "export": 1,
        "copy": 0,
        "validate": 1,
        "restore": 0,
        "recover": 0,
        "prune": 0,
    }


def test_a_complete_validated_backup_of_the_latest_slot_means_nothing_to_do() -> None:
    config, observed = make([backup("20261124T030000Z"), backup("20261125T030000Z")])
    plan = build_plan(config, observed, NOW)
    assert plan.actions == () and plan.drift == ()


def test_a_missed_slot_is_rpo_drift_and_only_the_newest_slot_is_exported() -> None:
    config, observed = make([backup("20261122T030000Z")])
    plan = build_plan(config, observed, NOW)
    assert [a.backup for a in plan.actions if a.type == ActionType.EXPORT] == ["20261125T030000Z"]
    assert [d.type for d in plan.drift] == [DriftType.RPO_VIOLATION]
    assert "20261124T030000Z" in plan.drift[0].detail


def test_due_export_is_not_drift_when_the_previous_slot_is_covered() -> None:
    config, observed = make([backup("20261124T030000Z")])
    plan = build_plan(config, observed, NOW)
    assert [a.type for a in plan.actions] == [ActionType.EXPORT, ActionType.VALIDATE]
    assert plan.drift == ()


def test_an_abandoned_attempt_gets_a_suffixed_retry_and_is_reported() -> None:
    config, observed = make([backup("20261124T030000Z"), backup("20261125T030000Z", BackupState.ABANDONED)])
    plan = build_plan(config, observed, NOW)
    assert plan.actions[0].backup == "20261125T030000Z.2"
    assert "earlier attempts" in plan.actions[0].reason
    assert [d.type for d in plan.drift] == [DriftType.FAILED_BACKUP]


def test_a_running_export_is_not_duplicated() -> None:
    config, observed = make([backup("20261124T030000Z"), backup("20261125T030000Z", BackupState.RUNNING)])
    assert build_plan(config, observed, NOW).actions == ()


def test_a_running_export_whose_apply_is_gone_is_adopted_not_duplicated() -> None:
    from dataclasses import replace

    orphan = replace(backup("20261125T030000Z", BackupState.RUNNING), orphaned=True, run_id="r-dead")
    config, observed = make([backup("20261124T030000Z"), orphan])
    plan = build_plan(config, observed, NOW)
    assert types(plan) == [
        ("export", "export/analytics/daily/20261125T030000Z"),
        ("validate", "validate/analytics/daily/20261125T030000Z"),
    ]
    assert "adopt it" in plan.actions[0].reason and "r-dead" in plan.actions[0].reason
    _, down = make([backup("20261124T030000Z"), orphan], reachable=False)
    assert build_plan(config, down, NOW).actions == ()


def test_unreachable_service_plans_no_export_and_reports_drift() -> None:
    config, observed = make([backup("20261124T030000Z")], reachable=False)
    plan = build_plan(config, observed, NOW)
    assert plan.actions == ()
    assert DriftType.UNREACHABLE_SERVICE in [d.type for d in plan.drift]
    assert any("cannot be reached" in w for w in plan.warnings)


def test_missing_bucket_is_drift() -> None:
    config, observed = make(bucket_ok=False)
    plan = build_plan(config, observed, NOW)
    assert plan.actions == ()
    assert [d.type for d in plan.drift] == [DriftType.MISSING_BUCKET]


def test_unmanaged_and_unvalidated_and_broken_are_drift() -> None:
    config, observed = make(
        [
            backup("manual-copy", BackupState.UNMANAGED),
            backup("20261123T030000Z", validated=False),
            backup("20261124T030000Z", validated=None),
            backup("20261125T030000Z"),
        ]
    )
    plan = build_plan(config, observed, NOW)
    kinds = sorted(d.type.value for d in plan.drift)
    assert kinds == ["broken_backup", "unmanaged_backup", "unvalidated_backup"]
    assert types(plan) == [("validate", "validate/analytics/daily/20261124T030000Z")]


def test_incremental_chain_then_a_new_full() -> None:
    chain = [backup("20261122T030000Z")]
    config, observed = make(chain, full_every=3)
    p = build_plan(config, observed, NOW)
    assert (p.actions[0].kind, p.actions[0].base) == ("incremental", "20261122T030000Z")  # type: ignore[attr-defined]
    chain = [
        backup("20261123T030000Z"),
        backup("20261124T030000Z", kind="incremental", base="20261123T030000Z"),
        backup("20261124T150000Z", kind="incremental", base="20261124T030000Z"),
    ]
    config, observed = make(chain, full_every=3)
    assert build_plan(config, observed, NOW).actions[0].kind == "full"  # type: ignore[attr-defined]
    # a broken base forces a full
    config, observed = make([backup("20261124T030000Z", validated=False)], full_every=3)
    p = build_plan(config, observed, NOW)
    assert p.actions[0].kind == "full" and "broken" in p.actions[0].reason  # type: ignore[attr-defined]


def restore_decl(target_db: str = "shop_restored") -> dict[str, Restore]:
    return {
        "into-staging": Restore(
            "into-staging",
            RestoreSource(schedule="daily"),
            RestoreTarget(service="staging", databases={"shop": target_db}),
        )
    }


def test_restore_latest_resolves_to_a_name_at_plan_time_and_runs_once() -> None:
    decl = restore_decl()
    config, observed = make([backup("20261124T030000Z"), backup("20261125T030000Z")], restores=decl)
    plan = build_plan(config, observed, NOW)
    (r,) = plan.actions
    assert r.type == ActionType.RESTORE and r.backup == "20261125T030000Z" and r.depends_on == ()
    assert isinstance(r, RestoreAction) and r.databases == {"shop": "shop_restored"}
    assert validate_plan(plan.to_json()) is None
    done = {
        "into-staging": RestoreRecord("into-staging", "20261125T030000Z", decl["into-staging"].spec_digest(), NOW, "r1")
    }
    config, observed = make([backup("20261125T030000Z")], restores=decl, records=done)
    assert build_plan(config, observed, NOW).actions == ()
    # a changed declaration is a new restore
    config, observed = make([backup("20261125T030000Z")], restores=restore_decl("shop_v2"), records=done)
    (r,) = build_plan(config, observed, NOW).actions
    assert "declaration changed" in r.reason


def test_a_restore_attempt_that_failed_is_said_to_have_failed_with_its_error() -> None:
    from reconciler.bucket.records import RestoreAttempt, decode_restore_record

    decl = restore_decl()
    attempt = RestoreAttempt("into-staging", "20261125T030000Z", decl["into-staging"].spec_digest(), NOW, "r1")
    error = "RESTORE_FAILED: Code: 81. DB::Exception: Database shop_restored does not exist. (UNKNOWN_DATABASE)"
    for recorded, said in ((attempt, "did not finish; "), (replace(attempt, error=error), f"failed: {error}; ")):
        record = decode_restore_record(recorded.encode())
        config, observed = make([backup("20261125T030000Z")], restores=decl, records={"into-staging": record})
        (r,) = build_plan(config, observed, NOW).actions
        assert r.reason.startswith("the attempt of run r1 " if recorded.error else "an attempt of run r1 ")
        assert said in r.reason and "what it wrote is removed and the restore runs again" in r.reason


def test_restore_of_latest_with_no_backup_waits_for_this_plans_export() -> None:
    config, observed = make([], restores=restore_decl())
    plan = build_plan(config, observed, NOW)
    r = [a for a in plan.actions if a.type == ActionType.RESTORE][0]
    assert r.backup == "20261125T030000Z"
    assert r.depends_on == ("export/analytics/daily/20261125T030000Z", "validate/analytics/daily/20261125T030000Z")


def test_plans_are_deterministic_and_round_trip_through_json() -> None:
    from reconciler.model import Plan

    config, observed = make([backup("20261123T030000Z")], restores=restore_decl())
    a, b = build_plan(config, observed, NOW), build_plan(config, observed, NOW)
    assert a == b
    assert Plan.from_json(a.to_json()) == a


def test_targets_limit_the_plan() -> None:
    config, observed = make([], restores=restore_decl())
    plan = build_plan(config, observed, NOW, targets=["into-staging"])
    assert [a.type for a in plan.actions] == []  # the export is not in the target: the restore waits
    assert any("no complete backup" in w for w in plan.warnings)
