"""The values every layer passes around: desired state, observed state, plan.

All frozen: the planner is a pure function of (Config, Observed, now) and must not be able to
change what it was given, and a Plan, once built, is what is reviewed and applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any
from urllib.parse import parse_qsl, urlsplit

UTC = UTC

# --------------------------------------------------------------------------------------------
# Desired state (docs/config.md)
# --------------------------------------------------------------------------------------------


class Provider(str, Enum):
    S3 = "s3"
    GCS = "gcs"
    AZURE = "azure"


class CloudProvider(str, Enum):
    AWS = "aws"
    GCP = "gcp"
    AZURE = "azure"


#: which object store lives in which cloud: a schedule whose bucket is in another cloud than
#: its Cloud service is cross-cloud.
STORE_CLOUD = {Provider.S3: CloudProvider.AWS, Provider.GCS: CloudProvider.GCP, Provider.AZURE: CloudProvider.AZURE}


@dataclass(frozen=True)
class CloudApi:
    organization_id: str
    service_id: str
    key_id: str
    key_secret: str
    url: str = "https://api.clickhouse.cloud"

    def __repr__(self) -> str:  # the key never reaches a log through a repr
        return f"CloudApi(organization_id={self.organization_id!r}, service_id={self.service_id!r}, url={self.url!r})"


@dataclass(frozen=True)
class ManagedBackups:
    period_hours: int | None = None
    retention_hours: int | None = None
    start_time: str | None = None
    external_bucket: str | None = None


@dataclass(frozen=True)
class CloudFacts:
    provider: CloudProvider
    region: str
    tde: bool = False
    compliance: str | None = None
    api: CloudApi | None = None
    managed_backups: ManagedBackups | None = None


@dataclass(frozen=True)
class Service:
    name: str
    dsn: str
    cloud: CloudFacts | None = None

    @property
    def is_chdb(self) -> bool:
        return self.dsn.startswith("chdb:")

    def __repr__(self) -> str:
        from .redact import redact

        return f"Service(name={self.name!r}, dsn={redact(self.dsn)!r}, cloud={self.cloud!r})"


@dataclass(frozen=True)
class Credentials:
    """Every field is a secret or a pointer to one; none is ever rendered."""

    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    role_arn: str | None = None
    hmac_key: str | None = None
    hmac_secret: str | None = None
    service_account_file: str | None = None
    connection_string: str | None = None
    account_name: str | None = None
    account_key: str | None = None

    def __repr__(self) -> str:  # a stray repr in a log must not leak a secret
        present = [k for k, v in self.__dict__.items() if v]
        return f"Credentials({', '.join(present)} set)"

    def secrets(self) -> list[str]:
        return [v for v in self.__dict__.values() if isinstance(v, str) and v]


@dataclass(frozen=True)
class Bucket:
    name: str
    provider: Provider
    bucket: str
    prefix: str = ""
    region: str | None = None
    endpoint: str | None = None  # S3 API endpoint (S3-compatible servers; GCS's S3-interop endpoint)
    credentials: Credentials = field(default_factory=Credentials)
    gcs_json_endpoint: str | None = None  # GCS JSON API endpoint the reconciler itself reads with

    def url(self, key: str = "") -> str:
        """The user-facing address of a key: ``s3://bucket/key``."""
        scheme = {Provider.S3: "s3", Provider.GCS: "gs", Provider.AZURE: "azure"}[self.provider]
        return f"{scheme}://{self.bucket}/{key}"


@dataclass(frozen=True)
class Retention:
    keep_last: int | None = None
    keep_hourly: int | None = None
    keep_daily: int | None = None
    keep_weekly: int | None = None
    keep_monthly: int | None = None
    keep_yearly: int | None = None
    keep_within: timedelta | None = None
    min_valid: int = 1

    @property
    def is_empty(self) -> bool:
        return all(
            v is None
            for v in (
                self.keep_last,
                self.keep_hourly,
                self.keep_daily,
                self.keep_weekly,
                self.keep_monthly,
                self.keep_yearly,
                self.keep_within,
            )
        )


class ValidationLevel(str, Enum):
    MANIFEST = "manifest"
    CHECKSUMS = "checksums"
    DRILL = "drill"


@dataclass(frozen=True)
class Drill:
    service: str
    every: timedelta


@dataclass(frozen=True)
class ValidatePolicy:
    after_export: ValidationLevel | None = ValidationLevel.MANIFEST  # None = "none"
    checksums_every: timedelta | None = None
    drill: Drill | None = None


@dataclass(frozen=True)
class Scope:
    """What a backup holds: some databases, some tables, or the whole service (both empty)."""

    databases: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()

    @property
    def whole_service(self) -> bool:
        return not self.databases and not self.tables

    def to_json(self) -> dict[str, Any]:
        if self.databases:
            return {"databases": list(self.databases)}
        if self.tables:
            return {"tables": list(self.tables)}
        return {"all": True}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Scope:
        return cls(tuple(data.get("databases", ())), tuple(data.get("tables", ())))


@dataclass(frozen=True)
class Schedule:
    name: str
    service: str
    bucket: str
    scope: Scope = field(default_factory=Scope)
    cron: str | None = None
    every: timedelta | None = None
    full_every: int | None = None  # incremental: {full_every: N}; None = always full
    allow_cross_cloud: bool = False
    prune_unmanaged: bool = False
    cleanup_after: timedelta = timedelta(hours=24)
    retention: Retention = field(default_factory=Retention)
    validate: ValidatePolicy = field(default_factory=ValidatePolicy)


@dataclass(frozen=True)
class RestoreSource:
    schedule: str | None = None  # SQL path: a schedule's backup
    service: str | None = None  # Cloud path: a Cloud backup of a service
    backup: str = "latest"


@dataclass(frozen=True)
class NewService:
    name: str
    region: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RestoreTarget:
    service: str | None = None
    databases: Mapping[str, str] = field(default_factory=dict)  # source -> target name
    new_service: NewService | None = None


@dataclass(frozen=True)
class Restore:
    name: str
    source: RestoreSource
    target: RestoreTarget
    allow_non_empty_tables: bool = False


@dataclass(frozen=True)
class Config:
    path: str
    services: Mapping[str, Service]
    buckets: Mapping[str, Bucket]
    schedules: Mapping[str, Schedule]
    restores: Mapping[str, Restore]
    digest: str  # sha256 of the config with every secret removed
    warnings: tuple[str, ...] = ()

    def secrets(self) -> list[str]:
        """Every secret value in the config, for the redactor."""
        out: list[str] = []
        for b in self.buckets.values():
            out += b.credentials.secrets()
        for s in self.services.values():
            if s.cloud and s.cloud.api:
                out += [s.cloud.api.key_id, s.cloud.api.key_secret]
            if "://" in s.dsn:
                parts = urlsplit(s.dsn)
                out.append(parts.password or "")
                out += [v for k, v in parse_qsl(parts.query) if k.lower() in ("password", "pass", "secret")]
        return out


# --------------------------------------------------------------------------------------------
# Observed state (docs/bucket-layout.md)
# --------------------------------------------------------------------------------------------


class BackupState(str, Enum):
    COMPLETE = "complete"  # `.backup` present
    RUNNING = "running"  # sidecar in progress and the operation is live
    FAILED = "failed"  # ClickHouse reported failure; no `.backup`
    ABANDONED = "abandoned"  # sidecar in progress, no live operation, no `.backup`
    UNMANAGED = "unmanaged"  # no sidecar
    PRUNING = "pruning"  # a prune started and did not finish: the next apply finishes it


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
            ValidationLevel(d["level"]),
            parse_iso(d["at"]),
            ValidationResult(d["result"]),
            str(d.get("detail", "")),
            files if isinstance(files, int) else None,
            size if isinstance(size, int) else None,
        )


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
    total_size: int = 0  # bytes in the bucket under this folder
    num_files: int = 0
    validations: tuple[Validation, ...] = ()
    has_manifest: bool = False
    sidecar_etag: str | None = None
    #: unmanaged, yet it holds a sidecar this reconciler cannot read (tampered, or written by a
    #: newer version): reported, never pruned, whatever prune_unmanaged says
    foreign: bool = False

    def last_validation(self, level: ValidationLevel | None = None) -> Validation | None:
        vs = [v for v in self.validations if level is None or v.level == level]
        return max(vs, key=lambda v: v.at) if vs else None

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
        last = self.last_validation()
        return last is not None and last.result == ValidationResult.FAILED

    @property
    def validated(self) -> bool:
        last = self.last_validation()
        return last is not None and last.result == ValidationResult.OK


@dataclass(frozen=True)
class ScheduleInventory:
    schedule: str
    prefix: str  # `<prefix>/<service>/<schedule>/`
    backups: tuple[ObservedBackup, ...]  # oldest first

    def complete(self) -> list[ObservedBackup]:
        return [b for b in self.backups if b.state == BackupState.COMPLETE and b.kind is not None]


@dataclass(frozen=True)
class RestoreRecord:
    restore: str
    backup: str
    spec_digest: str
    done_at: datetime  # for an attempt under way: when it started
    run_id: str
    in_progress: bool = False  # an attempt started and has not recorded its end


@dataclass(frozen=True)
class LockInfo:
    lock_id: str
    host: str
    pid: int
    started_at: datetime
    lease_expires_at: datetime
    etag: str = ""


@dataclass(frozen=True)
class BucketState:
    bucket: str
    reachable: bool
    error: str | None = None  # why not reachable (never a secret)
    lock: LockInfo | None = None


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
    #: per service with ``cloud.api``: what the ClickHouse Cloud API reports (reconciler.cloud.CloudState)
    cloud: Mapping[str, Any] = field(default_factory=dict)
    #: per drill service: scratch databases left by drills that did not finish
    drill_leftovers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: per restore: why its record in the bucket cannot be read (it is then not run again)
    restore_problems: Mapping[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Plan (docs/plan.md)
# --------------------------------------------------------------------------------------------


class ActionType(str, Enum):
    CONFIGURE = "configure"
    EXPORT = "export"
    VALIDATE = "validate"
    RESTORE = "restore"
    PRUNE = "prune"


#: the order in which action types are applied, and summarised
ACTION_ORDER = (ActionType.CONFIGURE, ActionType.EXPORT, ActionType.VALIDATE, ActionType.RESTORE, ActionType.PRUNE)


class DriftType(str, Enum):
    RPO_VIOLATION = "rpo_violation"
    FAILED_BACKUP = "failed_backup"
    BROKEN_BACKUP = "broken_backup"
    UNVALIDATED_BACKUP = "unvalidated_backup"
    UNMANAGED_BACKUP = "unmanaged_backup"
    CONFIG_DRIFT = "config_drift"
    MISSING_BUCKET = "missing_bucket"
    UNREACHABLE_SERVICE = "unreachable_service"


@dataclass(frozen=True)
class Action:
    """One step of a plan. ``details`` holds the type-specific fields of the JSON form."""

    id: str
    type: ActionType
    reason: str
    depends_on: tuple[str, ...] = ()
    service: str | None = None
    schedule: str | None = None
    bucket: str | None = None
    backup: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "type": self.type.value}
        for k in ("service", "schedule", "bucket", "backup"):
            v = getattr(self, k)
            if v is not None:
                out[k] = v
        out.update(self.details)
        out["reason"] = self.reason
        out["depends_on"] = list(self.depends_on)
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Action:
        core = {"id", "type", "reason", "depends_on", "service", "schedule", "bucket", "backup"}
        return cls(
            id=d["id"],
            type=ActionType(d["type"]),
            reason=d["reason"],
            depends_on=tuple(d.get("depends_on", ())),
            service=d.get("service"),
            schedule=d.get("schedule"),
            bucket=d.get("bucket"),
            backup=d.get("backup"),
            details={k: v for k, v in d.items() if k not in core},
        )


@dataclass(frozen=True)
class Drift:
    type: DriftType
    detail: str
    schedule: str | None = None
    service: str | None = None
    bucket: str | None = None
    backup: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type.value}
        for k in ("service", "schedule", "bucket", "backup"):
            v = getattr(self, k)
            if v is not None:
                out[k] = v
        out["detail"] = self.detail
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Drift:
        return cls(
            DriftType(d["type"]), d["detail"], d.get("schedule"), d.get("service"), d.get("bucket"), d.get("backup")
        )


PLAN_FORMAT_VERSION = "1"


@dataclass(frozen=True)
class Plan:
    now: datetime
    config_digest: str
    state_digest: str
    actions: tuple[Action, ...]
    drift: tuple[Drift, ...] = ()
    warnings: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()

    def summary(self) -> dict[str, int]:
        return {t.value: sum(1 for a in self.actions if a.type == t) for t in ACTION_ORDER}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format_version": PLAN_FORMAT_VERSION,
            "now": iso(self.now),
            "config_digest": self.config_digest,
            "state_digest": self.state_digest,
            "actions": [a.to_json() for a in self.actions],
            "drift": [d.to_json() for d in self.drift],
            "warnings": list(self.warnings),
            "summary": self.summary(),
        }
        if self.targets:
            out["targets"] = list(self.targets)
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Plan:
        return cls(
            now=parse_iso(d["now"]),
            config_digest=d["config_digest"],
            state_digest=d["state_digest"],
            actions=tuple(Action.from_json(a) for a in d["actions"]),
            drift=tuple(Drift.from_json(x) for x in d.get("drift", ())),
            warnings=tuple(d.get("warnings", ())),
            targets=tuple(d.get("targets", ())),
        )


# --------------------------------------------------------------------------------------------
# Outcomes of apply
# --------------------------------------------------------------------------------------------


class OutcomeStatus(str, Enum):
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # a dependency failed


@dataclass(frozen=True)
class Outcome:
    action_id: str
    status: OutcomeStatus
    detail: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Time helpers used by every layer: one spelling of UTC timestamps
# --------------------------------------------------------------------------------------------


def iso(t: datetime) -> str:
    """``2026-11-25T03:00:00Z`` (microseconds kept only when present)."""
    s = t.astimezone(UTC).isoformat()
    return s.replace("+00:00", "Z")


def parse_iso(s: str) -> datetime:
    """Parse ISO 8601; a value without a zone is UTC."""
    t = datetime.fromisoformat(s.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)
