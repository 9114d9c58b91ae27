"""Export, validate and drift decisions for one schedule. Pure: no I/O, no clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .. import layout
from ..model import (
    Action,
    ActionType,
    BackupState,
    Bucket,
    Drift,
    DriftType,
    ObservedBackup,
    Schedule,
    ScheduleInventory,
    ValidationLevel,
)
from ..slots import latest_slot, previous_slot, slot_name
from .words import ago, describe_schedule


@dataclass
class ScheduleDecision:
    actions: list[Action] = field(default_factory=list)
    drift: list[Drift] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: the export this plan makes for the schedule, if any (restores of `latest` may wait on it)
    export: Action | None = None


def export_id(service: str, schedule: str, backup: str) -> str:
    return f"export/{service}/{schedule}/{backup}"


def validate_id(service: str, schedule: str, backup: str) -> str:
    return f"validate/{service}/{schedule}/{backup}"


def usable(b: ObservedBackup) -> bool:
    """Complete, ours, and not known to be broken: something a restore or a chain can use."""
    return b.state == BackupState.COMPLETE and b.kind is not None and not b.broken


def decide_schedule(
    schedule: Schedule,
    bucket: Bucket,
    inventory: ScheduleInventory,
    now: datetime,
    service_reachable: bool,
) -> ScheduleDecision:
    d = ScheduleDecision()
    latest = latest_slot(schedule, now)
    previous = previous_slot(schedule, latest)
    managed_complete = [b for b in inventory.backups if b.state == BackupState.COMPLETE and b.kind is not None]
    newest = max(managed_complete, key=lambda b: (b.slot or now, b.attempt), default=None)

    _drift_of_backups(schedule, inventory, d)
    if newest is None or (newest.slot is not None and newest.slot < previous):
        have = f"the newest complete backup is {newest.name} ({ago(newest.slot, now)})" if newest and newest.slot else "no complete backup exists"
        d.drift.append(
            Drift(
                DriftType.RPO_VIOLATION,
                f"slot {slot_name(previous)} has passed and {have}",
                schedule=schedule.name,
                service=schedule.service,
            )
        )

    level = schedule.validate.after_export
    if level == ValidationLevel.CHECKSUMS:
        d.warnings.append(
            f"schedule {schedule.name}: validate.after_export is checksums, which this version does not run yet; "
            "backups are validated at the manifest level"
        )
        level = ValidationLevel.MANIFEST

    in_slot = [b for b in inventory.backups if b.slot == latest]
    if any(b.state == BackupState.COMPLETE and b.kind is not None for b in in_slot):
        pass
    elif any(b.state == BackupState.RUNNING for b in in_slot):
        pass
    elif not service_reachable:
        d.warnings.append(
            f"schedule {schedule.name}: slot {slot_name(latest)} is due but service {schedule.service} "
            "cannot be reached, so no export is planned"
        )
    else:
        attempt = max((b.attempt for b in in_slot), default=0) + 1
        name = slot_name(latest, attempt)
        kind, base, why_full = _kind(schedule, inventory)
        location = bucket.url(layout.backup_prefix(bucket, schedule.service, schedule.name, name))
        reason = _export_reason(schedule, latest, newest, in_slot, now)
        if why_full:
            reason += f"; {why_full}"
        action = Action(
            id=export_id(schedule.service, schedule.name, name),
            type=ActionType.EXPORT,
            service=schedule.service,
            schedule=schedule.name,
            bucket=schedule.bucket,
            backup=name,
            details={
                "kind": kind,
                "base": base,
                "location": location,
                "scope": _scope_json(schedule),
            },
            reason=reason,
        )
        d.actions.append(action)
        d.export = action
        if level is not None:
            d.actions.append(
                _validate_action(schedule, bucket, name, level, (action.id,), "validate the new backup after export")
            )

    if level is not None:
        for b in managed_complete:
            if b.validations or (d.export and b.name == d.export.backup):
                continue
            d.actions.append(
                _validate_action(schedule, bucket, b.name, level, (), "complete but never validated")
            )
    return d


def _validate_action(
    schedule: Schedule, bucket: Bucket, backup: str, level: ValidationLevel, depends_on: tuple[str, ...], reason: str
) -> Action:
    location = bucket.url(layout.backup_prefix(bucket, schedule.service, schedule.name, backup))
    return Action(
        id=validate_id(schedule.service, schedule.name, backup),
        type=ActionType.VALIDATE,
        service=schedule.service,
        schedule=schedule.name,
        bucket=schedule.bucket,
        backup=backup,
        details={"level": level.value, "location": location},
        reason=f"{reason}: {level.value} level",
        depends_on=depends_on,
    )


def _scope_json(schedule: Schedule) -> dict[str, object]:
    return schedule.scope.to_json()


def _kind(schedule: Schedule, inventory: ScheduleInventory) -> tuple[str, str | None, str]:
    """(kind, base, why a full was chosen where an incremental was possible)."""
    n = schedule.full_every
    if not n or n <= 1:
        return "full", None, ""
    managed = [b for b in inventory.backups if b.kind is not None and b.state == BackupState.COMPLETE]
    if not managed:
        return "full", None, "full: no earlier backup to build on"
    prev = managed[-1]
    if not usable(prev):
        return "full", None, f"full: the newest backup {prev.name} is broken"
    if not prev.validated and schedule.validate.after_export is not None:
        return "full", None, f"full: the newest backup {prev.name} is not validated"
    # length of the chain that ends at prev
    by_name = {b.name: b for b in inventory.backups}
    length, cur = 1, prev
    while cur.kind == "incremental" and cur.base:
        base = by_name.get(cur.base)
        if base is None or not usable(base):
            return "full", None, f"full: the chain of {prev.name} misses its base {cur.base}"
        length, cur = length + 1, base
    if length >= n:
        return "full", None, ""
    return "incremental", prev.name, ""


def _export_reason(
    schedule: Schedule,
    latest: datetime,
    newest: ObservedBackup | None,
    in_slot: list[ObservedBackup],
    now: datetime,
) -> str:
    slot = slot_name(latest)
    head = f"slot {slot} of {describe_schedule(schedule)} has no complete backup"
    if in_slot:
        states = ", ".join(f"{b.name} {b.state.value}" for b in in_slot)
        return f"{head} (earlier attempts: {states}); a new attempt gets its own folder"
    if newest is None or newest.slot is None:
        return f"{head}; none exists yet"
    return f"{head}; the newest is {newest.name} ({ago(newest.slot, now)})"


def _drift_of_backups(schedule: Schedule, inventory: ScheduleInventory, d: ScheduleDecision) -> None:
    for b in inventory.backups:
        common = dict(schedule=schedule.name, service=schedule.service, backup=b.name)
        if b.state in (BackupState.FAILED, BackupState.ABANDONED):
            d.drift.append(Drift(DriftType.FAILED_BACKUP, f"{b.name} {b.state.value}: {b.error or 'no detail'}", **common))  # type: ignore[arg-type]
        elif b.state == BackupState.UNMANAGED:
            why = f" ({b.error})" if b.error else ""
            d.drift.append(
                Drift(
                    DriftType.UNMANAGED_BACKUP,
                    f"{b.name} has no reconciler sidecar{why}; it is reported, never deleted"
                    + (" unless prune_unmanaged" if not schedule.prune_unmanaged else ""),
                    **common,  # type: ignore[arg-type]
                )
            )
        elif b.state == BackupState.COMPLETE and b.broken:
            last = b.last_validation()
            detail = last.detail if last else ""
            d.drift.append(Drift(DriftType.BROKEN_BACKUP, f"{b.name} failed validation: {detail}", **common))  # type: ignore[arg-type]
        elif b.state == BackupState.COMPLETE and not b.validations and schedule.validate.after_export is not None:
            d.drift.append(Drift(DriftType.UNVALIDATED_BACKUP, f"{b.name} is complete but was never validated", **common))  # type: ignore[arg-type]
