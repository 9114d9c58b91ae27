"""What the ClickHouse Cloud API reports of a service: its facts, backup settings, external
backup bucket and backups. Parsed defensively from the API's JSON (a field of another type than
documented is None, never an exception); observed state, so frozen."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .time import UTC, parse_iso

if TYPE_CHECKING:
    from .observed import RestoreRecord

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ServiceFacts:
    id: str
    name: str | None
    provider: str | None  # aws | gcp | azure
    region: str | None
    tde: bool
    compliance: str | None  # None | hipaa | pci
    tier: str | None
    state: str | None

    @classmethod
    def from_api(cls, d: Mapping[str, Any]) -> ServiceFacts:
        compliance = d.get("complianceType")
        return cls(
            id=str(d.get("id") or ""),
            name=_str(d.get("name")),
            provider=_str(d.get("provider")),
            region=_str(d.get("region")),
            tde=bool(d.get("hasTransparentDataEncryption")),
            compliance=str(compliance).lower() if compliance else None,
            tier=_str(d.get("tier")),
            state=_str(d.get("state")),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "provider": self.provider,
            "region": self.region,
            "tde": self.tde,
            "compliance": self.compliance,
            "tier": self.tier,
            "state": self.state,
        }


@dataclass(frozen=True)
class BackupSettings:
    """``backupConfiguration``: period and retention in hours, start time ``HH:MM`` UTC."""

    period_hours: int | None = None
    retention_hours: int | None = None
    start_time: str | None = None

    @classmethod
    def from_api(cls, d: Mapping[str, Any]) -> BackupSettings:
        return cls(
            _int(d.get("backupPeriodInHours")),
            _int(d.get("backupRetentionPeriodInHours")),
            _hhmm(d.get("backupStartTime")),
        )

    def to_api(self) -> dict[str, Any]:
        return {
            "backupPeriodInHours": self.period_hours,
            "backupRetentionPeriodInHours": self.retention_hours,
            "backupStartTime": self.start_time,
        }


@dataclass(frozen=True)
class BackupBucketInfo:
    """An external backup bucket as the API shows it: no secret field."""

    provider: str  # AWS | GCP | AZURE
    path: str | None = None  # bucketPath (AWS, GCP)
    container: str | None = None  # containerName (AZURE)
    role_arn: str | None = None
    role_session_name: str | None = None
    access_key_id: str | None = None
    id: str | None = None

    @classmethod
    def from_api(cls, d: Mapping[str, Any]) -> BackupBucketInfo:
        return cls(
            provider=str(d.get("bucketProvider") or "").upper(),
            path=_str(d.get("bucketPath")),
            container=_str(d.get("containerName")),
            role_arn=_str(d.get("iamRoleArn")),
            role_session_name=_str(d.get("iamRoleSessionName")),
            access_key_id=_str(d.get("accessKeyId")),
            id=_str(d.get("id")),
        )

    def to_api(self) -> dict[str, Any]:
        """The API's fields (non-secret, without ``id``), absent ones left out."""
        out = {
            "bucketProvider": self.provider,
            "bucketPath": self.path,
            "containerName": self.container,
            "iamRoleArn": self.role_arn,
            "iamRoleSessionName": self.role_session_name,
            "accessKeyId": self.access_key_id,
        }
        return {k: v for k, v in out.items() if v is not None}

    def location(self) -> str:
        return (self.container if self.provider == "AZURE" else self.path) or ""


@dataclass(frozen=True)
class CloudBackup:
    id: str
    status: str | None  # done | error | in_progress
    type: str | None = None  # full | incremental
    name: str | None = None  # backupName on the external bucket
    started_at: datetime | None = None
    finished_at: datetime | None = None
    size_bytes: int | None = None
    duration_seconds: int | None = None
    bucket: BackupBucketInfo | None = None  # None: kept in ClickHouse Cloud's own storage

    @classmethod
    def from_api(cls, d: Mapping[str, Any]) -> CloudBackup:
        bucket = d.get("bucket")
        return cls(
            id=str(d.get("id") or ""),
            status=_str(d.get("status")),
            type=_str(d.get("type")),
            name=_str(d.get("backupName")),
            started_at=_time(d.get("startedAt")),
            finished_at=_time(d.get("finishedAt")),
            size_bytes=_int(d.get("sizeInBytes")),
            duration_seconds=_int(d.get("durationInSeconds")),
            bucket=BackupBucketInfo.from_api(bucket)
            if isinstance(bucket, dict) and bucket.get("bucketProvider")
            else None,
        )


@dataclass(frozen=True)
class CloudState:
    """What the Cloud API reports of one config service (``error`` set when it could not be read)."""

    service: str  # the config's name
    service_id: str
    facts: ServiceFacts | None = None
    settings: BackupSettings | None = None
    bucket: BackupBucketInfo | None = None
    backups: tuple[CloudBackup, ...] = ()  # newest first
    error: str | None = None
    #: the service is the source of a selected `from: {service: ...}` restore: its backups, the
    #: organization's service names and the restore records matter to the plan
    restore_source: bool = False
    org_services: Mapping[str, str] = field(default_factory=dict)  # name -> id
    restores: Mapping[str, RestoreRecord] = field(default_factory=dict)  # restore name -> record
    restore_errors: Mapping[str, str] = field(default_factory=dict)  # restore name -> why unreadable

    @property
    def reachable(self) -> bool:
        return self.error is None

    def done_backups(self) -> list[CloudBackup]:
        """Complete backups, newest first."""
        done = [b for b in self.backups if b.status == "done"]
        return sorted(done, key=lambda b: b.started_at or b.finished_at or _EPOCH, reverse=True)


def _str(v: Any) -> str | None:
    return str(v) if v is not None and v != "" else None


def _int(v: Any) -> int | None:
    if isinstance(v, bool) or v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return int(f) if f.is_integer() else None


def _hhmm(v: Any) -> str | None:
    """``3:00``, ``03:00:00`` -> ``03:00``."""
    if not isinstance(v, str) or not v:
        return None
    m = re.match(r"^(\d{1,2}):(\d{2})", v)
    return f"{int(m.group(1)):02d}:{m.group(2)}" if m else v


def _time(v: Any) -> datetime | None:
    if not isinstance(v, str) or not v:
        return None
    try:
        return parse_iso(v)
    except ValueError:
        return None
