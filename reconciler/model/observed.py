"""The observed state: what the buckets, ClickHouse and the ClickHouse Cloud API show
(docs/bucket-layout.md). Built by observe/, read by plan/ and render/; frozen."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .cloud import CloudState
from .desired import ValidationLevel
from .privileges import PrivilegeState
from .time import iso, parse_iso

if TYPE_CHECKING:
    from .adoption import ManifestFacts
    from .snapshots import ObservedSnapshot

FINAL_STATUSES = frozenset(
    {"BACKUP_CREATED", "BACKUP_FAILED", "BACKUP_CANCELLED", "RESTORED", "RESTORE_FAILED", "RESTORE_CANCELLED"}
)
SUCCESS_STATUSES = frozenset({"BACKUP_CREATED", "RESTORED"})
RUNNING_STATUSES = frozenset({"CREATING_BACKUP", "RESTORING"})


@dataclass(frozen=True)
class Operation:
    """A row of ClickHouse's ``system.backups``: a BACKUP or RESTORE, by its id."""

    id: str
    name: str
    status: str
    error: str
    start_time: datetime | None
    end_time: datetime | None
    num_files: int
    total_size: int
    #: the objects ClickHouse stored in the folder besides its manifest (files found in a base or
    #: stored once for several of the same checksum are not among them), and the bytes of those
    #: objects and the manifest together (``uncompressed_size``; a folder backup is not compressed)
    num_entries: int | None = None
    stored_bytes: int | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        return self.status in SUCCESS_STATUSES


class BackupState(str, Enum):
    COMPLETE = "complete"  # `.backup` present
    RUNNING = "running"  # sidecar in progress and the operation is live
    FAILED = "failed"  # ClickHouse reported failure; no `.backup`
    ABANDONED = "abandoned"  # sidecar in progress, no live operation, no `.backup`
    UNMANAGED = "unmanaged"  # no sidecar
    PRUNING = "pruning"  # a prune started and did not finish: the next apply finishes it
    #: the sidecar says complete and the manifest is gone: deleted outside an apply (never a
    #: failed attempt; ``ObservedBackup.recoverable`` says whether its versions survive)
    DELETED = "deleted"


class Refresh(str, Enum):
    """How much of the bucket an observation reads (docs/commands.md, "Refresh")."""

    #: per schedule one delimiter listing of the folder names and the index; a folder the index
    #: does not know as settled costs one listing of its top level and a sidecar read
    FAST = "fast"
    #: every object is listed, and each complete backup's files and bytes are compared with what
    #: ClickHouse reported in its sidecar
    FULL = "full"


@dataclass(frozen=True)
class ObserveOptions:
    """What an observation reads. Passed from the operations to observe (and on to each reader of a
    bucket); a new observation choice is a field here, with a default."""

    refresh: Refresh = Refresh.FAST


class ValidationResult(str, Enum):
    OK = "ok"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Validation:
    level: ValidationLevel
    at: datetime
    result: ValidationResult
    detail: str = ""  # on failure: the first error, naming the file
    files: int | None = None
    bytes: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"level": self.level.value, "at": iso(self.at), "result": self.result.value}
        if self.files is not None:
            out["files"] = self.files
        if self.bytes is not None:
            out["bytes"] = self.bytes
        out["detail"] = self.detail
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Validation:
        files, size = d.get("files"), d.get("bytes")
        return cls(
            _member(_LEVELS, ValidationLevel, d["level"]),
            parse_iso(d["at"]),
            _member(_RESULTS, ValidationResult, d["result"]),
            str(d.get("detail", "")),
            files if isinstance(files, int) else None,
            size if isinstance(size, int) else None,
        )


#: made once: a plan reads the validations of every backup, and an Enum's call is slow
_LEVELS = {m.value: m for m in ValidationLevel}
_RESULTS = {m.value: m for m in ValidationResult}


def _member(members: dict[str, Any], enum: Any, value: Any) -> Any:
    try:
        return members[value]
    except (KeyError, TypeError):
        return enum(value)  # anything else: what the Enum makes of it (its member, or its error)


def _at(v: Validation) -> datetime:
    return v.at


#: stronger levels prove more: a drill restores, checksums read every byte, manifest lists
LEVEL_STRENGTH = {ValidationLevel.MANIFEST: 1, ValidationLevel.CHECKSUMS: 2, ValidationLevel.DRILL: 3}


@dataclass(frozen=True, slots=True)
class ObservedBackup:
    """One folder under a schedule prefix, as the bucket (and ClickHouse) show it."""

    name: str  # folder name: slot, maybe with a `.N` attempt suffix
    state: BackupState
    slot: datetime | None  # parsed from the name; None for an unmanaged folder with another name
    attempt: int = 1
    kind: str | None = None  # full | incremental
    base: str | None = None
    operation_id: str | None = None
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    #: bytes and files of the folder as ClickHouse reported them (its sidecar); a full refresh
    #: gives an unmanaged folder (no sidecar) those of its listing
    total_size: int = 0
    num_files: int = 0
    validations: tuple[Validation, ...] = ()
    has_manifest: bool = False
    sidecar_etag: str | None = None
    #: unmanaged, yet it holds a sidecar this reconciler cannot read (tampered, or written by a
    #: newer version): reported, never pruned, whatever prune_unmanaged says
    foreign: bool = False
    #: a copy in a copy bucket: its source's folder (URL) and ClickHouse operation id, from its sidecar
    source_location: str | None = None
    source_operation_id: str | None = None
    #: on a bucket with ``immutability``: the latest retain-until of its manifest and its sidecar
    locked_until: datetime | None = None
    #: running in ClickHouse while the apply that started it is gone (no live lock of its run):
    #: the next apply adopts it (waits for it and records its outcome) instead of starting another
    orphaned: bool = False
    run_id: str | None = None  # the apply that started it (from the sidecar)
    #: a full refresh found the folder's files or bytes differ from what its sidecar recorded
    #: (a file deleted or changed behind the reconciler's back): the backup counts as broken
    mismatch: str | None = None
    #: a deleted backup (``BackupState.DELETED``): True when its manifest's version survives under
    #: a delete marker (``recover`` can bring it back), False when nothing of it survives, None
    #: when that is not known (the provider's versions are not read); ``error`` says why
    recoverable: bool | None = None
    #: its sidecar says complete and ClickHouse's manifest is gone: deleted outside an apply (a
    #: schedule's backup is then ``deleted``; a copy is ``failed`` and broken_backup drift)
    manifest_lost: bool = False

    def last_validation(self, level: ValidationLevel | None = None) -> Validation | None:
        vs = self.validations if level is None else [v for v in self.validations if v.level == level]
        if len(vs) < 2:  # most backups: asked per backup several times a plan
            return vs[0] if vs else None
        return max(vs, key=_at)

    def strongest_passed(self) -> Validation | None:
        """The strongest level passed since the last failure (newest of that level)."""
        ordered = sorted(self.validations, key=lambda v: v.at)
        since_failure: list[Validation] = []
        for v in ordered:
            if v.result == ValidationResult.FAILED:
                since_failure = []
            else:
                since_failure.append(v)
        if not since_failure:
            return None
        return max(since_failure, key=lambda v: (LEVEL_STRENGTH[v.level], v.at))

    def last_ok(self, level: ValidationLevel) -> datetime | None:
        times = [v.at for v in self.validations if v.level == level and v.result == ValidationResult.OK]
        return max(times) if times else None

    @property
    def broken(self) -> bool:
        if self.mismatch is not None:
            return True
        last = self.last_validation()
        return last is not None and last.result == ValidationResult.FAILED

    @property
    def validated(self) -> bool:
        if self.mismatch is not None:
            return False
        last = self.last_validation()
        return last is not None and last.result == ValidationResult.OK


@dataclass(frozen=True)
class ScheduleInventory:
    schedule: str
    prefix: str  # `<prefix>/<service>/<schedule>/`
    backups: tuple[ObservedBackup, ...]  # oldest first
    #: the schedule's index already says what this observation found (an apply need not write it)
    index_current: bool = True

    def complete(self) -> list[ObservedBackup]:
        return [b for b in self.backups if b.state == BackupState.COMPLETE and b.kind is not None]

    @cached_property
    def by_name(self) -> Mapping[str, ObservedBackup]:
        """Each backup by its folder name, made once: plans, prunes and renderers look backups up
        per action or per backup, and a scan of the whole inventory each time is quadratic in the
        number of backups (folder names are unique: they are the keys of the listing)."""
        return {b.name: b for b in self.backups}

    def find(self, name: str | None) -> ObservedBackup | None:
        return self.by_name.get(name) if name is not None else None

    def chain_of(self, base: str | None) -> list[str]:
        """Names of the bases an incremental on ``base`` needs, nearest first."""
        by_name = self.by_name
        out: list[str] = []
        while base and base not in out:
            out.append(base)
            b = by_name.get(base)
            base = b.base if b else None
        return out


@dataclass(frozen=True)
class RestoreRecord:
    restore: str
    backup: str
    spec_digest: str
    done_at: datetime  # for an attempt under way: when it started
    run_id: str
    in_progress: bool = False  # an attempt started and has not recorded its end
    error: str | None = None  # of an attempt: its RESTORE ended and failed, with this error


@dataclass(frozen=True)
class LockInfo:
    lock_id: str
    host: str
    pid: int
    started_at: datetime
    lease_expires_at: datetime
    etag: str = ""


@dataclass(frozen=True)
class ObjectLockState:
    """A bucket's versioning and Object Lock default retention, as the store reports them."""

    versioning: bool
    lock_enabled: bool = False
    mode: str | None = None  # compliance | governance
    days: int | None = None
    error: str | None = None  # it could not be read (never a secret)


@dataclass(frozen=True)
class BucketState:
    bucket: str
    reachable: bool
    error: str | None = None  # why not reachable (never a secret)
    lock: LockInfo | None = None
    #: read for buckets that declare ``immutability``
    object_lock: ObjectLockState | None = None


@dataclass(frozen=True)
class ServiceState:
    service: str
    reachable: bool
    error: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class Observed:
    buckets: Mapping[str, BucketState]
    services: Mapping[str, ServiceState]
    schedules: Mapping[str, ScheduleInventory]
    restores: Mapping[str, RestoreRecord]
    digest: str  # sha256 of everything a plan depends on
    #: per service with ``cloud.api``: what the ClickHouse Cloud API reports
    cloud: Mapping[str, CloudState] = field(default_factory=dict)
    #: per drill service: scratch databases left by drills that did not finish
    drill_leftovers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: per restore: why its record in the bucket cannot be read (it is then not run again)
    restore_problems: Mapping[str, str] = field(default_factory=dict)
    #: the declared snapshots' folders and records, and undeclared snapshot folders
    snapshots: tuple[ObservedSnapshot, ...] = ()
    #: per schedule with ``adopt_unmanaged``: what the manifest of each unmanaged folder says
    adoptable: Mapping[str, Mapping[str, ManifestFacts]] = field(default_factory=dict)
    #: per service of a whole-service schedule with ``adopt_unmanaged``: its databases now
    service_databases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: per service whose user the declared exports or restores need grants of: what it has
    privileges: Mapping[str, PrivilegeState] = field(default_factory=dict)
    #: per schedule, per copy bucket (config name): the copies there, as the copy bucket shows them
    copies: Mapping[str, Mapping[str, ScheduleInventory]] = field(default_factory=dict)
    #: how much of the buckets this observation read
    refresh: Refresh = Refresh.FAST
    #: (bucket, service) whose snapshot index is missing or behind the bucket: an apply rewrites it
    stale_snapshot_indexes: frozenset[tuple[str, str]] = frozenset()
