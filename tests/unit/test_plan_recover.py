"""Deleted backups in the pure planner (docs/compliance.md, "Deleted backups"): a backup whose
manifest was deleted outside an apply is deleted_backup drift, never a failed attempt; recovered
when its versions survive and the bucket says recover_deleted; never pruned by retention; what is
left of one that cannot be recovered is pruned after cleanup_after."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from reconciler.model import (
    ActionType,
    BackupState,
    Config,
    DriftType,
    Immutability,
    LockMode,
    Observed,
    ObservedBackup,
    Plan,
    RecoverAction,
    Retention,
    ValidateAction,
    ValidationLevel,
)
from reconciler.plan import build_plan
from reconciler.schemas import validate_plan
from tests.unit.test_plan_unit import NOW, backup, make

pytestmark = pytest.mark.clock  # ages against NOW (scripts/test-shifted-dates.sh)

OLD, NEWER, LATEST = "20261123T030000Z", "20261124T030000Z", "20261125T030000Z"


def deleted(name: str, recoverable: bool | None) -> ObservedBackup:
    return replace(
        backup(name, BackupState.DELETED),
        recoverable=recoverable,
        error="the manifest .backup was deleted outside an apply",
        total_size=1000,
    )


def setup(
    backups: list[ObservedBackup], *, recover: bool | None = True, keep_last: int | None = None
) -> tuple[Config, Observed]:
    config, observed = make(backups)
    bucket = config.buckets["primary"]
    if recover is not None:
        bucket = replace(bucket, immutability=Immutability(LockMode.COMPLIANCE, 30, recover_deleted=recover))
    schedule = config.schedules["daily"]
    if keep_last is not None:
        schedule = replace(schedule, retention=Retention(keep_last=keep_last))
    return replace(config, buckets={"primary": bucket}, schedules={"daily": schedule}), observed


def of(plan: Plan, backup_name: str) -> list[tuple[str, str]]:
    return [(a.type.value, a.id) for a in plan.actions if a.backup == backup_name]


def drift_of(plan: Plan, backup_name: str) -> list[tuple[DriftType, str]]:
    return [(d.type, d.detail) for d in plan.drift if d.backup == backup_name]


def test_a_recoverable_deleted_backup_is_recovered_then_validated() -> None:
    config, observed = setup([backup(OLD), deleted(NEWER, True), backup(LATEST)])
    plan = build_plan(config, observed, NOW)
    assert of(plan, NEWER) == [
        ("validate", f"validate/analytics/daily/{NEWER}"),
        ("recover", f"recover/analytics/daily/{NEWER}"),
    ]
    recover = next(a for a in plan.actions if isinstance(a, RecoverAction))
    validate = next(a for a in plan.actions if isinstance(a, ValidateAction) and a.backup == NEWER)
    assert validate.depends_on == (recover.id,) and validate.level == ValidationLevel.MANIFEST
    assert recover.location == f"s3://acme-ch-backups/clickhouse/analytics/daily/{NEWER}/"
    assert recover.size == 1000 and "recover_deleted" in recover.reason
    [(kind, detail)] = drift_of(plan, NEWER)
    assert kind == DriftType.DELETED_BACKUP and "this plan recovers it" in detail
    assert "deleted outside an apply" in detail
    assert plan.summary()["recover"] == 1
    # the plan file: valid against the schema, and the action comes back the same
    doc = plan.to_json()
    validate_plan(doc)
    assert Plan.from_json(doc).actions == plan.actions
    # the storage estimate: hidden now, back after the plan
    [storage] = plan.storage
    assert storage.bytes_after - storage.bytes_now == 1000


def test_without_recover_deleted_only_the_drift() -> None:
    config, observed = setup([backup(OLD), deleted(NEWER, True), backup(LATEST)], recover=False, keep_last=1)
    plan = build_plan(config, observed, NOW + timedelta(days=30))
    assert not [a for a in plan.actions if a.type == ActionType.RECOVER]
    assert not [a for a in plan.actions if a.backup == NEWER]  # never pruned, however old: it can come back
    [(kind, detail)] = drift_of(plan, NEWER)
    assert kind == DriftType.DELETED_BACKUP
    assert "set immutability.recover_deleted: true on bucket primary" in detail
    assert not [d for d in plan.drift if d.type == DriftType.FAILED_BACKUP]


def test_a_deleted_backup_never_makes_retention_prune_a_good_one() -> None:
    # keep_last 1: the deleted newest backup does not count, so the older good one is the one kept
    config, observed = setup([backup(OLD), deleted(LATEST, True)], recover=False, keep_last=1)
    plan = build_plan(config, observed, NOW)
    assert not [a for a in plan.actions if a.type == ActionType.PRUNE]


def test_the_latest_slot_recovered_is_not_exported_again() -> None:
    config, observed = setup([backup(NEWER), deleted(LATEST, True)])
    plan = build_plan(config, observed, NOW)
    assert not [a for a in plan.actions if a.type == ActionType.EXPORT]
    # without recover_deleted the slot has no complete backup: a new attempt is exported
    config, observed = setup([backup(NEWER), deleted(LATEST, True)], recover=False)
    plan = build_plan(config, observed, NOW)
    assert [a.backup for a in plan.actions if a.type == ActionType.EXPORT] == [LATEST + ".2"]


def test_what_is_left_of_an_unrecoverable_backup_is_pruned_after_cleanup_after() -> None:
    config, observed = setup([backup(OLD), backup(NEWER), deleted(LATEST, False)])
    plan = build_plan(config, observed, NOW)  # LATEST is 3 hours old: not yet
    assert of(plan, LATEST) == []
    [(_, detail)] = drift_of(plan, LATEST)
    assert "pruned after cleanup_after=1d" in detail
    later = build_plan(config, observed, NOW + timedelta(days=1))
    [prune] = [a for a in later.actions if a.backup == LATEST]
    assert prune.type == ActionType.PRUNE and "nothing of it survives" in prune.reason
    assert prune.state == "deleted"  # type: ignore[attr-defined]


def test_a_deleted_backup_whose_versions_are_not_known_is_kept() -> None:
    config, observed = setup([backup(OLD), deleted(NEWER, None)], keep_last=1)
    plan = build_plan(config, observed, NOW + timedelta(days=30))
    assert not [a for a in plan.actions if a.backup == NEWER]
    [(_, detail)] = drift_of(plan, NEWER)
    assert "it is kept as it is" in detail
