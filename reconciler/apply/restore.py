"""``restore``: RESTORE a schedule's backup into a service, then record that it was done.

An attempt of an apply that is gone is first looked up in ``system.backups`` (a server keeps
running a RESTORE whose client died): while it runs it is waited for; if it restored this same
backup for this same declaration it is adopted (recorded as done, not run twice); otherwise what
it wrote is removed and the restore runs again. A RESTORE that ended failed is recorded with its
error, and undone the same way by the next attempt. The target databases of a table-scope backup
are created first (``RESTORE TABLE ... AS`` does not create them) and recorded as created by the
attempt."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from ..bucket import layout
from ..bucket.records import RestoreAttempt, RestoreDone
from ..bucket.sidecar import Sidecar
from ..clickhouse import ClickHouse, NoAnswer, OperationGone
from ..clickhouse.manifest import ManifestError, parse_manifest
from ..clickhouse.sql import SYSTEM_DATABASES, create_database_sql, destination_sql, quote_ident, restore_sql
from ..errors import ReconcilerError
from ..model import Outcome, OutcomeStatus, Provider, RestoreAction, Scope
from ..redact import redact
from ..stores import Store
from .context import ApplyContext, operation_id


def run_restore(ctx: ApplyContext, action: RestoreAction) -> Outcome:
    assert (action.schedule or action.snapshot) and action.backup and action.bucket and action.service
    name = action.restore
    folders = action.schedule or layout.SNAPSHOTS  # a snapshot's folder is beside the schedules'
    source_service = action.from_service
    renames: dict[str, str] = dict(action.databases)
    allow_non_empty = action.allow_non_empty_tables
    bucket = ctx.config.buckets[action.bucket]
    store = ctx.conns.store(action.bucket)
    ch = ctx.conns.clickhouse(action.service)
    key = layout.backup_prefix(bucket, source_service, folders, action.backup)
    started = ctx.clock()

    def failed(detail: str) -> Outcome:
        return Outcome(action.id, OutcomeStatus.FAILED, detail, started, ctx.clock())

    got = store.read(key + layout.MANIFEST)
    if got is None:
        return failed(f"{bucket.url(key)} has no manifest: the backup is not complete")
    try:
        manifest = parse_manifest(got[0])
    except ManifestError as e:
        return failed(f"{bucket.url(key)}: {e}")
    sc_raw = store.read(key + layout.SIDECAR)
    scope = Scope()
    if sc_raw is not None:
        with contextlib.suppress(ValueError):
            scope = Sidecar.decode(sc_raw[0]).scope

    # Which (database, table) the restore writes, by the names it will have on the target.
    writes = [
        (renames.get(db, db), table)
        for db, table in manifest.tables()
        if db not in SYSTEM_DATABASES and (not renames or db in renames)
    ]
    record_key = layout.restore_key(bucket, name)
    location = bucket.url(key)
    prior = _interrupted_attempt(store, record_key, ctx.run_id)
    if prior is not None:
        prior_location = bucket.url(layout.backup_prefix(bucket, source_service, folders, prior.backup))
        adopted = _adopt(ch, prior, action, prior_location)
        if adopted is not None:
            done = _done(ctx, action, location, adopted, ctx.clock())
            store.write(record_key, done.encode())
            detail = f"adopted the restore of run {prior.run_id}, which ClickHouse finished: {action.backup}"
            return Outcome(action.id, OutcomeStatus.DONE, detail, started, ctx.clock(), {"tables": len(writes)})
    undone = _undo_interrupted_attempt(ch, prior)
    targets = sorted({db for db, _ in writes})
    present_dbs = set(ch.databases())
    before = {db: ch.table_rows(db) for db in targets}
    if not allow_non_empty:
        occupied = []
        for db in sorted({db for db, _ in writes}):
            rows = ch.table_rows(db)
            occupied += [f"{db}.{t} ({rows[t]} rows)" for _, t in [w for w in writes if w[0] == db] if rows.get(t)]
        if occupied:
            return failed(
                "refusing to restore into tables that already hold rows: "
                + ", ".join(occupied[:5])
                + ("…" if len(occupied) > 5 else "")
                + "; empty them, restore under other names (to.databases), or set allow_non_empty_tables: true"
            )

    # what this attempt may write without touching anything of the user's: tables absent or empty
    # now; if the apply dies, the next one removes exactly these before restoring again
    attempt = RestoreAttempt(
        restore=name,
        backup=action.backup,
        spec_digest=action.spec_digest,
        started_at=started,
        run_id=ctx.run_id,
        absent_tables=[f"{db}.{t}" for db, t in writes if t not in before[db]],
        empty_tables=[f"{db}.{t}" for db, t in writes if before[db].get(t) == 0],
        absent_databases=[db for db in targets if db not in present_dbs],
    )
    store.write(record_key, attempt.encode())
    op_id = operation_id("restore", location, name, salt=ctx.run_id)

    def attempt_failed(error: str) -> Outcome:
        # the attempt ended: the next plan says it failed and why, not that it "did not finish"
        store.write(record_key, replace(attempt, error=error).encode())
        return failed(error)

    base = action.base
    base_sql = destination_sql(bucket, layout.backup_prefix(bucket, source_service, folders, base)) if base else None
    own = ctx.config.schedules[action.schedule].bucket if action.schedule else action.bucket
    from_copy = action.bucket != own and bucket.provider != Provider.AZURE
    sql = restore_sql(
        scope, renames, destination_sql(bucket, key), op_id, allow_non_empty, base_sql, from_copy and bool(base)
    )
    try:
        create_databases(ch, scope, attempt.absent_databases)
        ch.start(sql, op_id)
        op = ch.wait(op_id, on_poll=lambda o: ctx.console.action_progress(action, o.status))
    except (NoAnswer, OperationGone) as e:
        return failed(redact(e.message))  # what ClickHouse did is unknown: the attempt may still run
    except ReconcilerError as e:
        return attempt_failed(redact(e.message))
    if not op.succeeded:
        return attempt_failed(f"{op.status}: {redact(op.error)}")

    finished = ctx.clock()
    store.write(record_key, _done(ctx, action, location, op_id, finished).encode())
    detail = f"restored {len(writes)} tables from {action.backup}" + (f" ({undone})" if undone else "")
    return Outcome(action.id, OutcomeStatus.DONE, detail, started, finished, {"tables": len(writes)})


def create_databases(ch: ClickHouse, scope: Scope, databases: Iterable[str]) -> None:
    """Create the target databases of a table-scope RESTORE (``RESTORE TABLE a.t AS b.t`` fails
    when ``b`` is absent; ``RESTORE DATABASE`` creates its own)."""
    if scope.tables:
        for db in databases:
            ch.command(create_database_sql(db))


def _done(ctx: ApplyContext, action: RestoreAction, location: str, op_id: str, at: datetime) -> RestoreDone:
    return RestoreDone(
        restore=action.restore,
        backup=action.backup or "",
        spec_digest=action.spec_digest,
        done_at=at,
        run_id=ctx.run_id,
        source={"service": action.from_service, "schedule": action.schedule, "location": location}
        | ({"snapshot": action.snapshot} if action.snapshot else {}),
        target={"service": action.service, "databases": dict(action.databases)},
        operation_id=op_id,
    )


def _interrupted_attempt(store: Store, record_key: str, run_id: str) -> RestoreAttempt | None:
    got = store.read(record_key)
    prior = RestoreAttempt.decode(got[0]) if got is not None else None
    return None if prior is None or prior.run_id == run_id else prior


def _adopt(ch: ClickHouse, prior: RestoreAttempt, action: RestoreAction, prior_location: str) -> str | None:
    """The operation id of the interrupted attempt's RESTORE if ClickHouse finished it (after
    waiting while it runs) and it restored what this action restores; None otherwise."""
    op_id = operation_id("restore", prior_location, prior.restore, salt=prior.run_id)
    try:
        op = ch.operations([op_id]).get(op_id)
        if op is not None and not op.final:
            op = ch.wait(op_id)  # never undo, nor restore again, under a RESTORE that runs
    except ReconcilerError:
        return None  # gone with a restart of the server: undone and restored again
    same = prior.backup == action.backup and prior.spec_digest == action.spec_digest
    return op_id if op is not None and op.succeeded and same else None


def _undo_interrupted_attempt(ch: ClickHouse, prior: RestoreAttempt | None) -> str:
    """Remove what an earlier attempt that did not finish, or failed, wrote: only the tables it
    recorded as absent or empty before it started, and the databases it created (absent before
    it started; dropped only if nothing else is in them)."""
    if prior is None:
        return ""

    def table(qualified: str) -> str:
        db, _, t = qualified.partition(".")
        return f"{quote_ident(db)}.{quote_ident(t)}"

    for t in prior.absent_tables:
        ch.command(f"DROP TABLE IF EXISTS {table(t)} SYNC")
    for t in prior.empty_tables:
        ch.command(f"TRUNCATE TABLE IF EXISTS {table(t)}")
    for db in prior.absent_databases:
        if not ch.table_rows(db):
            ch.command(f"DROP DATABASE IF EXISTS {quote_ident(db)} SYNC")
    n = len(prior.absent_tables) + len(prior.empty_tables)
    how = "failed" if prior.error else "interrupted"
    return f"first undid {n} tables written by the {how} attempt of run {prior.run_id}"
