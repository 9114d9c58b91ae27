"""Adoption (``adopt_unmanaged: true``, docs/retention.md): an unmanaged folder of a schedule whose
ClickHouse manifest holds the schedule's whole scope is adopted by a ``validate`` action at level
``manifest``; when the manifest validates, the action writes the folder's sidecar (kind and base
from the manifest, slot from the folder name or else the manifest's timestamp, scope from the
manifest), and the backup counts for retention from the next plan. What cannot be adopted gets
a warning that says why. Pure.

Terraform's ``import`` is the model: the reconciler takes over what exists, it never rewrites it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from ..bucket import layout
from ..model import (
    BackupState,
    Bucket,
    PruneAction,
    Schedule,
    ScheduleInventory,
    Scope,
    ValidateAction,
    ValidationLevel,
    iso,
)
from ..model.adoption import ManifestFacts
from ..model.slots import parse_backup_name
from .ids import validate_id
from .schedules import ScheduleDecision, usable

__all__ = ["decide_adoptions", "missing_scope"]


def missing_scope(schedule: Schedule, facts: ManifestFacts, service_databases: tuple[str, ...] | None) -> list[str]:
    """What of the schedule's scope the backup does not hold (empty: it holds all of it)."""
    if schedule.scope.databases:
        return [f"database {db}" for db in schedule.scope.databases if db not in facts.databases]
    if schedule.scope.tables:
        return [f"table {t}" for t in schedule.scope.tables if t not in facts.tables]
    assert service_databases is not None
    return [f"database {db}" for db in service_databases if db not in facts.databases]


def _scope(schedule: Schedule, facts: ManifestFacts) -> Scope:
    if schedule.scope.whole_service:
        return Scope()
    if schedule.scope.tables:
        return Scope(tables=facts.tables)
    return Scope(databases=facts.databases)


def decide_adoptions(
    schedule: Schedule,
    bucket: Bucket,
    inventory: ScheduleInventory,
    facts: Mapping[str, ManifestFacts],
    service_databases: tuple[str, ...] | None,
    d: ScheduleDecision,
) -> None:
    """Adopt what can be adopted (adding validate actions to ``d``, and taking back the prunes that
    ``prune_unmanaged`` planned for them); warn about the rest."""
    if not schedule.adopt_unmanaged:
        return
    by_name = {b.name: b for b in inventory.backups}
    head = f"schedule {schedule.name}: unmanaged folder"
    candidates: list[tuple[datetime, str, ManifestFacts]] = []
    for b in inventory.backups:
        if b.state != BackupState.UNMANAGED or b.foreign:
            continue
        if not b.has_manifest:
            d.warnings.append(
                f"{head} {b.name} is not adopted: it has no manifest .backup, so it is no complete backup"
            )
            continue
        f = facts.get(b.name)
        if f is None:
            continue
        if f.problem:
            d.warnings.append(f"{head} {b.name} is not adopted: {f.problem}")
            continue
        parsed = parse_backup_name(b.name)
        slot = parsed[0] if parsed else f.timestamp
        if slot is None:
            d.warnings.append(
                f"{head} {b.name} is not adopted: neither its name nor its manifest gives the time it was taken"
            )
            continue
        if schedule.scope.whole_service and service_databases is None:
            d.warnings.append(
                f"{head} {b.name} is not adopted now: service {schedule.service} cannot be reached to check that "
                "the backup holds the whole service"
            )
            continue
        missing = missing_scope(schedule, f, service_databases)
        if missing:
            d.warnings.append(
                f"{head} {b.name} is not adopted: its backup does not hold the schedule's whole scope "
                f"(it lacks {', '.join(missing[:5])}"
                + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
                + ")"
            )
            continue
        candidates.append((slot, b.name, f))

    adopted: dict[str, str] = {}  # folder -> its adopt action id
    for slot, name, f in sorted(candidates, key=lambda c: (c[0], c[1])):
        depends: tuple[str, ...] = ()
        if f.kind == "incremental":
            if f.base is None:
                d.warnings.append(
                    f"{head} {name} is not adopted: it is an incremental whose base is not a folder of this schedule"
                )
                continue
            base = by_name.get(f.base)
            if f.base in adopted:
                depends = (adopted[f.base],)
            elif base is None or not usable(base):
                d.warnings.append(
                    f"{head} {name} is not adopted: its base {f.base} is not a complete backup of the schedule"
                )
                continue
        scope = _scope(schedule, f)
        location = bucket.url(layout.backup_prefix(bucket, schedule.service, schedule.name, name))
        taken = f"taken {iso(f.timestamp)}" if f.timestamp else "of unknown time"
        what = f"{f.kind}" + (f" on {f.base}" if f.base else "")
        action = ValidateAction(
            id=validate_id(schedule.service, schedule.name, name),
            service=schedule.service,
            schedule=schedule.name,
            bucket=schedule.bucket,
            backup=name,
            level=ValidationLevel.MANIFEST,
            location=location,
            adopt={"kind": f.kind, "base": f.base, "slot": iso(slot), "scope": scope.to_json()},
            reason=(
                f"adopt unmanaged folder {name} (adopt_unmanaged: true): its manifest ({what}, {taken}) holds the "
                f"schedule's scope; when it validates, its sidecar is written and it counts for retention from the "
                f"next plan: manifest level"
            ),
            depends_on=depends,
        )
        d.actions.append(action)
        adopted[name] = action.id
    if adopted:  # adoption wins over prune_unmanaged
        d.actions[:] = [
            a for a in d.actions if not (isinstance(a, PruneAction) and a.backup in adopted and a.state == "unmanaged")
        ]
