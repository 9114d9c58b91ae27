"""Snapshot decisions (docs/plan.md, "Snapshots"): a declared snapshot is made once, validated
like an export, pruned once ``now`` is past its ``keep_until``, and restorable by name. Pure.

States, from the folder ``<prefix>/<service>/_snapshots/<name>/`` and the record
``<prefix>/.reconciler/snapshots/<name>.json`` (written when its export starts):

- no folder, no record (or a record of a cleared attempt): export it, then validate it;
- no folder, a record that it was made: it was deleted by hand; ``deleted_backup`` drift, and it
  is never made again under that name (it would no longer hold what its name promises);
- a failed or abandoned attempt: remove the attempt, and export again after that;
- complete: validate it if it never was; prune it once ``now`` is past the end of ``keep_until``;
- a snapshot folder no declared snapshot names: reported as unmanaged, never deleted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ..bucket import layout
from ..model import (
    Action,
    BackupState,
    Config,
    Drift,
    DriftType,
    ExportAction,
    Observed,
    PruneAction,
    Restore,
    RestoreAction,
    Snapshot,
    ValidateAction,
    ValidationLevel,
    iso,
)
from ..model.snapshots import ObservedSnapshot, SnapshotRecordState
from ..model.targets import Selection
from .ids import export_id, prune_id, restore_id, validate_id
from .restores import prior_restore

__all__ = ["SnapshotDecisions", "decide_snapshot_restore", "decide_snapshots"]

#: snapshots are validated like an export, at this level
SNAPSHOT_VALIDATION = ValidationLevel.MANIFEST


@dataclass
class SnapshotDecisions:
    actions: list[Action] = field(default_factory=list)
    drift: list[Drift] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: per snapshot made by this plan: the ids a restore of it waits for (export, validate)
    made: dict[str, tuple[str, ...]] = field(default_factory=dict)


def decide_snapshots(config: Config, observed: Observed, sel: Selection, now: datetime) -> SnapshotDecisions:
    d = SnapshotDecisions()
    seen = {(o.service, o.bucket, o.name): o for o in observed.snapshots}
    for name in sorted(sel.snapshots):
        sn = config.snapshots[name]
        bucket_state = observed.buckets.get(sn.bucket)
        if bucket_state is None or not bucket_state.reachable:
            continue  # reported as missing_bucket
        o = seen.get((sn.service, sn.bucket, name)) or ObservedSnapshot(name, sn.service, sn.bucket, True, None)
        _decide_one(config, observed, sn, o, now, d)
    for o in observed.snapshots:
        if o.declared or o.folder is None:
            continue
        d.drift.append(
            Drift(
                DriftType.UNMANAGED_BACKUP,
                f"snapshot {o.name} of service {o.service} is no longer declared under `snapshots`; it is left in "
                "the bucket and never deleted by the reconciler (delete it by hand, or declare it again)",
                service=o.service,
                bucket=o.bucket,
                backup=f"{layout.SNAPSHOTS}/{o.name}",
            )
        )
    return d


def _location(config: Config, sn: Snapshot) -> str:
    bucket = config.buckets[sn.bucket]
    return bucket.url(layout.snapshot_prefix(bucket, sn.service, sn.name))


def _ids(sn: Snapshot) -> tuple[str, str, str]:
    return (
        export_id(sn.service, layout.SNAPSHOTS, sn.name),
        validate_id(sn.service, layout.SNAPSHOTS, sn.name),
        prune_id(sn.service, layout.SNAPSHOTS, sn.name),
    )


def _decide_one(
    config: Config, observed: Observed, sn: Snapshot, o: ObservedSnapshot, now: datetime, d: SnapshotDecisions
) -> None:
    name = sn.name
    common = dict(service=sn.service, bucket=sn.bucket, backup=f"{layout.SNAPSHOTS}/{name}")
    expires = sn.expires_at
    expired = expires is not None and now >= expires
    record = o.record
    folder = o.folder
    if o.record_problem:
        d.warnings.append(f"snapshot {name}: its record {o.record_problem}; nothing is planned for it")
        return

    if folder is None:
        if record is not None and record.state == SnapshotRecordState.PRUNING:
            _prune(config, sn, "complete", 0, f"finish the prune of snapshot {name} past keep_until", (), d)
        elif record is not None and record.state == SnapshotRecordState.MADE:
            d.drift.append(
                Drift(
                    DriftType.DELETED_BACKUP,
                    f"snapshot {name} was made on {record.made_at:%Y-%m-%d %H:%M}Z (run {record.run_id}) and its "
                    f"folder {_location(config, sn)} is gone; it is not made again under this name, since it would "
                    "no longer hold what its name promises: declare a snapshot of another name, or remove this one",
                    **common,  # type: ignore[arg-type]
                )
            )
        elif record is not None and record.state == SnapshotRecordState.PRUNED:
            pass  # made, kept until keep_until, and pruned: done
        elif expired:
            d.warnings.append(
                f"snapshot {name}: keep_until {sn.keep_until} has passed and it was never made; it is not made now"
            )
        else:
            _export(config, observed, sn, (), "declared snapshot not made yet", d)
        return

    state = folder.state
    if state == BackupState.RUNNING:
        return  # being made
    if state == BackupState.UNMANAGED:
        d.drift.append(
            Drift(
                DriftType.UNMANAGED_BACKUP,
                f"the folder of snapshot {name} holds no sidecar the reconciler can read"
                + (f" ({folder.error})" if folder.error else "")
                + "; it is reported, never deleted, and the snapshot is not made over it",
                **common,  # type: ignore[arg-type]
            )
        )
        return
    if state in (BackupState.FAILED, BackupState.ABANDONED, BackupState.PRUNING):
        finishing = state == BackupState.PRUNING and (
            (record is not None and record.state == SnapshotRecordState.PRUNING) or expired
        )
        if finishing:
            _prune(config, sn, state.value, folder.total_size, f"finish the prune of snapshot {name}", (), d)
            return
        if state != BackupState.PRUNING:
            d.drift.append(
                Drift(
                    DriftType.FAILED_BACKUP,
                    f"snapshot {name} {state.value}: {folder.error or 'no detail'}",
                    **common,  # type: ignore[arg-type]
                )
            )
        why = (
            f"the attempt to make snapshot {name} {state.value if state != BackupState.PRUNING else 'is half removed'}"
        )
        prune = _prune(
            config, sn, state.value, folder.total_size, f"{why}; remove it to make the snapshot again", (), d
        )
        if not expired:
            _export(config, observed, sn, (prune.id,), f"{why}; made again once it is removed", d)
        return

    # complete
    if expired:
        _prune(
            config,
            sn,
            state.value,
            folder.total_size,
            f"snapshot {name} is past keep_until {sn.keep_until} (kept until {iso(expires)})",  # type: ignore[arg-type]
            (),
            d,
        )
        return
    if folder.broken:
        last = folder.last_validation()
        what = f": {folder.mismatch}" if folder.mismatch else f" failed validation: {last.detail if last else ''}"
        d.drift.append(Drift(DriftType.BROKEN_BACKUP, f"snapshot {name}{what}", **common))  # type: ignore[arg-type]
    elif not folder.validations:
        d.drift.append(
            Drift(DriftType.UNVALIDATED_BACKUP, f"snapshot {name} is complete but was never validated", **common)  # type: ignore[arg-type]
        )
        d.actions.append(_validate(config, sn, (), "snapshot complete but never validated"))


def _export(
    config: Config, observed: Observed, sn: Snapshot, depends: tuple[str, ...], why: str, d: SnapshotDecisions
) -> None:
    service = observed.services.get(sn.service)
    if service is None or not service.reachable:
        d.warnings.append(
            f"snapshot {sn.name} is due but service {sn.service} cannot be reached, so no export is planned"
        )
        return
    eid, _, _ = _ids(sn)
    until = f", kept until the end of {sn.keep_until} (UTC)" if sn.keep_until else ", kept until removed by hand"
    export = ExportAction(
        id=eid,
        service=sn.service,
        snapshot=sn.name,
        bucket=sn.bucket,
        backup=sn.name,
        kind="full",
        base=None,
        location=_location(config, sn),
        scope=sn.scope,
        reason=f"{why}: a full backup, made once{until}; schedule retention never touches it",
        depends_on=depends,
    )
    validate = _validate(config, sn, (export.id,), "validate the new snapshot after export")
    d.actions += [export, validate]
    d.made[sn.name] = (export.id, validate.id)


def _validate(config: Config, sn: Snapshot, depends: tuple[str, ...], why: str) -> ValidateAction:
    _, vid, _ = _ids(sn)
    return ValidateAction(
        id=vid,
        service=sn.service,
        snapshot=sn.name,
        bucket=sn.bucket,
        backup=sn.name,
        level=SNAPSHOT_VALIDATION,
        location=_location(config, sn),
        reason=f"{why}: {SNAPSHOT_VALIDATION.value} level",
        depends_on=depends,
    )


def _prune(
    config: Config, sn: Snapshot, state: str, size: int, why: str, depends: tuple[str, ...], d: SnapshotDecisions
) -> PruneAction:
    _, _, pid = _ids(sn)
    action = PruneAction(
        id=pid,
        service=sn.service,
        snapshot=sn.name,
        bucket=sn.bucket,
        backup=sn.name,
        location=_location(config, sn),
        state=state,
        size=size,
        reason=why,
        depends_on=depends,
    )
    d.actions.append(action)
    return action


def decide_snapshot_restore(
    restore: Restore, config: Config, observed: Observed, decisions: SnapshotDecisions
) -> tuple[Action | None, str | None]:
    """A restore ``from: {snapshot: NAME}``: the snapshot's folder, once it is complete (after this
    plan's export and validation of it, when this plan makes it)."""
    name = restore.name
    assert restore.source.snapshot is not None and restore.target.service is not None
    sn = config.snapshots[restore.source.snapshot]
    bucket_state = observed.buckets.get(sn.bucket)
    if bucket_state is None or not bucket_state.reachable:
        return None, f"restore {name}: bucket {sn.bucket} of snapshot {sn.name} cannot be read"
    target = observed.services.get(restore.target.service)
    if target is None or not target.reachable:
        return None, f"restore {name}: service {restore.target.service} cannot be reached"
    prior = prior_restore(restore, observed)
    if prior.refusal is not None or prior.done:
        return None, prior.refusal
    o = next((s for s in observed.snapshots if (s.name, s.service, s.bucket) == (sn.name, sn.service, sn.bucket)), None)
    folder = o.folder if o else None
    depends: tuple[str, ...] = ()
    if folder is not None and folder.state == BackupState.COMPLETE and folder.kind is not None and not folder.broken:
        pass
    elif sn.name in decisions.made:
        depends = decisions.made[sn.name]
    else:
        return None, f"restore {name}: snapshot {sn.name} is not a complete, unbroken backup in the bucket"

    renames = dict(restore.target.databases)
    into = ", ".join(f"{s} → {t}" for s, t in renames.items()) or "same names"
    what = f"snapshot {sn.name} into service {restore.target.service} ({into})"
    why = prior.reason(what, ", once this plan has made it" if depends else "")
    action = RestoreAction(
        id=restore_id(name),
        service=restore.target.service,
        snapshot=sn.name,
        bucket=sn.bucket,
        backup=sn.name,
        restore=name,
        from_service=sn.service,
        kind="full",
        base=None,
        chain=(),
        databases=renames,
        allow_non_empty_tables=restore.allow_non_empty_tables,
        location=_location(config, sn),
        spec_digest=prior.digest,
        reason=why,
        depends_on=depends,
    )
    return action, None
