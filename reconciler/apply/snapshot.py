"""Snapshots in apply (docs/bucket-layout.md, ``_snapshots``): the record that a declared snapshot
was made (written right after its sidecar, before ``BACKUP`` starts, so that a snapshot is made
once), and its prune: past ``keep_until`` (the record says ``pruning``, then ``pruned``), or the
removal of a failed attempt (the record says ``cleared``: it may be made again)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from ..bucket import layout
from ..bucket.snapshot_record import SnapshotRecord
from ..model import ExportAction, Outcome, PruneAction
from ..model.snapshots import SnapshotRecordState
from .context import ApplyContext
from .guard import snapshot_folder

#: how a folder is deleted (``prune.prune_folder``, handed in by ``run_prune``)
PruneFolder = Callable[[ApplyContext, PruneAction, str], Outcome]


def _read(ctx: ApplyContext, bucket_name: str, name: str) -> SnapshotRecord | None:
    bucket = ctx.config.buckets[bucket_name]
    got = ctx.conns.store(bucket_name).read(layout.snapshot_record_key(bucket, name))
    if got is None:
        return None
    try:
        return SnapshotRecord.decode(got[0])
    except ValueError:
        return None


def _write(ctx: ApplyContext, bucket_name: str, record: SnapshotRecord) -> None:
    bucket = ctx.config.buckets[bucket_name]
    ctx.conns.store(bucket_name).write(layout.snapshot_record_key(bucket, record.snapshot), record.encode())


def record_snapshot_made(ctx: ApplyContext, action: ExportAction, location: str, started: datetime) -> None:
    assert action.snapshot and action.bucket and action.service
    _write(
        ctx,
        action.bucket,
        SnapshotRecord(
            snapshot=action.snapshot,
            service=action.service,
            location=location,
            scope=action.scope,
            made_at=started,
            run_id=ctx.run_id,
        ),
    )


def run_snapshot_prune(ctx: ApplyContext, action: PruneAction, prune_folder: PruneFolder) -> Outcome:
    """Prune a snapshot's folder. Planned on a complete snapshot (or when the record says a prune
    past keep_until began), it is the end of the snapshot; otherwise it clears a failed attempt."""
    assert action.snapshot and action.bucket and action.service
    folder = snapshot_folder(ctx.config, action.snapshot)
    record = _read(ctx, action.bucket, action.snapshot)
    expiry = action.state == "complete" or (record is not None and record.state == SnapshotRecordState.PRUNING)
    now = ctx.clock()
    if record is None:
        bucket = ctx.config.buckets[action.bucket]
        record = SnapshotRecord(
            snapshot=action.snapshot,
            service=action.service,
            location=bucket.url(folder),
            scope=ctx.config.snapshots[action.snapshot].scope,
            made_at=now,
            run_id=ctx.run_id,
        )
    if expiry and record.state != SnapshotRecordState.PRUNING:
        _write(ctx, action.bucket, replace(record, state=SnapshotRecordState.PRUNING))
    outcome = prune_folder(ctx, action, folder)
    if outcome.status.value != "done":
        return outcome
    if expiry:
        _write(ctx, action.bucket, replace(record, state=SnapshotRecordState.PRUNED, pruned_at=ctx.clock()))
    else:
        _write(ctx, action.bucket, replace(record, state=SnapshotRecordState.CLEARED))
    return outcome
