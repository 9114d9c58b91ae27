"""ClickHouse Cloud's backup settings as the config wants them and as the API takes them: the
``backupConfiguration`` fields, the ``backupBucket`` body of a config bucket (secrets shown as
``(set)`` in a plan), and which declared bucket a Cloud backup landed in. No I/O.

Secrets: the API never returns the secret of a backup bucket (GCP ``secretAccessKey``, Azure
``connectionString``), so a changed secret cannot be detected; only the other fields are
compared. ``iamRoleArn`` and ``accessKeyId`` come from the config's ``credentials`` (every one
of which the reconciler treats as secret): they are compared, but shown as ``[HIDDEN]``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ..model import BackupBucketInfo, Bucket, Config, ManagedBackups, Provider

#: the two settings a ``configure`` action changes
BACKUP_CONFIGURATION = "backupConfiguration"
BACKUP_BUCKET = "backupBucket"
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


# --------------------------------------------------------------------------------------------
# Observed
# --------------------------------------------------------------------------------------------


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
