"""Observe snapshots (docs/bucket-layout.md, ``_snapshots``): per bucket, one listing of the
snapshot records and a read of each; per service, its ``_snapshots/`` folder read as a schedule's
folder is (reconciler/bucket/folders.py: under a fast refresh one delimiter listing of the
snapshot names and the service's snapshot index, ``.reconciler/index/<service>/_snapshots.json``;
under a full one every object, compared with the sidecars); and ClickHouse's ``system.backups``
for a snapshot still being made."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from ..bucket import layout
from ..bucket.folders import Folder, read_schedule
from ..bucket.sidecar import SidecarState
from ..bucket.snapshot_record import SnapshotRecord
from ..connections import Connections
from ..errors import ReconcilerError
from ..model import Bucket, BucketState, Config, Observed, Operation, Refresh, ServiceState, iso
from ..model.snapshots import ObservedSnapshot
from ..stores.base import Store
from .inventory import classify

__all__ = ["observe_snapshots", "snapshot_digest_doc"]


def observe_snapshots(
    config: Config,
    conns: Connections,
    now: datetime,
    snapshots: Iterable[str],
    buckets: Mapping[str, BucketState],
    services: Mapping[str, ServiceState],
    refresh: Refresh = Refresh.FAST,
) -> tuple[tuple[ObservedSnapshot, ...], frozenset[tuple[str, str]]]:
    """The declared ``snapshots`` (names), and every undeclared snapshot folder of their services
    in their buckets (a snapshot removed from the config is reported, never deleted); and the
    (bucket, service) pairs whose snapshot index is missing or does not say what was found."""
    wanted: dict[str, set[str]] = {}  # bucket -> services whose `_snapshots/` is listed
    for name in snapshots:
        sn = config.snapshots[name]
        wanted.setdefault(sn.bucket, set()).add(sn.service)
    if refresh == Refresh.FULL:
        # a snapshot removed from the config, in a bucket where none is declared any more, is found
        # by its record: a full refresh (drift) reads the records of every bucket it observes; a
        # fast one keeps to the buckets of declared snapshots (one request a bucket less)
        for name in buckets:
            wanted.setdefault(name, set())
    out: list[ObservedSnapshot] = []
    stale: set[tuple[str, str]] = set()
    for bucket_name in sorted(wanted):
        state = buckets.get(bucket_name)
        if state is None or not state.reachable:
            continue
        bucket = config.buckets[bucket_name]
        store = conns.store(bucket_name)
        records = _records(store, bucket, layout.snapshot_records_prefix(bucket))
        declared = {n: s for n, s in config.snapshots.items() if s.bucket == bucket_name and n in set(snapshots)}
        # a snapshot removed from the config is found by its record, or beside a declared one
        named = {r.service for r, _ in records.values() if r is not None and r.service in config.services}
        for service in sorted(wanted[bucket_name] | named):
            read = read_schedule(
                store,
                layout.snapshots_prefix(bucket, service),
                layout.index_key(bucket, service, layout.SNAPSHOTS),
                (service, layout.SNAPSHOTS),
                refresh,
            )
            folders = read.folders
            if not read.index_is_current:
                stale.add((bucket_name, service))
            ops = _operations(conns, services, service, folders.values())
            names = {n for n, s in declared.items() if s.service == service} | set(folders)
            for name in sorted(names):
                found = folders.get(name)
                folder = None
                if found is not None:
                    op = ops.get(found.sidecar.operation_id) if found.sidecar else None
                    folder = classify(found, op, state.lock, now)
                record, problem = records.get(name, (None, None))
                if record is not None and record.service != service:
                    record = None  # the record of another service's snapshot of that name
                is_declared = name in declared and declared[name].service == service
                out.append(
                    ObservedSnapshot(
                        name=name,
                        service=service,
                        bucket=bucket_name,
                        declared=is_declared,
                        folder=folder,
                        record=record.info() if record else None,
                        record_problem=problem if is_declared else None,
                    )
                )
    return tuple(out), frozenset(stale)


def _records(store: Store, bucket: Bucket, prefix: str) -> dict[str, tuple[SnapshotRecord | None, str | None]]:
    out: dict[str, tuple[SnapshotRecord | None, str | None]] = {}
    for obj in store.list(prefix):
        name = obj.key[len(prefix) :]
        if "/" in name or not name.endswith(".json"):
            continue
        name = name[: -len(".json")]
        got = store.read(obj.key)
        if got is None:
            continue
        try:
            out[name] = (SnapshotRecord.decode(got[0]), None)
        except ValueError as e:
            out[name] = (None, f"{bucket.url(obj.key)} cannot be read ({e})")
    return out


def _operations(
    conns: Connections, services: Mapping[str, ServiceState], service: str, folders: Iterable[Folder]
) -> dict[str, Operation]:
    ids = [
        f.sidecar.operation_id
        for f in folders
        if f.sidecar and not f.has_manifest and f.sidecar.state == SidecarState.IN_PROGRESS and f.sidecar.operation_id
    ]
    state = services.get(service)
    if not ids or state is None or not state.reachable:
        return {}
    try:
        return conns.clickhouse(service).operations(ids)
    except ReconcilerError:
        return {}  # unknown: an in-progress sidecar then counts as abandoned unless its lock is live


def snapshot_digest_doc(observed: Observed) -> dict[str, Any]:
    """What a plan depends on of the snapshots and of the folders adoption reads (state_digest)."""
    return {
        "snapshots": [
            [
                s.name,
                s.service,
                s.bucket,
                s.declared,
                [s.folder.state.value, s.folder.sidecar_etag, s.folder.has_manifest, s.folder.total_size]
                if s.folder
                else None,
                [s.record.state.value, iso(s.record.made_at)] if s.record else None,
                s.record_problem,
            ]
            for s in observed.snapshots
        ],
        "adoptable": {
            sched: {
                name: [f.kind, f.base, f.base_elsewhere, list(f.databases), list(f.tables), f.problem]
                for name, f in sorted(folders.items())
            }
            for sched, folders in sorted(observed.adoptable.items())
        },
        "service_databases": {k: list(v) for k, v in sorted(observed.service_databases.items())},
    }
