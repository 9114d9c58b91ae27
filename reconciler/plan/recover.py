"""Deleted backups in the plan (docs/compliance.md, "Deleted backups"). Pure.

A schedule's backup whose manifest was deleted outside an apply (``BackupState.DELETED``) is
``deleted_backup`` drift, whose detail says whether its versions survive. It is never a failed
attempt, and retention never counts or prunes it:

- its versions survive and the bucket says ``immutability.recover_deleted: true``: a ``recover``
  action, and a ``validate`` of the backup that depends on it (at the schedule's
  ``after_export`` level, at least ``manifest``), so that it counts again once it proves whole;
- its versions survive without ``recover_deleted``: reported only, and kept;
- nothing of it survives (a bucket without versions, or its manifest's versions gone too): what is
  left cannot be restored, and is pruned like a failed attempt, after ``cleanup_after``, but not
  while a kept incremental builds on it (plan/schedules.py holds it; its drift says so);
- not known (versions not read on the provider): reported only, and kept.
"""

from __future__ import annotations

from datetime import datetime

from ..bucket import layout
from ..model import (
    BackupState,
    Bucket,
    Drift,
    DriftType,
    ObservedBackup,
    RecoverAction,
    Schedule,
    ScheduleInventory,
    ValidateAction,
    ValidationLevel,
)
from ..render.words import duration
from .ids import recover_id, validate_id


def recovering(bucket: Bucket, inventory: ScheduleInventory) -> list[ObservedBackup]:
    """The deleted backups this plan recovers."""
    if bucket.immutability is None or not bucket.immutability.recover_deleted:
        return []
    return [b for b in inventory.backups if b.state == BackupState.DELETED and b.recoverable is True]


def deleted_drift(schedule: Schedule, bucket: Bucket, b: ObservedBackup, needed: bool = False) -> Drift:
    """``needed``: a backup the plan keeps builds on it (then nothing of it is pruned)."""
    why = b.error or "the manifest .backup was deleted outside an apply"
    if b.recoverable is True and bucket.immutability is not None and bucket.immutability.recover_deleted:
        then = "this plan recovers it (recover_deleted)"
    elif b.recoverable is True:
        then = (
            f"set immutability.recover_deleted: true on bucket {schedule.bucket} to recover it, "
            "or remove the delete markers by hand"
        )
    elif b.recoverable is False and needed:
        then = (
            "what is left of it is kept while a kept incremental builds on it (those are broken_backup), "
            f"and pruned after cleanup_after={duration(schedule.cleanup_after)} once none does"
        )
    elif b.recoverable is False:
        then = f"what is left of it is pruned after cleanup_after={duration(schedule.cleanup_after)}"
    else:
        then = "it is kept as it is"
    return Drift(
        DriftType.DELETED_BACKUP,
        f"{b.name}: {why}; {then}",
        schedule=schedule.name,
        service=schedule.service,
        backup=b.name,
    )


def recover_actions(schedule: Schedule, bucket: Bucket, b: ObservedBackup) -> list[RecoverAction | ValidateAction]:
    """The recover of ``b`` and its validation after it."""
    location = bucket.url(layout.backup_prefix(bucket, schedule.service, schedule.name, b.name))
    common = dict(service=schedule.service, schedule=schedule.name, bucket=schedule.bucket, backup=b.name)
    recover = RecoverAction(
        id=recover_id(schedule.service, schedule.name, b.name),
        location=location,
        size=b.total_size,
        reason=(
            f"{b.name} was deleted outside an apply and its versions survive under delete markers "
            "(recover_deleted): remove the markers over its manifest, its sidecar and the files the manifest lists"
        ),
        **common,  # type: ignore[arg-type]
    )
    level = schedule.validate.after_export or ValidationLevel.MANIFEST
    validate = ValidateAction(
        id=validate_id(schedule.service, schedule.name, b.name),
        level=level,
        location=location,
        reason=f"validate the recovered backup: {level.value} level",
        depends_on=(recover.id,),
        **common,  # type: ignore[arg-type]
    )
    return [recover, validate]


def deleted_prune_reason(schedule: Schedule, b: ObservedBackup, now: datetime) -> str | None:
    """Why what is left of an unrecoverable deleted backup is pruned now (None: not now, or not it)."""
    if b.state != BackupState.DELETED or b.recoverable is not False or b.slot is None:
        return None
    if now - b.slot < schedule.cleanup_after:
        return None
    return (
        f"deleted outside an apply and nothing of it survives to recover: what is left is pruned "
        f"(older than cleanup_after={duration(schedule.cleanup_after)})"
    )
