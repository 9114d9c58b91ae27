"""Deleted backups, observed (docs/compliance.md, "Deleted backups"): a schedule's backup whose
sidecar says complete while its manifest ``.backup`` is gone was deleted outside an apply. For
each one, whether it can be recovered: on a versioned S3 bucket one listing of the folder's
versions says whether a delete marker hides a version of its manifest; an S3 bucket without
versioning keeps nothing; other providers' versions are not read yet (not known). The requests are
made for deleted backups only, so a bucket without one costs nothing more."""

from __future__ import annotations

from dataclasses import replace

from ..bucket import layout
from ..bucket.hidden import hidden_keys
from ..connections import Connections
from ..errors import ReconcilerError
from ..model import BackupState, Config, ObservedBackup, Provider, ScheduleInventory
from ..redact import redact

DELETED = "the manifest .backup was deleted outside an apply"


def observe_deleted(config: Config, conns: Connections, schedules: dict[str, ScheduleInventory]) -> None:
    """Sets ``recoverable`` (and says why in ``error``) on every deleted backup (in place)."""
    for name, inv in list(schedules.items()):
        if not any(b.state == BackupState.DELETED for b in inv.backups):
            continue
        s = config.schedules[name]
        bucket = config.buckets[s.bucket]
        backups = tuple(
            _survival(conns, s.bucket, layout.backup_prefix(bucket, s.service, name, b.name), b)
            if b.state == BackupState.DELETED
            else b
            for b in inv.backups
        )
        schedules[name] = replace(inv, backups=backups)


def _survival(conns: Connections, bucket_name: str, folder: str, b: ObservedBackup) -> ObservedBackup:
    bucket = conns.config.buckets[bucket_name]
    if bucket.provider != Provider.S3:
        provider = bucket.provider.value
        why = f"{DELETED}; whether its versions survive is not known (object versions are not read on {provider} yet)"
        return replace(b, recoverable=None, error=why)
    store = conns.store(bucket_name)
    try:
        if not store.lock_configuration().versioning:
            why = f"{DELETED}, and the bucket keeps no versions: it cannot be recovered"
            return replace(b, recoverable=False, error=why)
        hidden = hidden_keys(store.list_versions(folder))
    except ReconcilerError as e:
        why = f"{DELETED}; whether its versions survive could not be read ({redact(e.message)})"
        return replace(b, recoverable=None, error=why)
    manifest = hidden.get(folder + layout.MANIFEST)
    if manifest is not None and manifest.version is not None:
        why = f"{DELETED} (a delete marker hides it); its version survives, and so can the backup"
        return replace(b, recoverable=True, error=why)
    why = (
        f"{DELETED}, and no version of it is left (a prune that did not finish, or a permanent delete): "
        "it cannot be recovered"
    )
    return replace(b, recoverable=False, error=why)
