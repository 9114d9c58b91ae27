"""The desired state: what the config declares (docs/config.md). Frozen: the planner is a pure
function of (Config, Observed, now) and must not be able to change what it was given."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .time import UTC, iso


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
        from ..redact import redact

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


class LockMode(str, Enum):
    COMPLIANCE = "compliance"
    GOVERNANCE = "governance"


@dataclass(frozen=True)
class Immutability:
    """S3 Object Lock: the default retention that must be in force on the bucket (docs/compliance.md)."""

    mode: LockMode
    days: int
    recover_deleted: bool = False


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
    storage_class: str | None = None  # s3: the class ClickHouse writes with (s3_storage_class)
    immutability: Immutability | None = None  # s3: the Object Lock default retention that must be in force
    price_per_gib_month: float | None = None  # prices the plan's storage estimate

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
    min_age: timedelta | None = None  # compliance floor: nothing younger is pruned

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
    """What a backup holds: some databases, some tables, or the whole service (both empty).
    ``access``: the whole service's access entities and functions too (``include_access``)."""

    databases: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()
    access: bool = False

    @property
    def whole_service(self) -> bool:
        return not self.databases and not self.tables

    def to_json(self) -> dict[str, Any]:
        if self.databases:
            return {"databases": list(self.databases)}
        if self.tables:
            return {"tables": list(self.tables)}
        return {"all": True, "access": True} if self.access else {"all": True}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Scope:
        databases, tables = tuple(data.get("databases", ())), tuple(data.get("tables", ()))
        return cls(databases, tables, access=data.get("access") is True and not databases and not tables)


@dataclass(frozen=True)
class CopyTarget:
    """``copies:`` entry of a schedule: a bucket that holds a verified copy of each backup."""

    bucket: str
    validate: ValidationLevel = ValidationLevel.MANIFEST  # manifest | checksums
    retention: Retention | None = None  # None: the schedule's


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
    adopt_unmanaged: bool = False  # unmanaged folders whose manifest validates get a sidecar
    cleanup_after: timedelta = timedelta(hours=24)
    retention: Retention = field(default_factory=Retention)
    validate: ValidatePolicy = field(default_factory=ValidatePolicy)
    copies: tuple[CopyTarget, ...] = ()

    def copy_to(self, bucket: str) -> CopyTarget | None:
        return next((c for c in self.copies if c.bucket == bucket), None)

    def copy_retention(self, copy: CopyTarget) -> Retention:
        return copy.retention if copy.retention is not None else self.retention


@dataclass(frozen=True)
class Snapshot:
    """An on-demand backup outside any schedule, made once (docs/config.md, ``snapshots``)."""

    name: str
    service: str
    bucket: str
    scope: Scope = field(default_factory=Scope)
    keep_until: date | None = None  # pruned once now is past the end of this day (UTC)

    @property
    def expires_at(self) -> datetime | None:
        """The end of ``keep_until`` (UTC): the snapshot is pruned from this instant on."""
        if self.keep_until is None:
            return None
        return datetime(self.keep_until.year, self.keep_until.month, self.keep_until.day, tzinfo=UTC) + timedelta(
            days=1
        )


@dataclass(frozen=True)
class RestoreSource:
    schedule: str | None = None  # SQL path: a schedule's backup
    service: str | None = None  # Cloud path: a Cloud backup of a service
    backup: str = "latest"
    bucket: str | None = None  # a copy bucket of the schedule: restore from the copy there
    snapshot: str | None = None  # SQL path: a declared snapshot
    before: datetime | None = None  # `backup: {before: T}`: the newest complete backup whose slot is < T

    @property
    def backup_spec(self) -> str:
        """``backup`` as declared, in words: a name, ``latest`` or ``before <T>``."""
        return f"before {iso(self.before)}" if self.before is not None else self.backup


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

    def spec_digest(self) -> str:
        """What a restore record remembers of the declaration: a changed declaration runs again.
        ``backup: latest`` is part of it; the name it resolves to is not."""
        source: dict[str, Any] = {
            "schedule": self.source.schedule,
            "service": self.source.service,
            "backup": self.source.backup,
        }
        if self.source.snapshot is not None:  # absent keys keep the digests of older records
            source["snapshot"] = self.source.snapshot
        if self.source.before is not None:
            source["backup"] = {"before": iso(self.source.before)}
        if self.source.bucket is not None:
            source["bucket"] = self.source.bucket
        doc = {
            "from": source,
            "to": {
                "service": self.target.service,
                "databases": dict(sorted(self.target.databases.items())),
                "new_service": self.target.new_service.name if self.target.new_service else None,
            },
            "allow_non_empty_tables": self.allow_non_empty_tables,
        }
        return "sha256:" + hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


#: what a webhook of ``notify`` may be told of (docs/config.md)
NOTIFY_EVENTS = ("failure", "drift", "success")


@dataclass(frozen=True)
class Notify:
    """A webhook. Its URL is a secret (Slack's and Teams' carry their token): never rendered."""

    url: str
    events: tuple[str, ...] = ("failure", "drift")

    def __repr__(self) -> str:
        return f"Notify(url='[HIDDEN]', events={self.events!r})"


@dataclass(frozen=True)
class Config:
    path: str
    services: Mapping[str, Service]
    buckets: Mapping[str, Bucket]
    schedules: Mapping[str, Schedule]
    restores: Mapping[str, Restore]
    digest: str  # sha256 of the config with every secret removed
    warnings: tuple[str, ...] = ()
    snapshots: Mapping[str, Snapshot] = field(default_factory=dict)
    notify: tuple[Notify, ...] = ()

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
        for hook in self.notify:
            out += _url_secrets(hook.url)
        return out


def _url_secrets(url: str) -> list[str]:
    """A webhook URL, and the parts of it that carry its token (path, query), so that neither
    the whole URL nor a piece of it quoted by an HTTP library reaches a message."""
    parts = urlsplit(url)
    out = [url, url.rstrip("/")]
    if len(parts.path.strip("/")) >= 8:
        out.append(parts.path)
    if parts.query:
        out.append(parts.query)
    if parts.password:
        out.append(parts.password)
    return out
