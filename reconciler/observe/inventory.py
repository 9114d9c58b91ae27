"""The state of each backup folder (docs/bucket-layout.md), and the run records ``status`` shows."""

from __future__ import annotations

from datetime import datetime

from ..bucket.folders import Folder
from ..bucket.records import MALFORMED, decode_run_summary, unreadable_run
from ..bucket.sidecar import SidecarState
from ..model import RUNNING_STATUSES, BackupState, LockInfo, ObservedBackup, Operation
from ..model.slots import parse_backup_name
from ..stores.base import Store


def classify(
    f: Folder,
    operation: Operation | None,
    lock: LockInfo | None,
    now: datetime,
    manifest_gone: BackupState = BackupState.FAILED,
) -> ObservedBackup:
    """The state of one folder (docs/bucket-layout.md): complete when ClickHouse's manifest is there; an
    in-progress sidecar is running only while its operation is live in ClickHouse or its apply
    still holds an unexpired lock, and abandoned otherwise. A complete sidecar without its manifest
    is ``manifest_gone``: a schedule's backup is then ``deleted`` (never a failed attempt, see
    observe/deleted.py); a copy keeps ``failed`` (copied again)."""
    parsed = parse_backup_name(f.name)
    sc = f.sidecar
    # a folder of another name (an adopted backup, a snapshot) has the slot its sidecar records
    slot, attempt = parsed if parsed else (sc.slot if sc else None, 1)
    files, size = sizes_of(f)
    common = dict(
        name=f.name,
        slot=slot,
        attempt=attempt,
        total_size=size,
        num_files=files,
        has_manifest=f.has_manifest,
        sidecar_etag=f.sidecar_etag,
    )
    if sc is None:
        foreign = f.sidecar_etag is not None
        return ObservedBackup(state=BackupState.UNMANAGED, error=f.sidecar_problem, foreign=foreign, **common)  # type: ignore[arg-type]
    facts = dict(
        kind=sc.kind,
        base=sc.base,
        operation_id=sc.operation_id,
        started_at=sc.started_at,
        finished_at=sc.finished_at,
        validations=sc.validations,
        source_location=sc.copy_of.location if sc.copy_of else None,
        source_operation_id=sc.copy_of.operation_id if sc.copy_of else None,
        run_id=sc.run_id,
    )
    if sc.state == SidecarState.PRUNING:
        return ObservedBackup(state=BackupState.PRUNING, error="a prune started and did not finish", **common, **facts)  # type: ignore[arg-type]
    if f.has_manifest:
        return ObservedBackup(
            state=BackupState.COMPLETE,
            mismatch=mismatch_of(f),
            locked_until=f.locked_until,
            **common,  # type: ignore[arg-type]
            **facts,  # type: ignore[arg-type]
        )
    if sc.state == SidecarState.COMPLETE:
        error = "the manifest .backup is gone from a backup that was complete"
        return ObservedBackup(state=manifest_gone, error=error, manifest_lost=True, **common, **facts)  # type: ignore[arg-type]
    if sc.state == SidecarState.FAILED:
        return ObservedBackup(state=BackupState.FAILED, error=sc.error, **common, **facts)  # type: ignore[arg-type]
    its_apply_lives = lock is not None and lock.lock_id == sc.run_id and lock.lease_expires_at > now
    if operation is not None and operation.status in RUNNING_STATUSES:
        return ObservedBackup(state=BackupState.RUNNING, orphaned=not its_apply_lives, **common, **facts)  # type: ignore[arg-type]
    if operation is not None and operation.final and not operation.succeeded:
        return ObservedBackup(state=BackupState.FAILED, error=operation.error, **common, **facts)  # type: ignore[arg-type]
    if its_apply_lives:
        return ObservedBackup(state=BackupState.RUNNING, **common, **facts)  # type: ignore[arg-type]
    why = "its apply ended without recording an outcome and ClickHouse runs no such operation"
    return ObservedBackup(state=BackupState.ABANDONED, error=why, **common, **facts)  # type: ignore[arg-type]


def sizes_of(f: Folder) -> tuple[int, int]:
    """(files, bytes) of a folder: what ClickHouse reported storing there (its sidecar); else what a
    full refresh counted; else ClickHouse's own num_files/total_size of a sidecar written before
    the stored sizes were recorded; else nothing known (0)."""
    sc = f.sidecar
    if sc is not None and sc.stored_files is not None and sc.stored_bytes is not None:
        return sc.stored_files, sc.stored_bytes
    if f.listed_files is not None and f.listed_bytes is not None:
        return f.listed_files, f.listed_bytes
    if sc is not None:
        return sc.num_files or 0, sc.total_size or 0
    return 0, 0


def mismatch_of(f: Folder) -> str | None:
    """A full refresh's comparison of a complete backup's listing with what ClickHouse reported
    storing there (the sidecar's stored files and bytes); None when they agree or either is unknown."""
    sc = f.sidecar
    if sc is None or sc.stored_files is None or sc.stored_bytes is None:
        return None
    if f.listed_files is None or f.listed_bytes is None:
        return None
    if (f.listed_files, f.listed_bytes) == (sc.stored_files, sc.stored_bytes):
        return None
    return (
        f"the bucket holds {f.listed_files} files, {f.listed_bytes} bytes where ClickHouse stored "
        f"{sc.stored_files} files, {sc.stored_bytes} bytes: a file was deleted, added or changed outside the reconciler"
    )


def read_runs(store: Store, prefix: str, limit: int = 5) -> list[dict[str, object]]:
    """The newest run records (run ids begin with their UTC start, so names sort by time)."""
    names = sorted((o.key for o in store.list(prefix) if o.key.endswith(".json")), reverse=True)[:limit]
    out: list[dict[str, object]] = []
    for key in names:
        got = store.read(key)
        if got is None:
            continue
        try:
            out.append(decode_run_summary(got[0]))
        except MALFORMED:
            out.append(unreadable_run(key))
    return out
