"""Deleted backups, observed (docs/compliance.md, "Deleted backups"): a schedule's backup whose
sidecar says complete while its manifest ``.backup`` is gone was deleted outside an apply. For
each one, whether it can be recovered: on a versioned S3 bucket one listing of the folder's
versions says whether a delete marker hides a version of its manifest; an S3 bucket without
versioning keeps nothing; other providers' versions are not read yet (not known). The requests are
made for deleted backups only, so a bucket without one costs nothing more.

A full refresh of a bucket that declares ``immutability`` also finds the backups whose sidecar was
deleted too (``uncover``): one delimiter listing of the schedule's folders that hold versions
(one request per 1,000 folders) names those of which every object is deleted; a folder without a
current manifest or sidecar costs one listing of its versions, and one read of its sidecar's
surviving version."""

from __future__ import annotations

from dataclasses import replace

from ..bucket import layout
from ..bucket.folders import Folder, ScheduleRead, check_sidecar
from ..bucket.hidden import hidden_keys
from ..bucket.sidecar import Sidecar
from ..connections import Connections
from ..errors import ReconcilerError
from ..model import BackupState, Config, ObservedBackup, Provider, ScheduleInventory
from ..redact import redact
from ..stores.base import Store

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


def uncover(store: Store, prefix: str, read: ScheduleRead, expect: tuple[str, str]) -> None:
    """Adds to ``read`` the folders whose sidecar is hidden by a delete marker over a surviving
    version and whose manifest is gone (in place): their sidecar is that version, so they are seen
    as the deleted backups they are, and not as unmanaged folders, or not at all."""
    try:
        if not store.lock_configuration().versioning:
            return
        names = store.list_version_folders(prefix)
    except ReconcilerError:
        return  # not known: the folders stay as the listing shows them
    bare = [n for n, f in read.folders.items() if f.sidecar_etag is None and not f.has_manifest]
    for name in sorted({*bare, *(n for n in names if n not in read.folders)}):
        folder = prefix + name + "/"
        try:
            hidden = hidden_keys(store.list_versions(folder))
            found = hidden.get(folder + layout.SIDECAR)
            if found is None or found.version is None or folder + layout.MANIFEST not in hidden:
                continue
            data = store.read_version(folder + layout.SIDECAR, found.version)
        except ReconcilerError:
            continue
        try:
            sidecar = check_sidecar(Sidecar.decode(data or b""), expect, name)
        except ValueError:
            continue  # not a record of ours: what the listing shows stands
        f = read.folders.get(name) or Folder(name, listed_files=0, listed_bytes=0)
        f.sidecar = sidecar
        read.folders[name] = f
