"""What one schedule's prefix holds: one listing, then the sidecars, then a state per folder."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .. import layout
from ..clickhouse import RUNNING_STATUSES, Operation
from ..model import BackupState, LockInfo, ObservedBackup, RestoreRecord, parse_iso
from ..sidecar import MAX_NAME, Sidecar, SidecarState, shown
from ..slots import parse_backup_name
from ..stores import Store

#: sidecars are read this many at a time
READ_PARALLELISM = 16
#: a sidecar or control object larger than this is not trusted (tampering, not ours)
MAX_SMALL_OBJECT = 4 * 1024 * 1024


@dataclass(slots=True)
class Folder:
    """What the listing and the sidecar say about one backup folder."""

    name: str
    has_manifest: bool = False
    num_files: int = 0
    total_size: int = 0
    sidecar_etag: str | None = None
    sidecar_size: int = 0
    sidecar: Sidecar | None = None
    sidecar_problem: str | None = None
    files: dict[str, int] = field(default_factory=dict)


def list_folders(store: Store, prefix: str, keep_files: bool = False) -> dict[str, Folder]:
    """One recursive listing of ``prefix`` grouped by backup folder."""
    folders: dict[str, Folder] = {}
    for obj in store.list(prefix):
        rel = obj.key[len(prefix) :]
        name, sep, inner = rel.partition("/")
        if not sep or not name:
            continue  # an object directly under the schedule prefix: not a backup
        f = folders.setdefault(name, Folder(name))
        if inner == layout.SIDECAR:
            f.sidecar_etag, f.sidecar_size = obj.etag, obj.size
            continue
        if inner == layout.MANIFEST:
            f.has_manifest = True
        f.num_files += 1
        f.total_size += obj.size
        if keep_files:
            f.files[inner] = obj.size
    return folders


def classify(f: Folder, operation: Operation | None, lock: LockInfo | None, now: datetime) -> ObservedBackup:
    """The state of one folder (docs/bucket-layout.md): complete when ClickHouse's manifest is there; an
    in-progress sidecar is running only while its operation is live in ClickHouse or its apply
    still holds an unexpired lock, and abandoned otherwise."""
    parsed = parse_backup_name(f.name)
    slot, attempt = parsed if parsed else (None, 1)
    sc = f.sidecar
    common = dict(
        name=f.name,
        slot=slot,
        attempt=attempt,
        total_size=f.total_size,
        num_files=f.num_files,
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
    )
    if sc.state == SidecarState.PRUNING:
        return ObservedBackup(state=BackupState.PRUNING, error="a prune started and did not finish", **common, **facts)  # type: ignore[arg-type]
    if f.has_manifest:
        return ObservedBackup(state=BackupState.COMPLETE, **common, **facts)  # type: ignore[arg-type]
    if sc.state == SidecarState.COMPLETE:
        error = "the manifest .backup is gone from a backup that was complete"
        return ObservedBackup(state=BackupState.FAILED, error=error, **common, **facts)  # type: ignore[arg-type]
    if sc.state == SidecarState.FAILED:
        return ObservedBackup(state=BackupState.FAILED, error=sc.error, **common, **facts)  # type: ignore[arg-type]
    if operation is not None and operation.status in RUNNING_STATUSES:
        return ObservedBackup(state=BackupState.RUNNING, **common, **facts)  # type: ignore[arg-type]
    if operation is not None and operation.final and not operation.succeeded:
        return ObservedBackup(state=BackupState.FAILED, error=operation.error, **common, **facts)  # type: ignore[arg-type]
    if lock is not None and lock.lock_id == sc.run_id and lock.lease_expires_at > now:
        return ObservedBackup(state=BackupState.RUNNING, **common, **facts)  # type: ignore[arg-type]
    why = "its apply ended without recording an outcome and ClickHouse runs no such operation"
    return ObservedBackup(state=BackupState.ABANDONED, error=why, **common, **facts)  # type: ignore[arg-type]


#: what a tampered control object (lock, restore record, run record) can raise when parsed
MALFORMED = (ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError)


def _field(d: Any, key: str) -> str:
    """A short, printable string field of a control object (it is shown in messages)."""
    value = d[key]
    if not isinstance(value, str) or len(value) > MAX_NAME or not value.isprintable():
        raise ValueError(f"{key} is not a short printable string")
    return value


def parse_lock(data: bytes, etag: str) -> LockInfo:
    d = json.loads(data)
    pid = d["pid"]
    if not isinstance(pid, int) or isinstance(pid, bool):
        raise TypeError("pid is not an integer")
    return LockInfo(
        lock_id=_field(d, "lock_id"),
        host=_field(d, "host"),
        pid=pid,
        started_at=parse_iso(_field(d, "started_at")),
        lease_expires_at=parse_iso(_field(d, "lease_expires_at")),
        etag=etag,
    )


def read_lock(store: Store, key: str) -> LockInfo | None:
    """The lock object; a malformed one is reported as held by an unknown holder with an
    expired lease, so it can be taken over rather than blocking every apply for ever."""
    got = store.read(key)
    if got is None:
        return None
    data, etag = got
    try:
        return parse_lock(data[:MAX_SMALL_OBJECT], etag)
    except MALFORMED:
        epoch = parse_iso("1970-01-01T00:00:00Z")
        return LockInfo(
            lock_id="(unreadable lock object)", host="?", pid=0, started_at=epoch, lease_expires_at=epoch, etag=etag
        )


def parse_restore_record(data: bytes) -> RestoreRecord:
    """``ValueError`` for anything malformed."""
    try:
        d = json.loads(data[:MAX_SMALL_OBJECT])
        in_progress = isinstance(d, dict) and d.get("state") == "in_progress"
        return RestoreRecord(
            restore=_field(d, "restore"),
            backup=_field(d, "backup"),
            spec_digest=_field(d, "spec_digest"),
            done_at=parse_iso(_field(d, "started_at" if in_progress else "done_at")),
            run_id=_field(d, "run_id"),
            in_progress=in_progress,
        )
    except MALFORMED as e:
        raise ValueError(f"{e.__class__.__name__}") from None


def read_restore_record(store: Store, key: str) -> RestoreRecord | None:
    got = store.read(key)
    if got is None:
        return None
    try:
        return parse_restore_record(got[0])
    except ValueError:
        return None


def read_runs(store: Store, prefix: str, limit: int = 5) -> list[dict[str, object]]:
    """The newest run records (run ids begin with their UTC start, so names sort by time)."""
    names = sorted((o.key for o in store.list(prefix) if o.key.endswith(".json")), reverse=True)[:limit]
    out: list[dict[str, object]] = []
    for key in names:
        got = store.read(key)
        if got is None:
            continue
        try:
            d = json.loads(got[0][:MAX_SMALL_OBJECT])
            summary = d.get("summary") or {}
            if not isinstance(summary, dict) or not all(
                isinstance(k, str) and k.isprintable() and type(v) is int for k, v in summary.items()
            ):
                raise ValueError("summary is not a mapping of counts")
            out.append(
                {
                    "run_id": _field(d, "run_id"),
                    "status": _field(d, "status"),
                    "started_at": _field(d, "started_at") if d.get("started_at") is not None else None,
                    "finished_at": _field(d, "finished_at") if d.get("finished_at") is not None else None,
                    "summary": summary,
                }
            )
        except MALFORMED:
            out.append({"run_id": shown(key.rsplit("/", 1)[-1][: -len(".json")], 100), "status": "unreadable"})
    return out
