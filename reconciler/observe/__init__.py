"""Observe the real state: the buckets, ClickHouse's ``system.backups``, restore records.

Observation never changes anything. What cannot be reached is recorded (and becomes drift),
not raised: a plan over three services still plans for the two that answer.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from ..bucket import layout
from ..bucket.folders import Folder, ScheduleRead, read_schedule
from ..bucket.records import decode_restore_record, read_lock
from ..bucket.sidecar import SidecarState
from ..clickhouse.scratch import scratch_prefix
from ..connections import Connections
from ..errors import ReconcilerError
from ..model import (
    BackupState,
    BucketState,
    Config,
    Observed,
    ObservedBackup,
    ObserveOptions,
    Operation,
    Provider,
    Refresh,
    RestoreRecord,
    ScheduleInventory,
    ServiceState,
)
from ..model.targets import select
from ..redact import redact
from .adopt import observe_adoptable
from .cloud import cloud_digest, observe_cloud
from .copies import observe_copies
from .deleted import observe_deleted, uncover
from .immutability import copy_lock_ends, lock_ends, observe_object_locks, snapshot_lock_ends
from .inventory import classify
from .privileges import observe_privileges
from .snapshots import observe_snapshots, snapshot_digest_doc

__all__ = ["observe", "state_digest"]

SCHEDULE_PARALLELISM = 8
#: a schedule's backup whose sidecar says complete and whose manifest is gone (observe/deleted.py)
DELETED = BackupState.DELETED


def observe(
    config: Config,
    conns: Connections,
    now: datetime,
    targets: Iterable[str] = (),
    options: ObserveOptions | None = None,
) -> Observed:
    """The real state of what ``targets`` select, read as ``options`` say (a fast refresh when not
    given: docs/commands.md, "Refresh")."""
    options = options or ObserveOptions()
    sel = select(config, targets)
    names = sorted(sel.observed_schedules)
    # The bucket checks, the lock reads and the schedules' reads are all under way at once: a plan
    # waits for one round trip, not three in a row. A schedule's read in a bucket that turns out
    # missing or unreachable is thrown away (its error with it).
    with (
        ThreadPoolExecutor(max(1, min(2 * len(sel.buckets), SCHEDULE_PARALLELISM))) as probes,
        ThreadPoolExecutor(max(1, min(SCHEDULE_PARALLELISM, len(names)))) as pool,
    ):
        checks = {name: _BucketCheck(probes, conns, name) for name in sorted(sel.buckets)}

        def one_schedule(name: str) -> tuple[str, list[ObservedBackup], dict[str, Folder], bool] | None:
            """Settled folders are classified at once (so that only small records stay in memory);
            in-progress ones wait for system.backups."""
            s = config.schedules[name]
            check = checks[s.bucket]
            if check.known_unreachable():
                return None
            bucket = config.buckets[s.bucket]
            try:
                read: ScheduleRead | ReconcilerError = read_schedule(
                    conns.store(s.bucket),
                    layout.schedule_prefix(bucket, s.service, name),
                    layout.index_key(bucket, s.service, name),
                    (s.service, name),
                    options.refresh,
                )
            except ReconcilerError as e:
                read = e
            state = check.result()
            if not state.reachable:
                return None
            if isinstance(read, ReconcilerError):
                raise read
            if options.refresh == Refresh.FULL and bucket.immutability is not None and bucket.provider == Provider.S3:
                prefix = layout.schedule_prefix(bucket, s.service, name)
                uncover(conns.store(s.bucket), prefix, read, (s.service, name))  # backups whose sidecar went too
            settled, pending = [], {}
            for f in read.folders.values():
                if f.sidecar and not f.has_manifest and f.sidecar.state == SidecarState.IN_PROGRESS:
                    pending[f.name] = f
                else:
                    settled.append(classify(f, None, state.lock, now, DELETED))
            return name, settled, pending, read.index_is_current

        reads = pool.map(_guard(one_schedule), names)
        # ClickHouse is asked here, in this thread (the embedded engine wants it), while the
        # bucket requests are under way
        services = {name: _observe_service(conns, name) for name in sorted(sel.services)}
        listed = [r for r in reads if r is not None]
        buckets = {name: check.result() for name, check in checks.items()}
    errors = [r[1] for r in listed if isinstance(r[1], ReconcilerError)]
    if errors:  # a bucket that answered head but fails its listing: surface it, do not guess
        raise errors[0]
    read_ok = [r for r in listed if len(r) == 4]

    ops = _live_operations(config, conns, services, {n: pending for n, _, pending, _ in read_ok})
    schedules = {}
    for name, settled, pending, index_current in read_ok:
        s = config.schedules[name]
        lock = buckets[s.bucket].lock
        backups = settled + [
            classify(f, ops.get((s.service, f.sidecar.operation_id)) if f.sidecar else None, lock, now, DELETED)
            for f in pending.values()
        ]
        backups.sort(key=lambda b: (b.slot is None, b.slot or now, b.attempt, b.name))
        prefix = layout.schedule_prefix(config.buckets[s.bucket], s.service, name)
        schedules[name] = ScheduleInventory(name, prefix, tuple(backups), index_current)

    observe_object_locks(config, conns, buckets)
    lock_ends(config, conns, buckets, schedules)
    observe_deleted(config, conns, schedules)

    restores: dict[str, RestoreRecord] = {}
    restore_problems: dict[str, str] = {}
    for name in sorted(sel.restores):
        r = config.restores[name]
        if r.source.schedule:
            bucket = r.source.bucket or config.schedules[r.source.schedule].bucket  # from a copy: there
        elif r.source.snapshot:
            bucket = config.snapshots[r.source.snapshot].bucket
        else:
            continue
        if bucket not in buckets or not buckets[bucket].reachable:
            continue
        key = layout.restore_key(config.buckets[bucket], name)
        got = conns.store(bucket).read(key)
        if got is None:
            continue
        try:
            restores[name] = decode_restore_record(got[0])
        except ValueError as e:
            restore_problems[name] = f"{config.buckets[bucket].url(key)} cannot be read ({e})"

    cloud = observe_cloud(config, conns, sel.services)
    leftovers = _drill_leftovers(config, conns, services, sel.schedules)
    snapshots, stale_snapshot_indexes = observe_snapshots(
        config, conns, now, sel.observed_snapshots, buckets, services, options.refresh
    )
    adoptable, service_databases = observe_adoptable(config, conns, sel.schedules, schedules, services)
    privileges = observe_privileges(config, conns, services, sel)
    copies = observe_copies(config, conns, buckets, sel.observed_schedules, now, options.refresh)
    copy_lock_ends(config, conns, buckets, copies)
    snapshots = snapshot_lock_ends(config, conns, buckets, snapshots)
    partial = Observed(
        buckets,
        services,
        schedules,
        restores,
        digest="",
        cloud=cloud,
        restore_problems=restore_problems,
        snapshots=snapshots,
        adoptable=adoptable,
        service_databases=service_databases,
        privileges=privileges,
        copies=copies,
        refresh=options.refresh,
        stale_snapshot_indexes=stale_snapshot_indexes,
    )
    return Observed(
        buckets,
        services,
        schedules,
        restores,
        digest=state_digest(partial),
        cloud=cloud,
        drill_leftovers=leftovers,
        restore_problems=restore_problems,
        snapshots=snapshots,
        adoptable=adoptable,
        service_databases=service_databases,
        privileges=privileges,
        copies=copies,
        refresh=options.refresh,
        stale_snapshot_indexes=stale_snapshot_indexes,
    )


def _drill_leftovers(
    config: Config, conns: Connections, services: dict[str, ServiceState], schedules: Iterable[str]
) -> dict[str, tuple[str, ...]]:
    """Scratch databases of drills that did not finish, per drill service (one query each)."""
    prefixes: dict[str, list[str]] = {}
    for name in schedules:
        drill = config.schedules[name].validate.drill
        if drill and services.get(drill.service, ServiceState(drill.service, False)).reachable:
            prefixes.setdefault(drill.service, []).append(scratch_prefix(config, name))
    out: dict[str, tuple[str, ...]] = {}
    for service, heads in prefixes.items():
        try:
            dbs = conns.clickhouse(service).databases()
        except ReconcilerError:
            continue
        found = tuple(sorted(db for db in dbs if any(db.startswith(h) for h in heads)))
        if found:
            out[service] = found
    return out


def _guard(fn: Any) -> Any:
    def run(name: str) -> Any:
        try:
            return fn(name)
        except ReconcilerError as e:
            return name, e

    return run


class _BucketCheck:
    """The bucket check and the read of the lock of one bucket, both sent at once (the lock read
    of a bucket that does not exist fails, and is then not looked at)."""

    def __init__(self, pool: ThreadPoolExecutor, conns: Connections, name: str) -> None:
        self.name = name
        self.bucket = conns.config.buckets[name]
        self._exists = pool.submit(lambda: conns.store(name).bucket_exists())
        self._lock = pool.submit(lambda: read_lock(conns.store(name), layout.lock_key(self.bucket)))
        self._state: BucketState | None = None
        self._guard = threading.Lock()

    def known_unreachable(self) -> bool:
        """The bucket check already answered that it is not there (or failed): a schedule's read
        need not start. Never waits (the lock's read may still be under way)."""
        if not self._exists.done():
            return False
        return self._exists.exception() is not None or not self._exists.result()

    def result(self) -> BucketState:
        with self._guard:
            if self._state is None:
                self._state = self._decide()
            return self._state

    def _decide(self) -> BucketState:
        try:
            if not self._exists.result():
                return BucketState(self.name, reachable=False, error=f"{self.bucket.url()} does not exist")
            lock = self._lock.result()
        except ReconcilerError as e:
            return BucketState(self.name, reachable=False, error=redact(e.message))
        return BucketState(self.name, reachable=True, lock=lock)


def _observe_service(conns: Connections, name: str) -> ServiceState:
    try:
        version = conns.clickhouse(name).version()
    except ReconcilerError as e:
        return ServiceState(name, reachable=False, error=redact(e.message))
    return ServiceState(name, reachable=True, version=version)


def _live_operations(
    config: Config,
    conns: Connections,
    services: dict[str, ServiceState],
    folders_by_schedule: dict[str, dict[str, Folder]],
) -> dict[tuple[str, str], Operation]:
    """``system.backups`` rows of every in-progress sidecar, one query per service."""
    wanted: dict[str, list[str]] = {}
    for name, folders in folders_by_schedule.items():
        service = config.schedules[name].service
        for f in folders.values():
            if (
                f.sidecar
                and not f.has_manifest
                and f.sidecar.state == SidecarState.IN_PROGRESS
                and f.sidecar.operation_id
            ):
                wanted.setdefault(service, []).append(f.sidecar.operation_id)
    out: dict[tuple[str, str], Operation] = {}
    for service, ids in wanted.items():
        if not services[service].reachable:
            continue
        try:
            for op_id, op in conns.clickhouse(service).operations(ids).items():
                out[(service, op_id)] = op
        except ReconcilerError:
            continue  # unknown: the sidecar then counts as abandoned unless its lock is live
    return out


def state_digest(observed: Observed) -> str:
    """sha256 of what a plan depends on. A saved plan is stale when this changes.

    Made of what both refreshes see alike when nothing changed behind the reconciler's back (the
    folders, their manifests and sidecars: the sizes are the sidecars'), plus what only a full
    refresh finds (a listing that differs from its sidecar), so that a plan and the apply of it
    that observe with the same refresh agree on an unchanged bucket."""

    # The lock is left out: it is the apply's own business, not state a plan depends on.
    def folders(inv: ScheduleInventory) -> list[list[Any]]:
        """The facts of a schedule's folders, in its own bucket or in a copy bucket alike."""
        return [
            [
                b.name,
                b.state.value,
                b.kind,
                b.base,
                b.has_manifest,
                b.sidecar_etag,
                b.mismatch,
                [[v.level.value, v.result.value] for v in b.validations],
                # whether a deleted backup can be recovered decides its action: appended only
                # then, so that the digests of plans without one stay the same
                *([b.recoverable] if b.state == BackupState.DELETED else []),
            ]
            for b in inv.backups
        ]

    doc = {
        "buckets": {n: [b.reachable] for n, b in observed.buckets.items()},
        "services": {n: s.reachable for n, s in observed.services.items()},
        "schedules": {n: folders(inv) for n, inv in observed.schedules.items()},
        "restores": {n: [r.backup, r.spec_digest] for n, r in observed.restores.items()},
        "cloud": cloud_digest(observed.cloud),
        "restore_problems": sorted(observed.restore_problems),
    }
    if observed.privileges:  # a grant given or taken since a plan was saved makes it stale
        doc["privileges"] = {n: sorted(p.granted.items()) for n, p in observed.privileges.items()}
    if observed.snapshots or observed.adoptable:  # absent: the digests of plans saved before stay
        doc["snapshots"] = snapshot_digest_doc(observed)
    if observed.copies:  # absent without copies: the digests of plans made before copies stay the same
        doc["copies"] = {n: {b: folders(inv) for b, inv in per.items()} for n, per in observed.copies.items()}
    return "sha256:" + hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
