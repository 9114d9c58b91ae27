"""An incremental is only as good as its chain of bases: a base deleted, failed or broken makes
each incremental on it broken (drift, the floors, `latest`, the next export a full), a base is
never pruned while a kept incremental needs it, and periodic checksums cover the chain's bases.
Hand-built observed states, as in test_plan_unit."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from reconciler.model import (
    ActionType,
    BackupState,
    Config,
    DriftType,
    ExportAction,
    ObservedBackup,
    Retention,
    ValidateAction,
    Validation,
    ValidationLevel,
    ValidationResult,
)
from reconciler.plan import build_plan
from reconciler.schemas import validate_plan

from .test_plan_unit import NOW, backup, make, restore_decl

pytestmark = pytest.mark.clock  # NOW is fixed; like test_plan_unit, also run at shifted dates

F, I1, I2 = "20261122T030000Z", "20261123T030000Z", "20261124T030000Z"
LATEST = "20261125T030000Z"  # the slot due at NOW


def chain(base: ObservedBackup) -> list[ObservedBackup]:
    return [
        base,
        backup(I1, kind="incremental", base=F),
        backup(I2, kind="incremental", base=I1),
    ]


def with_schedule(config: Config, **changes: object) -> Config:
    s = replace(config.schedules["daily"], **changes)  # type: ignore[arg-type]
    return replace(config, schedules={"daily": s})


def checksums_every(config: Config, days: int) -> Config:
    policy = replace(config.schedules["daily"].validate, checksums_every=timedelta(days=days))
    return with_schedule(config, validate=policy)


def deleted_base() -> ObservedBackup:
    b = backup(F, BackupState.DELETED)
    return replace(b, recoverable=False, error="the manifest .backup was deleted outside an apply")


def broken_base() -> ObservedBackup:
    failed = Validation(
        ValidationLevel.CHECKSUMS, NOW - timedelta(minutes=30), ValidationResult.FAILED, "data.bin: gone"
    )
    b = backup(F)
    return replace(b, validations=(*b.validations, failed))


def chain_drift(plan) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {d.backup: d.detail for d in plan.drift if d.type == DriftType.BROKEN_BACKUP}


def test_a_deleted_base_is_kept_while_its_incrementals_are_and_they_are_broken() -> None:
    config, observed = make(chain(deleted_base()), full_every=7, restores=restore_decl())
    plan = build_plan(config, observed, NOW)
    assert validate_plan(plan.to_json()) is None
    # nothing of F survives, and it is older than cleanup_after: yet I1 and I2 name it
    assert not [a for a in plan.actions if a.type == ActionType.PRUNE]
    (deleted,) = [d for d in plan.drift if d.type == DriftType.DELETED_BACKUP]
    assert "kept while a kept incremental builds on it (those are broken_backup)" in deleted.detail
    drift = chain_drift(plan)
    assert set(drift) == {I1, I2}
    assert (
        drift[I1]
        == f"{I1}: its base {F} is deleted (the manifest .backup was deleted outside an apply): it cannot be restored"
    )
    assert drift[I2].startswith(f"{I2}: its base {F} is deleted") and f"(through {I1})" in drift[I2]
    # the next export is a full, not an incremental on I2
    (export,) = [a for a in plan.actions if isinstance(a, ExportAction)]
    assert (export.backup, export.kind, export.base) == (LATEST, "full", None)
    assert f"{I2} cannot be restored" in export.reason
    # `latest` is not I2 (a restore of it fails): it waits for this plan's export
    (restore,) = [a for a in plan.actions if a.type == ActionType.RESTORE]
    assert restore.backup == LATEST and export.id in restore.depends_on


def test_a_deleted_base_is_pruned_once_no_kept_backup_needs_it() -> None:
    backups = [*chain(deleted_base()), backup(LATEST)]
    config, observed = make(backups, full_every=7)
    config = with_schedule(config, retention=Retention(keep_last=1))
    plan = build_plan(config, observed, NOW)
    # I1 and I2 cannot be restored: not the validated floor; the new full is, and F goes with them
    assert sorted(a.backup for a in plan.actions if a.type == ActionType.PRUNE) == [F, I1, I2]  # type: ignore[attr-defined]


def test_a_base_that_failed_checksums_breaks_its_incrementals() -> None:
    config, observed = make(chain(broken_base()), full_every=7, restores=restore_decl())
    plan = build_plan(config, observed, NOW)
    drift = chain_drift(plan)
    assert set(drift) == {F, I1, I2}
    assert f"its base {F} failed validation (data.bin: gone)" in drift[I1]
    assert f"(through {I1})" in drift[I2] and drift[I2].endswith("it cannot be restored")
    (export,) = [a for a in plan.actions if isinstance(a, ExportAction)]
    assert export.kind == "full" and export.base is None
    (restore,) = [a for a in plan.actions if a.type == ActionType.RESTORE]
    assert restore.backup == LATEST
    assert not [a for a in plan.actions if a.type == ActionType.PRUNE]  # F is the base of kept I1, I2


def test_a_healthy_chain_still_gets_an_incremental_and_no_drift() -> None:
    config, observed = make(chain(backup(F)), full_every=7)
    plan = build_plan(config, observed, NOW)
    assert not plan.drift
    (export,) = [a for a in plan.actions if isinstance(a, ExportAction)]
    assert (export.kind, export.base, export.chain) == ("incremental", I2, (I2, I1, F))


def checked(name: str, days: int, **kw: object) -> ObservedBackup:
    b = backup(name, **kw)  # type: ignore[arg-type]
    ok = Validation(ValidationLevel.CHECKSUMS, NOW - timedelta(days=days), ValidationResult.OK, "0 files, 0 bytes")
    return replace(b, validations=(*b.validations, ok))


@pytest.mark.parametrize("export", [False, True], ids=["newest-kept", "new-export"])
def test_due_checksums_cover_the_bases_of_the_newest_incremental(export: bool) -> None:
    backups = [
        checked(F, 9),
        backup(I1, kind="incremental", base=F),
        checked(I2, 8, kind="incremental", base=I1),
    ]
    if not export:  # the latest slot has its backup: the newest kept one is validated
        backups.append(backup(LATEST, kind="incremental", base=I2))
    config, observed = make(backups, full_every=7)
    config = with_schedule(
        config, validate=replace(config.schedules["daily"].validate, checksums_every=timedelta(days=7))
    )
    plan = build_plan(config, observed, NOW)
    checks = {a.backup: a.reason for a in plan.actions if isinstance(a, ValidateAction)}
    assert set(checks) == {F, I1, I2, LATEST}
    assert all(a.level == ValidationLevel.CHECKSUMS for a in plan.actions if isinstance(a, ValidateAction))
    assert checks[F].startswith(f"checksums are due (checksums_every=7d); a base of {LATEST} (last passed 9")
    assert "never passed" in checks[I1]
    # not due: only what the export needs, no base is read again
    config = with_schedule(
        config, validate=replace(config.schedules["daily"].validate, checksums_every=timedelta(days=30))
    )
    plan = build_plan(config, observed, NOW)
    assert {a.backup for a in plan.actions if isinstance(a, ValidateAction)} == ({LATEST} if export else set())
