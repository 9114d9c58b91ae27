"""Object Lock, observed (docs/compliance.md): for each bucket that declares ``immutability``, its
versioning and default retention; for each complete managed backup there, when its lock ends (the
latest retain-until of its manifest and its sidecar: each validation rewrites the sidecar, and
each version gets its own date). The schedule's index records that date once an apply has read it
(apply/index_update.py), at the sidecar's ETag; a backup it does not know costs two HEAD requests,
in parallel, on such buckets only."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from ..bucket import layout
from ..bucket.folders import lock_end
from ..connections import Connections
from ..errors import ReconcilerError
from ..model import BackupState, BucketState, Config, ObjectLockState, ObservedBackup, ScheduleInventory
from ..model.snapshots import ObservedSnapshot
from ..redact import redact
from ..stores.base import Store

HEAD_PARALLELISM = 16


def observe_object_locks(config: Config, conns: Connections, buckets: dict[str, BucketState]) -> None:
    """Adds ``object_lock`` to the state of each reachable bucket that declares ``immutability``."""
    for name, state in list(buckets.items()):
        if not state.reachable or config.buckets[name].immutability is None:
            continue
        try:
            got = conns.store(name).lock_configuration()
            lock = ObjectLockState(got.versioning, got.lock_enabled, got.mode, got.days)
        except ReconcilerError as e:
            lock = ObjectLockState(False, error=redact(e.message))
        buckets[name] = replace(state, object_lock=lock)


def lock_ends(
    config: Config, conns: Connections, buckets: Mapping[str, BucketState], schedules: dict[str, ScheduleInventory]
) -> None:
    """Sets ``locked_until`` on the complete managed backups of the locked buckets (in place): from
    the index when it knows it (see above), else two HEADs per backup."""
    for name, inv in list(schedules.items()):
        s = config.schedules[name]
        if not _locked(buckets, s.bucket):
            continue
        bucket, store = config.buckets[s.bucket], conns.store(s.bucket)

        def one(b: ObservedBackup) -> ObservedBackup:
            return _with_lock_end(store, layout.backup_prefix(bucket, s.service, name, b.name), b)  # noqa: B023

        with ThreadPoolExecutor(HEAD_PARALLELISM) as pool:
            schedules[name] = replace(inv, backups=tuple(pool.map(one, inv.backups)))


def _locked(buckets: Mapping[str, BucketState], name: str) -> bool:
    state = buckets.get(name)
    return state is not None and state.object_lock is not None and state.object_lock.lock_enabled


def _with_lock_end(store: Store, folder: str, b: ObservedBackup) -> ObservedBackup:
    if b.state != BackupState.COMPLETE or b.kind is None or b.locked_until is not None:
        return b
    until = lock_end(store, folder)
    return replace(b, locked_until=until) if until else b


def copy_lock_ends(
    config: Config,
    conns: Connections,
    buckets: Mapping[str, BucketState],
    copies: dict[str, dict[str, ScheduleInventory]],
) -> None:
    """``locked_until`` on the complete copies in the locked copy buckets (in place), as for a
    schedule's own backups: from the copy bucket's index, else two HEADs each."""
    for name, per_bucket in copies.items():
        s = config.schedules[name]
        for where, inv in list(per_bucket.items()):
            if not _locked(buckets, where):
                continue
            bucket, store = config.buckets[where], conns.store(where)

            def one(b: ObservedBackup) -> ObservedBackup:
                return _with_lock_end(store, layout.backup_prefix(bucket, s.service, name, b.name), b)  # noqa: B023

            with ThreadPoolExecutor(HEAD_PARALLELISM) as pool:
                per_bucket[where] = replace(inv, backups=tuple(pool.map(one, inv.backups)))


def snapshot_lock_ends(
    config: Config, conns: Connections, buckets: Mapping[str, BucketState], snapshots: tuple[ObservedSnapshot, ...]
) -> tuple[ObservedSnapshot, ...]:
    """The snapshots, with ``locked_until`` on the complete folders in locked buckets."""
    out = []
    for snap in snapshots:
        if snap.folder is not None and _locked(buckets, snap.bucket):
            folder = layout.snapshot_prefix(config.buckets[snap.bucket], snap.service, snap.name)
            snap = replace(snap, folder=_with_lock_end(conns.store(snap.bucket), folder, snap.folder))
        out.append(snap)
    return tuple(out)
