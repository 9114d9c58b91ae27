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
from ..redact import redact

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
    """Sets ``locked_until`` on the complete managed backups of the locked buckets (in place)."""
    for name, inv in list(schedules.items()):
        s = config.schedules[name]
        state = buckets.get(s.bucket)
        if state is None or state.object_lock is None or not state.object_lock.lock_enabled:
            continue
        bucket, store = config.buckets[s.bucket], conns.store(s.bucket)

        def one(b: ObservedBackup) -> ObservedBackup:
            if b.state != BackupState.COMPLETE or b.kind is None or b.locked_until is not None:
                return b  # not locked by us, or its lock's end is known from the index
            folder = layout.backup_prefix(bucket, s.service, name, b.name)  # noqa: B023 (used at once)
            until = lock_end(store, folder)  # noqa: B023
            return replace(b, locked_until=until) if until else b

        with ThreadPoolExecutor(HEAD_PARALLELISM) as pool:
            backups = tuple(pool.map(one, inv.backups))
        schedules[name] = replace(inv, backups=backups)
