"""Where things live in a bucket (docs/bucket-layout.md). The one place that builds keys.

<prefix>/<service>/<schedule>/<backup>/.backup            ClickHouse's manifest
<prefix>/<service>/<schedule>/<backup>/reconciler.json    the reconciler's sidecar
<prefix>/.reconciler/lock                                 apply lock
<prefix>/.reconciler/runs/<run-id>.json                   run records
<prefix>/.reconciler/restores/<restore>.json              restores done
"""

from __future__ import annotations

from ..model import Bucket

MANIFEST = ".backup"
CLICKHOUSE_LOCK = ".lock"
SIDECAR = "reconciler.json"
CONTROL = ".reconciler"


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def schedule_prefix(bucket: Bucket, service: str, schedule: str) -> str:
    return _join(bucket.prefix, service, schedule) + "/"


def backup_prefix(bucket: Bucket, service: str, schedule: str, backup: str) -> str:
    return _join(bucket.prefix, service, schedule, backup) + "/"


def control_prefix(bucket: Bucket) -> str:
    return _join(bucket.prefix, CONTROL) + "/"


def lock_key(bucket: Bucket) -> str:
    return control_prefix(bucket) + "lock"


def run_key(bucket: Bucket, run_id: str) -> str:
    return control_prefix(bucket) + f"runs/{run_id}.json"


def runs_prefix(bucket: Bucket) -> str:
    return control_prefix(bucket) + "runs/"


def restores_prefix(bucket: Bucket) -> str:
    return control_prefix(bucket) + "restores/"


def restore_key(bucket: Bucket, restore: str) -> str:
    return restores_prefix(bucket) + f"{restore}.json"


def lock_scope(bucket: Bucket) -> tuple[str, str, str, str]:
    """Applies exclude each other per bucket prefix: two config names for the same place share
    one lock."""
    return (bucket.provider.value, bucket.endpoint or "", bucket.bucket, bucket.prefix)


def index_key(bucket: Bucket, service: str, schedule: str) -> str:
    """The per-schedule index (reconciler/index.py)."""
    return control_prefix(bucket) + f"index/{service}/{schedule}.json"
