"""ClickHouse Cloud: what the Cloud API reports of a service (observed), what the config wants
of it (desired), and the pure comparisons between the two. No I/O here.

Secrets: the API never returns the secret of a backup bucket (GCP ``secretAccessKey``, Azure
``connectionString``), so a changed secret cannot be detected; only the other fields are
compared. ``iamRoleArn`` and ``accessKeyId`` come from the config's ``credentials`` (every one
of which the reconciler treats as secret): they are compared, but shown as ``[HIDDEN]``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from .errors import ReconcilerError
from .model import STORE_CLOUD, UTC, Bucket, Config, ManagedBackups, Provider, RestoreRecord, iso, parse_iso

HIDDEN = "[HIDDEN]"
SET = "(set)"
#: the API's name of each object store
API_PROVIDER = {Provider.S3: "AWS", Provider.GCS: "GCP", Provider.AZURE: "AZURE"}
STORE_OF_API = {v: k for k, v in API_PROVIDER.items()}
#: write-only: sent from the config at apply time, never returned by the API, never compared
SECRET_FIELDS = frozenset({"secretAccessKey", "connectionString"})
#: taken from `credentials`: compared with what the API returns, never shown
SENSITIVE_FIELDS = frozenset({"iamRoleArn", "accessKeyId"})
#: what is compared per provider
BUCKET_FIELDS = {
    "AWS": ("bucketProvider", "bucketPath", "iamRoleArn"),
    "GCP": ("bucketProvider", "bucketPath", "accessKeyId"),
    "AZURE": ("bucketProvider", "containerName"),
}
CONFIG_FIELDS = ("backupPeriodInHours", "backupRetentionPeriodInHours", "backupStartTime")
#: the folder, under the bucket's prefix and the service, that ClickHouse Cloud writes into;
#: it cannot be a schedule's folder (schedule names start with a letter or digit)
CLOUD_FOLDER = "_cloud"
RESTRICTED_COMPLIANCE = ("hipaa", "pci")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --------------------------------------------------------------------------------------------
# Observed
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Desired
# --------------------------------------------------------------------------------------------


def desired_settings(mb: ManagedBackups) -> dict[str, Any]:
    """The declared ``backupConfiguration`` fields (undeclared ones are not managed)."""
    out = {
        "backupPeriodInHours": mb.period_hours,
        "backupRetentionPeriodInHours": mb.retention_hours,
        "backupStartTime": mb.start_time,
    }
    return {k: v for k, v in out.items() if v is not None}


def cloud_folder(bucket: Bucket, service: str) -> str:
    """``<prefix>/<service>/_cloud``: where ClickHouse Cloud writes the service's backups."""
    return "/".join(p.strip("/") for p in (bucket.prefix, service, CLOUD_FOLDER) if p and p.strip("/"))


def bucket_path(bucket: Bucket, service: str) -> str:
    """``bucketPath`` for AWS and GCP (virtual-host S3 URL, or the endpoint path-style)."""
    folder = cloud_folder(bucket, service)
    if bucket.endpoint:
        return f"{bucket.endpoint.rstrip('/')}/{bucket.bucket}/{folder}"
    if bucket.provider == Provider.GCS:
        return f"https://storage.googleapis.com/{bucket.bucket}/{folder}"
    return f"https://{bucket.bucket}.s3.amazonaws.com/{folder}"


def bucket_body(bucket: Bucket, service: str, with_secrets: bool) -> tuple[dict[str, Any], list[str]]:
    """The ``backupBucket`` request body for a config bucket, and what is missing to make it.

    Without ``with_secrets`` a secret field holds ``(set)`` (or is absent when not set): that is
    what a plan carries. The apply builds it again with the secrets, from the config."""
    c = bucket.credentials
    provider = API_PROVIDER[bucket.provider]
    missing: list[str] = []
    body: dict[str, Any] = {"bucketProvider": provider}
    if bucket.provider == Provider.S3:
        body["bucketPath"] = bucket_path(bucket, service)
        if c.role_arn:
            body["iamRoleArn"] = c.role_arn
        else:
            missing.append("credentials.role_arn (the Cloud API sets an AWS backup bucket only with an IAM role)")
    elif bucket.provider == Provider.GCS:
        body["bucketPath"] = bucket_path(bucket, service)
        if c.hmac_key and c.hmac_secret:
            body["accessKeyId"] = c.hmac_key
            body["secretAccessKey"] = c.hmac_secret if with_secrets else SET
        else:
            missing.append("credentials.hmac_key and hmac_secret")
    else:
        body["containerName"] = bucket.bucket
        conn = azure_connection_string(bucket)
        if conn:
            body["connectionString"] = conn if with_secrets else SET
        else:
            missing.append("credentials.connection_string (or account_name and account_key)")
    return body, missing


def azure_connection_string(bucket: Bucket) -> str | None:
    c = bucket.credentials
    if c.connection_string:
        return c.connection_string
    if c.account_name and c.account_key:
        return (
            f"DefaultEndpointsProtocol=https;AccountName={c.account_name};AccountKey={c.account_key};"
            "EndpointSuffix=core.windows.net"
        )
    return None


def comparable(body: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a bucket body that are compared (no secret), by its provider."""
    fields = BUCKET_FIELDS.get(str(body.get("bucketProvider") or ""), ("bucketProvider",))
    return {k: body.get(k) for k in fields}


def shown(body: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A bucket body as a plan shows it: sensitive values hidden, secrets as ``(set)``."""
    if body is None:
        return None
    out: dict[str, Any] = {}
    for k, v in body.items():
        if k in SENSITIVE_FIELDS and v is not None:
            out[k] = HIDDEN
        elif k in SECRET_FIELDS:
            out[k] = SET if v else None
        else:
            out[k] = v
    return out


# --------------------------------------------------------------------------------------------
# Facts: the config's `cloud:` against what the API reports
# --------------------------------------------------------------------------------------------


def fact_mismatches(config: Config, service: str, facts: ServiceFacts) -> list[str]:
    """One phrase per declared fact that ClickHouse Cloud contradicts."""
    declared = config.services[service].cloud
    if declared is None:
        return []
    out = []
    pairs: list[tuple[str, Any, Any, str]] = [
        ("provider", declared.provider.value, (facts.provider or "").lower() or None, "cloud.provider"),
        ("region", declared.region, facts.region, "cloud.region"),
        ("tde", declared.tde, facts.tde, "cloud.tde"),
        ("compliance", declared.compliance, facts.compliance, "cloud.compliance"),
    ]
    for what, want, got, path in pairs:
        if what == "provider" and got is None or what == "region" and not got:
            continue  # not reported: nothing to contradict
        if (want.lower() if isinstance(want, str) else want) != (got.lower() if isinstance(got, str) else got):
            out.append(f"the config says {what} {_fact(want)} but ClickHouse Cloud reports {_fact(got)} (fix {path})")
    return out


def restricted_by(facts: ServiceFacts) -> str | None:
    """Why ClickHouse Cloud allows no backup/restore of a service with these facts, or None."""
    if facts.tde:
        return "has Transparent Data Encryption"
    if facts.compliance in RESTRICTED_COMPLIANCE:
        return f"is a regulated ({facts.compliance}) service"
    return None


def uses_of(config: Config, service: str) -> list[str]:
    """What in the config backs up or restores ``service`` (for the restricted-service rule)."""
    out = [f"schedule {n}" for n, s in config.schedules.items() if s.service == service]
    out += [
        f"schedule {n} (drill)"
        for n, s in config.schedules.items()
        if s.validate.drill and s.validate.drill.service == service
    ]
    out += [f"restore {n}" for n, r in config.restores.items() if service in (r.source.service, r.target.service)]
    declared = config.services[service].cloud
    mb = declared.managed_backups if declared else None
    if mb and mb.external_bucket:
        out.append("managed_backups.external_bucket")
    return out


def check_facts(config: Config, service: str, facts: ServiceFacts) -> None:
    """Raise one error naming every contradicted fact, and what the Cloud rules then refuse."""
    problems = fact_mismatches(config, service, facts)
    if not problems:
        return
    message = f"service {service}: " + "; ".join(problems)
    why = restricted_by(facts)
    uses = uses_of(config, service)
    if why and uses:
        message += (
            f"; with the reported facts the service {why}, which ClickHouse Cloud does not allow to be "
            f"backed up or restored ({', '.join(uses)})"
        )
    raise ReconcilerError(message, where=config.path)


def external_bucket_problem(config: Config, service: str, facts: ServiceFacts | None) -> str | None:
    """Why the declared external bucket cannot be set on the service, or None. Uses the observed
    facts when there are some, else the declared ones."""
    declared = config.services[service].cloud
    mb = declared.managed_backups if declared else None
    if declared is None or mb is None or not mb.external_bucket or mb.external_bucket not in config.buckets:
        return None
    bucket = config.buckets[mb.external_bucket]
    provider = (facts.provider if facts and facts.provider else declared.provider.value).lower()
    restricted = (
        restricted_by(facts)
        if facts
        else (
            "has Transparent Data Encryption"
            if declared.tde
            else f"is a regulated ({declared.compliance}) service"
            if declared.compliance in RESTRICTED_COMPLIANCE
            else None
        )
    )
    if restricted:
        return (
            f"service {service} {restricted}: ClickHouse Cloud exports none of its backups to an external bucket; "
            "remove managed_backups.external_bucket"
        )
    store_cloud = STORE_CLOUD[bucket.provider].value
    if store_cloud != provider:
        return (
            f"external_bucket {bucket.name} is in {store_cloud} but service {service} runs in {provider}: "
            "ClickHouse Cloud's external backup bucket must be in the service's cloud; use a bucket there"
        )
    return None


# --------------------------------------------------------------------------------------------
# Which declared bucket a Cloud backup landed in (status)
# --------------------------------------------------------------------------------------------

_S3_HOST = re.compile(r"^(?P<bucket>.+)\.s3([.-][a-z0-9-]+)*\.amazonaws\.com$")


def parse_location(info: BackupBucketInfo) -> tuple[Provider | None, str, str]:
    """(store provider, bucket/container name, key prefix) of an external bucket."""
    provider = STORE_OF_API.get(info.provider)
    if info.provider == "AZURE":
        return provider, info.container or "", ""
    parts = urlsplit(info.path or "")
    host = parts.netloc.lower()
    path = parts.path.strip("/")
    m = _S3_HOST.match(host)
    if parts.scheme in ("s3", "gs") or m:
        return provider, (m.group("bucket") if m else host), path
    bucket, _, key = path.partition("/")
    return provider, bucket, key


def declared_bucket_of(config: Config, info: BackupBucketInfo | None) -> str | None:
    """The config bucket a Cloud backup's bucket is, or None (Cloud storage, or undeclared)."""
    if info is None:
        return None
    provider, name, key = parse_location(info)
    for b in config.buckets.values():
        if b.provider != provider or b.bucket != name:
            continue
        prefix = b.prefix.strip("/")
        if not prefix or key == prefix or key.startswith(prefix + "/"):
            return b.name
    return None


def cloud_status(config: Config, cloud: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``cloud`` part of ``status``: per Cloud service, its settings and backups."""
    out: list[dict[str, Any]] = []
    for name in sorted(cloud):
        st = cloud[name]
        if not isinstance(st, CloudState):
            continue
        entry: dict[str, Any] = {"service": name, "service_id": st.service_id, "reachable": st.reachable}
        if not st.reachable:
            entry["error"] = st.error
            out.append(entry)
            continue
        entry["facts"] = st.facts.to_json() if st.facts else None
        entry["backup_configuration"] = st.settings.to_api() if st.settings else None
        entry["backup_bucket"] = shown(st.bucket.to_api()) if st.bucket else None
        entry["backup_bucket_declared"] = declared_bucket_of(config, st.bucket)
        entry["backups"] = [
            {
                "id": b.id,
                "name": b.name,
                "status": b.status,
                "type": b.type,
                "started_at": _iso(b.started_at),
                "finished_at": _iso(b.finished_at),
                "size": b.size_bytes,
                "duration_seconds": b.duration_seconds,
                "location": b.bucket.location() if b.bucket else None,
                "bucket": declared_bucket_of(config, b.bucket),
                "in_declared_bucket": declared_bucket_of(config, b.bucket) is not None,
            }
            for b in st.backups
        ]
        out.append(entry)
    return out


# --------------------------------------------------------------------------------------------


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


def _iso(t: datetime | None) -> str | None:
    return iso(t) if t else None


def _fact(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def record_bucket(config: Config, service: str) -> str | None:
    """Where a Cloud restore out of ``service`` is recorded: its ``managed_backups``
    external bucket, else the bucket of its first schedule, else nowhere (None)."""
    cloud = config.services[service].cloud
    mb = cloud.managed_backups if cloud else None
    if mb and mb.external_bucket and mb.external_bucket in config.buckets:
        return mb.external_bucket
    for s in config.schedules.values():
        if s.service == service:
            return s.bucket
    return None
