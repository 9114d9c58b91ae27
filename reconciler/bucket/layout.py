"""Where things live in a bucket (docs/bucket-layout.md). The one place that builds keys.

<prefix>/<service>/<schedule>/<backup>/.backup            ClickHouse's manifest
<prefix>/<service>/<schedule>/<backup>/reconciler.json    the reconciler's sidecar
<prefix>/.reconciler/lock                                 apply lock
<prefix>/.reconciler/runs/<run-id>.json                   run records
<prefix>/.reconciler/restores/<restore>.json              restores done
<prefix>/<service>/_snapshots/<snapshot>/...              an on-demand snapshot (same files as a backup)
<prefix>/.reconciler/snapshots/<snapshot>.json            a declared snapshot that was made
"""

from __future__ import annotations

from ..model import Bucket

MANIFEST = ".backup"
CLICKHOUSE_LOCK = ".lock"
SIDECAR = "reconciler.json"
CONTROL = ".reconciler"
#: the folder of a service's snapshots, beside its schedules' (no schedule name starts with `_`)
SNAPSHOTS = "_snapshots"


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


def snapshots_prefix(bucket: Bucket, service: str) -> str:
    return _join(bucket.prefix, service, SNAPSHOTS) + "/"


def snapshot_prefix(bucket: Bucket, service: str, snapshot: str) -> str:
    return _join(bucket.prefix, service, SNAPSHOTS, snapshot) + "/"


def snapshot_records_prefix(bucket: Bucket) -> str:
    return control_prefix(bucket) + "snapshots/"


def snapshot_record_key(bucket: Bucket, snapshot: str) -> str:
    """The record of a declared snapshot that was made (so it is made once)."""
    return snapshot_records_prefix(bucket) + f"{snapshot}.json"
