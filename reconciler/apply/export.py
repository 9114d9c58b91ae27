"""``export``: sidecar first, then ``BACKUP ... ASYNC``, then follow it to the end (docs/commands.md).

A folder whose in-progress sidecar names the same ClickHouse operation, written by an apply that
is gone, is adopted: its BACKUP is not started again, it is followed in ``system.backups`` to the
end and its outcome recorded (a server keeps running a BACKUP whose client died)."""

from __future__ import annotations

from dataclasses import replace

from ..bucket import layout
from ..bucket.sidecar import Sidecar, SidecarState
from ..clickhouse import NoAnswer
from ..clickhouse.sql import backup_sql, destination_sql
from ..errors import PreconditionFailed, ReconcilerError
from ..model import ExportAction, Operation, Outcome, OutcomeStatus, Provider
from ..model.slots import parse_backup_name
from ..redact import redact
from .context import ApplyContext, operation_id
from .snapshot import record_snapshot_made


def run_export(ctx: ApplyContext, action: ExportAction) -> Outcome:
    assert (action.schedule or action.snapshot) and action.backup and action.bucket and action.service
    bucket = ctx.config.buckets[action.bucket]
    store = ctx.conns.store(action.bucket)
    ch = ctx.conns.clickhouse(action.service)
    started = ctx.clock()
    if action.snapshot:  # a snapshot: its own folder, slotted at the time it is made
        schedule = layout.SNAPSHOTS
        slot = started.replace(microsecond=0)
    else:
        assert action.schedule
        schedule = action.schedule
        parsed = parse_backup_name(action.backup)
        assert parsed is not None
        slot = parsed[0]
    key = layout.backup_prefix(bucket, action.service, schedule, action.backup)
    location = bucket.url(key)
    base = action.base
    sidecar = Sidecar(
        service=action.service,
        schedule=schedule,
        backup=action.backup,
        slot=slot,
        kind=action.kind,
        base=base,
        chain=action.chain,
        scope=action.scope,
        location=location,
        # a snapshot made again after a failed attempt reuses its folder, so its id must differ
        operation_id=operation_id("backup", location, action.backup, salt=ctx.run_id if action.snapshot else ""),
        run_id=ctx.run_id,
        started_at=started,
    )
    sidecar_key = key + layout.SIDECAR
    adopted: str | None = None  # the run whose export this one follows to its end
    try:
        # conditional: a folder that already has a record belongs to another attempt
        etag = store.create(sidecar_key, sidecar.encode())
    except PreconditionFailed:
        got = store.read(sidecar_key)
        theirs = _decode(got[0]) if got else None
        if got is None or theirs is None or theirs.operation_id != sidecar.operation_id:
            detail = f"{location} already has a sidecar; re-plan"
            return Outcome(action.id, OutcomeStatus.FAILED, detail, started, ctx.clock())
        etag = got[1]
        if theirs.run_id != ctx.run_id:
            if theirs.state != SidecarState.IN_PROGRESS:
                detail = f"{location} already has a sidecar ({theirs.state.value}); re-plan"
                return Outcome(action.id, OutcomeStatus.FAILED, detail, started, ctx.clock())
            adopted, sidecar = theirs.run_id or "?", theirs
        # else: our own create got through and its reply was lost; the retry found it
    if action.snapshot and adopted is None:
        record_snapshot_made(ctx, action, location, started)  # from now on the name is used

    base_sql = None
    if base:
        base_sql = destination_sql(bucket, layout.backup_prefix(bucket, action.service, schedule, base))
    storage_class = bucket.storage_class if bucket.provider == Provider.S3 else None
    sql = backup_sql(sidecar.scope, destination_sql(bucket, key), sidecar.operation_id, base_sql, storage_class)

    def progress(op: Operation) -> None:
        if op.total_size:
            ctx.console.action_progress(action, f"{op.status} {op.num_files} files, {op.total_size} bytes")

    try:
        if adopted is None:
            ch.start(sql, sidecar.operation_id)
        op = ch.wait(sidecar.operation_id, on_poll=progress)
    except NoAnswer as e:
        # the network failed, not the BACKUP: ClickHouse may be writing it still, so the sidecar
        # stays in progress and the next apply adopts it (or retries the slot if it is not there)
        detail = (
            f"lost contact with ClickHouse while following BACKUP {sidecar.operation_id} ({redact(e.message)}); "
            "it may still run on the server: the next apply adopts it"
        )
        return Outcome(action.id, OutcomeStatus.FAILED, detail, started, ctx.clock())
    except ReconcilerError as e:
        failed = replace(sidecar, state=SidecarState.FAILED, error=redact(e.message), finished_at=ctx.clock())
        _write_outcome(store, sidecar_key, failed, etag)
        return Outcome(action.id, OutcomeStatus.FAILED, redact(e.message), started, ctx.clock())

    finished = ctx.clock()
    ok = op.succeeded
    done = replace(
        sidecar,
        state=SidecarState.COMPLETE if ok else SidecarState.FAILED,
        operation_status=op.status,
        error=None if ok else redact(op.error),
        num_files=op.num_files,
        total_size=op.total_size,
        stored_files=op.num_entries + 1 if ok and op.num_entries is not None else None,
        stored_bytes=op.stored_bytes if ok else None,
        finished_at=finished,
    )
    _write_outcome(store, sidecar_key, done, etag)
    ch_seconds = (op.end_time - op.start_time).total_seconds() if op.start_time and op.end_time else None
    facts = {"num_files": op.num_files, "total_size": op.total_size, "clickhouse_seconds": ch_seconds}
    how = f"adopted the export of run {adopted}: " if adopted else ""
    if not ok:
        detail = f"{how}{op.status}: {redact(op.error)}"
        return Outcome(action.id, OutcomeStatus.FAILED, detail, started, finished, facts)
    detail = f"{how}{op.num_files} files, {op.total_size} bytes"
    return Outcome(action.id, OutcomeStatus.DONE, detail, started, finished, facts)


def _decode(data: bytes) -> Sidecar | None:
    try:
        return Sidecar.decode(data)
    except ValueError:
        return None


def _write_outcome(store, key: str, sidecar: Sidecar, etag: str) -> None:  # type: ignore[no-untyped-def]
    try:
        store.replace(key, sidecar.encode(), etag)
    except PreconditionFailed:
        store.write(key, sidecar.encode())  # our own folder: the record of the outcome wins
