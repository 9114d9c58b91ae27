"""Export, validate and drift decisions for one schedule. Pure: no I/O, no clock."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from ..bucket import layout
from ..model import (
    Action,
    BackupState,
    Bucket,
    Drift,
    DriftType,
    ExportAction,
    ObservedBackup,
    PruneAction,
    Schedule,
    ScheduleInventory,
    ValidateAction,
    ValidationLevel,
)
from ..model.slots import latest_slot, previous_slot, slot_name
from ..render.words import ago, describe_schedule, duration
from .chains import Chains, usable
from .ids import export_id, prune_id, validate_id
from .recover import deleted_drift, deleted_prune_reason, recover_actions, recovering
from .retention import Candidate, retain


@dataclass
class ScheduleDecision:
    actions: list[Action] = field(default_factory=list)
    drift: list[Drift] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: the export this plan makes for the schedule, if any (restores of `latest` may wait on it)
    export: ExportAction | None = None


__all__ = ["ScheduleDecision", "decide_schedule", "due", "usable"]


def decide_schedule(
    schedule: Schedule,
    bucket: Bucket,
    inventory: ScheduleInventory,
    now: datetime,
    service_reachable: bool,
    drill_reachable: bool = True,
) -> ScheduleDecision:
    d = ScheduleDecision()
    latest = latest_slot(schedule, now)
    previous = previous_slot(schedule, latest)
    managed_complete = [b for b in inventory.backups if b.state == BackupState.COMPLETE and b.kind is not None]
    newest = max(managed_complete, key=lambda b: (b.slot or now, b.attempt), default=None)

    chains = Chains(inventory)
    _drift_of_backups(schedule, bucket, inventory, chains, d)
    recovered = recovering(bucket, inventory)
    for b in recovered:
        d.actions += recover_actions(schedule, bucket, b)
    if newest is None or (newest.slot is not None and newest.slot < previous):
        have = (
            f"the newest complete backup is {newest.name} ({ago(newest.slot, now)})"
            if newest and newest.slot
            else "no complete backup exists"
        )
        d.drift.append(
            Drift(
                DriftType.RPO_VIOLATION,
                f"slot {slot_name(previous)} has passed and {have}",
                schedule=schedule.name,
                service=schedule.service,
            )
        )

    level = schedule.validate.after_export
    checksums_due = due(schedule.validate.checksums_every, managed_complete, ValidationLevel.CHECKSUMS, now)

    in_slot = [b for b in inventory.backups if b.slot == latest]
    covered = any(
        (b.state == BackupState.COMPLETE and b.kind is not None) or b.state == BackupState.RUNNING for b in in_slot
    ) or any(b.slot == latest for b in recovered)  # this plan brings the slot's backup back
    orphan = next((b for b in in_slot if b.state == BackupState.RUNNING and b.orphaned), None)
    action: ExportAction | None = None
    if orphan is not None and service_reachable:
        # ClickHouse still writes it and the apply that started it is gone: adopt, never duplicate
        base = orphan.base if orphan.kind == "incremental" else None
        action = _export_action(
            schedule,
            bucket,
            inventory,
            orphan.name,
            orphan.kind or "full",
            base,
            f"{orphan.name} is still being written by ClickHouse and run {orphan.run_id or '?'}, which started it, "
            "is gone: adopt it (wait for it and record its outcome) rather than start another attempt",
        )
    elif covered:
        pass  # the slot has its backup, or one is being made
    elif not service_reachable:
        d.warnings.append(
            f"schedule {schedule.name}: slot {slot_name(latest)} is due but service {schedule.service} "
            "cannot be reached, so no export is planned"
        )
    else:
        attempt = max((b.attempt for b in in_slot), default=0) + 1
        name = slot_name(latest, attempt)
        kind, base, why_full = _kind(schedule, inventory, chains)
        reason = _export_reason(schedule, latest, newest, in_slot, now)
        if why_full:
            reason += f"; {why_full}"
        if schedule.scope.access:
            reason += "; with its users, roles, settings profiles, row policies, quotas and functions (include_access)"
        action = _export_action(schedule, bucket, inventory, name, kind, base, reason)
    if action is not None:
        name = action.backup or ""
        d.actions.append(action)
        d.export = action
        if level is not None or checksums_due:
            after = ValidationLevel.CHECKSUMS if checksums_due else level
            assert after is not None
            why = "validate the new backup after export"
            if checksums_due and level != ValidationLevel.CHECKSUMS:
                why += f" (checksums are due: checksums_every={duration(schedule.validate.checksums_every)})"  # type: ignore[arg-type]
            d.actions.append(_validate_action(schedule, bucket, name, after, (action.id,), why))

    pruned = _decide_prunes(schedule, bucket, inventory, chains, now, d)
    _decide_validations(schedule, bucket, inventory, chains, pruned, now, checksums_due, drill_reachable, d)
    return d


def _export_action(
    schedule: Schedule,
    bucket: Bucket,
    inventory: ScheduleInventory,
    name: str,
    kind: str,
    base: str | None,
    reason: str,
) -> ExportAction:
    return ExportAction(
        id=export_id(schedule.service, schedule.name, name),
        service=schedule.service,
        schedule=schedule.name,
        bucket=schedule.bucket,
        backup=name,
        kind=kind,
        base=base,
        location=bucket.url(layout.backup_prefix(bucket, schedule.service, schedule.name, name)),
        scope=schedule.scope,
        chain=tuple(inventory.chain_of(base)),
        reason=reason,
    )


def due(every: timedelta | None, backups: list[ObservedBackup], level: ValidationLevel, now: datetime) -> bool:
    """A periodic level is due when no backup of the schedule passed it within ``every``.

    Validations carry the real time they ran; one stamped after ``now`` (a plan ``--now`` in the
    past) counts as made at ``now``."""
    if every is None:
        return False
    times = [min(t, now) for b in backups if (t := b.last_ok(level)) is not None]
    return not times or now - max(times) >= every


def _decide_validations(
    schedule: Schedule,
    bucket: Bucket,
    inventory: ScheduleInventory,
    chains: Chains,
    pruned: set[str],
    now: datetime,
    checksums_due: bool,
    drill_reachable: bool,
    d: ScheduleDecision,
) -> None:
    """Validate what was never validated; run due checksums on the newest backup (when no export
    does it) and on the bases of its chain not checked within ``checksums_every``; drill the
    newest backup when a drill is due (after its validation, if planned)."""
    complete = inventory.complete()
    level = schedule.validate.after_export
    planned: dict[str, ValidateAction] = {a.backup or "": a for a in d.actions if isinstance(a, ValidateAction)}
    if level is not None:
        for b in complete:
            if b.validations or b.name in pruned:
                continue
            a = _validate_action(schedule, bucket, b.name, level, (), "complete but never validated")
            d.actions.append(a)
            planned[b.name] = a
    kept = [b for b in complete if b.name not in pruned and chains.usable(b)]
    every = schedule.validate.checksums_every
    if checksums_due and every is not None:
        why = f"checksums are due (checksums_every={duration(every)})"
        head: ObservedBackup | None = None
        if d.export is None and kept:
            head = kept[-1]
            _plan_checksums(schedule, bucket, head.name, why, planned, d)
        # an incremental's checksums read only what it stores: its bases' bytes are proved by
        # their own validations, so the periodic one covers each base not checked within D
        chain = d.export.chain if d.export is not None else inventory.chain_of(head.base if head else None)
        of = d.export.backup if d.export is not None else (head.name if head else "")
        for name in chain:
            base = inventory.find(name)
            if base is None or not chains.usable(base) or name in pruned:
                continue
            passed = base.last_ok(ValidationLevel.CHECKSUMS)
            if passed is not None and now - min(passed, now) < every:
                continue
            since = f"last passed {ago(min(passed, now), now)}" if passed else "never passed"
            _plan_checksums(schedule, bucket, name, f"{why}; a base of {of} ({since})", planned, d)
    drill = schedule.validate.drill
    if drill is None or not due(drill.every, complete, ValidationLevel.DRILL, now):
        return
    target = d.export.backup if d.export is not None else (kept[-1].name if kept else None)
    if target is None:
        return
    if not drill_reachable:
        d.warnings.append(f"schedule {schedule.name}: a drill is due but service {drill.service} cannot be reached")
        return
    depends = (planned[target].id,) if target in planned else ((d.export.id,) if d.export is not None else ())
    last = [min(t, now) for b in complete if (t := b.last_ok(ValidationLevel.DRILL)) is not None]
    since = f"the last passed {ago(max(last), now)}" if last else "none has passed yet"
    a = _validate_action(
        schedule,
        bucket,
        target,
        ValidationLevel.DRILL,
        depends,
        f"a restore drill is due (drill.every={duration(drill.every)}, {since})",
    )
    d.actions.append(replace(a, id=a.id + "/drill", drill_service=drill.service))


def _plan_checksums(
    schedule: Schedule, bucket: Bucket, backup: str, why: str, planned: dict[str, ValidateAction], d: ScheduleDecision
) -> None:
    """A checksums validation of ``backup``, in place of the one the plan had for it."""
    a = _validate_action(schedule, bucket, backup, ValidationLevel.CHECKSUMS, (), why)
    if backup in planned:
        d.actions.remove(planned[backup])
    d.actions.append(a)
    planned[backup] = a


def _validate_action(
    schedule: Schedule,
    bucket: Bucket,
    backup: str,
    level: ValidationLevel,
    depends_on: tuple[str, ...],
    reason: str,
) -> ValidateAction:
    location = bucket.url(layout.backup_prefix(bucket, schedule.service, schedule.name, backup))
    return ValidateAction(
        id=validate_id(schedule.service, schedule.name, backup),
        service=schedule.service,
        schedule=schedule.name,
        bucket=schedule.bucket,
        backup=backup,
        level=level,
        location=location,
        reason=f"{reason}: {level.value} level",
        depends_on=depends_on,
    )


def _kind(schedule: Schedule, inventory: ScheduleInventory, chains: Chains) -> tuple[str, str | None, str]:
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
    if (problem := chains.problem(prev)) is not None:  # never build on a chain a restore cannot read
        return "full", None, f"full: the newest backup {prev.name} cannot be restored: {problem}"
    if not prev.validated and schedule.validate.after_export is not None:
        return "full", None, f"full: the newest backup {prev.name} is not validated"
    if len(inventory.chain_of(prev.name)) >= n:  # the chain that ends at prev, prev included
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


def _drift_of_backups(
    schedule: Schedule, bucket: Bucket, inventory: ScheduleInventory, chains: Chains, d: ScheduleDecision
) -> None:
    for b in inventory.backups:
        common = dict(schedule=schedule.name, service=schedule.service, backup=b.name)
        if b.state == BackupState.DELETED:
            d.drift.append(deleted_drift(schedule, bucket, b))
        elif b.state in (BackupState.FAILED, BackupState.ABANDONED):
            d.drift.append(
                Drift(DriftType.FAILED_BACKUP, f"{b.name} {b.state.value}: {b.error or 'no detail'}", **common)
            )  # type: ignore[arg-type]
        elif b.state == BackupState.UNMANAGED:
            why = f" ({b.error})" if b.error else ""
            d.drift.append(
                Drift(
                    DriftType.UNMANAGED_BACKUP,
                    (
                        f"{b.name} holds a sidecar this reconciler cannot read{why}; it is reported, never deleted"
                        if b.foreign
                        else f"{b.name} has no reconciler sidecar{why}; it is reported, never deleted"
                        + (" unless prune_unmanaged" if not schedule.prune_unmanaged else "")
                    ),
                    **common,  # type: ignore[arg-type]
                )
            )
        elif b.state == BackupState.COMPLETE and b.mismatch is not None:
            d.drift.append(Drift(DriftType.BROKEN_BACKUP, f"{b.name}: {b.mismatch}", **common))  # type: ignore[arg-type]
        elif b.state == BackupState.COMPLETE and b.broken:
            last = b.last_validation()
            detail = last.detail if last else ""
            d.drift.append(Drift(DriftType.BROKEN_BACKUP, f"{b.name} failed validation: {detail}", **common))  # type: ignore[arg-type]
        elif b.state == BackupState.COMPLETE and b.kind is not None and (problem := chains.problem(b)) is not None:
            # its own files may all be there: a restore still reads its bases, and fails
            d.drift.append(
                Drift(DriftType.BROKEN_BACKUP, f"{b.name}: {problem}: it cannot be restored", **common)  # type: ignore[arg-type]
            )
        elif b.state == BackupState.COMPLETE and not b.validations and schedule.validate.after_export is not None:
            d.drift.append(
                Drift(DriftType.UNVALIDATED_BACKUP, f"{b.name} is complete but was never validated", **common)
            )  # type: ignore[arg-type]


def _decide_prunes(
    schedule: Schedule,
    bucket: Bucket,
    inventory: ScheduleInventory,
    chains: Chains,
    now: datetime,
    d: ScheduleDecision,
) -> set[str]:
    """Prune actions for what retention no longer keeps, failed/abandoned attempts older than
    ``cleanup_after``, unfinished prunes, and (only if asked) unmanaged folders; never a base
    (at any depth, whatever its state) of a backup the plan keeps. All of them wait for this
    plan's export of the schedule, if there is one."""
    candidates = [
        # an incremental on a broken chain is not validated for the floors: it cannot be restored
        Candidate(b.name, b.slot, b.kind or "full", b.base, b.validated and chains.problem(b) is None)
        for b in inventory.backups
        if b.state == BackupState.COMPLETE and b.kind is not None and b.slot is not None
    ]
    if d.export is not None and d.export.backup:
        slot = latest_slot(schedule, now)
        candidates.append(Candidate(d.export.backup, slot, d.export.kind, d.export.base, False, complete=False))
    _, by_retention = retain(schedule.retention, candidates, now)
    if d.export is not None:
        by_retention.pop(d.export.backup or "", None)  # never prune what this plan makes

    reasons: dict[str, str] = dict(by_retention)
    for b in inventory.backups:
        if b.state == BackupState.PRUNING:
            reasons[b.name] = "an earlier prune was interrupted; finish it"
        elif b.state in (BackupState.FAILED, BackupState.ABANDONED):
            # a backup's age is now - slot; a folder without a slot name ages from when it started
            since = b.slot or (min(b.started_at, now) if b.started_at else None)
            if since is not None and now - since >= schedule.cleanup_after:
                reasons[b.name] = f"{b.state.value} attempt older than cleanup_after={duration(schedule.cleanup_after)}"
        elif (why := deleted_prune_reason(schedule, b, now)) is not None:
            reasons[b.name] = why
        elif b.state == BackupState.UNMANAGED and schedule.prune_unmanaged and not b.foreign:
            reasons[b.name] = "no reconciler sidecar, and the schedule sets prune_unmanaged: true"
    # retention keeps the complete bases of what it keeps; a base in another state (deleted with
    # nothing left to recover, failed, an unfinished prune) is kept too while a kept backup names
    # it, so that the incremental's broken_backup drift keeps naming what is wrong, and what is
    # left of the base stays for whoever repairs it; it goes once nothing kept needs it
    needed = set(d.export.chain) if d.export is not None else set()
    for b in inventory.backups:
        if b.state == BackupState.COMPLETE and b.kind == "incremental" and b.name not in reasons:
            base = b.base
            while base and base not in needed:  # a chain met before is not walked again
                needed.add(base)
                found = inventory.find(base)
                base = found.base if found is not None else None
    reasons = {n: r for n, r in reasons.items() if n not in needed}
    _say_held(schedule, bucket, inventory, needed, d)
    sizes = {b.name: b.total_size for b in inventory.backups}
    states = {b.name: b.state.value for b in inventory.backups}
    depends = (d.export.id,) if d.export is not None else ()
    for name in sorted(reasons):
        d.actions.append(
            PruneAction(
                id=prune_id(schedule.service, schedule.name, name),
                service=schedule.service,
                schedule=schedule.name,
                bucket=schedule.bucket,
                backup=name,
                location=bucket.url(layout.backup_prefix(bucket, schedule.service, schedule.name, name)),
                state=states[name],
                size=sizes[name],
                reason=reasons[name],
                depends_on=depends,
            )
        )
    return set(reasons)


def _say_held(
    schedule: Schedule, bucket: Bucket, inventory: ScheduleInventory, needed: set[str], d: ScheduleDecision
) -> None:
    """A deleted base a kept backup needs says, in its drift, that it is kept (not pruned after
    ``cleanup_after``)."""
    for i, x in enumerate(d.drift):
        b = inventory.find(x.backup) if x.type == DriftType.DELETED_BACKUP and x.backup in needed else None
        if b is not None:
            d.drift[i] = deleted_drift(schedule, bucket, b, needed=True)
