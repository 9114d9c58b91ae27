"""The ``drill`` level: restore the backup into scratch databases on the drill service,
``CHECK TABLE`` every table, compare each table's rows with what the backup holds (the sum of its
parts' ``count.txt``), and drop what was created, also after a failure. Scratch databases are
named ``reconciler_drill_<schedule hash>_<run hash>_<database>`` so that a crashed drill's
leftovers can be found and dropped by the next apply (which holds the schedule's lock). A drill
RESTORE that a server still runs for an apply that is gone is waited for before its scratch
databases are dropped; the drill is then run again by the plan (a drill's result is recorded only
by a drill that ran to its end)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from ..bucket import layout
from ..clickhouse import ClickHouse
from ..clickhouse.scratch import SCRATCH, scratch_prefix
from ..clickhouse.sql import SYSTEM_DATABASES, destination_sql, quote_ident, quote_string, restore_sql
from ..errors import ReconcilerError
from ..model import (
    Outcome,
    OutcomeStatus,
    Provider,
    Scope,
    ValidateAction,
    Validation,
    ValidationLevel,
    ValidationResult,
)
from ..redact import redact
from .checksums import BackupFiles, ChecksumProblem, load_backup, segments
from .context import ApplyContext, operation_id
from .restore import create_databases
from .sidecar_io import base_folder_of, read_sidecar, record_validation


def wait_for_orphaned_drills(ch: ClickHouse, where: str = "") -> list[str]:
    """Wait until no drill RESTORE (of backups whose location holds ``where``) is running on the
    service: called where no drill of this apply runs yet, so each is one an earlier apply left."""
    sql = "SELECT id FROM system.backups WHERE status = 'RESTORING' AND startsWith(id, 'reconciler-drill-')"
    if where:
        sql += f" AND position(name, {quote_string(where)}) > 0"
    ids = [str(r[0]) for r in ch.query(sql)]
    for op_id in ids:
        with contextlib.suppress(ReconcilerError):  # gone with a restart: nothing runs any more
            ch.wait(op_id)
    return ids


def drop_leftovers(ch: ClickHouse, prefixes: Iterable[str], where: str = "") -> list[str]:
    """Drop scratch databases left by drills that did not finish (names, or name prefixes),
    after their RESTOREs, if a server still runs them, have ended."""
    wait_for_orphaned_drills(ch, where)
    dropped = []
    for db in ch.databases():
        if any(db.startswith(p) for p in prefixes) and db.startswith(SCRATCH):
            ch.command(f"DROP DATABASE IF EXISTS {quote_ident(db)} SYNC")
            dropped.append(db)
    return dropped


def expected_rows(store_read, backup: BackupFiles) -> dict[tuple[str, str], int]:  # type: ignore[no-untyped-def]
    """(database, table) -> rows, from the parts' count.txt (MergeTree tables only)."""
    rows: dict[tuple[str, str], int] = {}
    for f in backup.manifest.files:
        parts = f.name.split("/")
        if len(parts) == 5 and parts[0] == "data" and parts[4] == "count.txt":
            content = b"".join(store_read(key, n) for key, n in segments(backup, f))
            try:
                n = int(content.strip() or b"0")
            except ValueError:
                raise ChecksumProblem(f"{f.name}: count.txt holds {content[:20]!r}, not a number") from None
            from urllib.parse import unquote

            key = (unquote(parts[1]), unquote(parts[2]))
            rows[key] = rows.get(key, 0) + n
    return rows


def run_drill(ctx: ApplyContext, action: ValidateAction) -> Outcome:
    assert action.schedule and action.backup and action.bucket and action.service
    started = ctx.clock()
    config = ctx.config
    bucket = config.buckets[action.bucket]
    store = ctx.conns.store(action.bucket)
    folder = layout.backup_prefix(bucket, action.service, action.schedule, action.backup)
    drill_service = action.drill_service
    assert drill_service is not None
    ch = ctx.conns.clickhouse(drill_service)

    def finish(ok: bool, detail: str, files: int | None = None) -> Outcome:
        v = Validation(
            ValidationLevel.DRILL, ctx.clock(), ValidationResult.OK if ok else ValidationResult.FAILED, detail, files
        )
        record_validation(store, folder, v)
        status = OutcomeStatus.DONE if ok else OutcomeStatus.FAILED
        return Outcome(action.id, status, detail, started, ctx.clock(), {"level": "drill", "result": v.result.value})

    schedule_path = layout.schedule_prefix(bucket, action.service, action.schedule)
    drop_leftovers(ch, [scratch_prefix(config, action.schedule)], where=schedule_path)
    sidecar = read_sidecar(store, folder)
    try:
        backup = load_backup(store, folder, lambda f: base_folder_of(store, f))
        want = expected_rows(lambda key, n: _read_exact(store, key, n), backup)
    except ChecksumProblem as e:
        return finish(False, str(e))
    tables = [(db, t) for db, t in backup.manifest.tables() if db not in SYSTEM_DATABASES]
    databases = sorted({db for db, _ in tables} | {d for d in backup.manifest.databases() if d not in SYSTEM_DATABASES})
    prefix = scratch_prefix(config, action.schedule, ctx.run_id)
    renames = {db: prefix + db for db in databases}
    scope = sidecar.scope if sidecar else Scope()
    base_sql = None
    if sidecar and sidecar.base:
        base_sql = destination_sql(bucket, layout.backup_prefix(bucket, action.service, action.schedule, sidecar.base))
    # a drill of a copy (in a copy bucket) restores from the copy bucket alone: the copied manifests
    # name their bases' copies without a credential, and ClickHouse reads them with the RESTORE
    # source's own S3 credentials (it supports that for S3 only; an Azure copy's manifest names its
    # base with the connection string, as ClickHouse writes it)
    from_copy = action.bucket != config.schedules[action.schedule].bucket and bucket.provider != Provider.AZURE
    op_id = operation_id("drill", bucket.url(folder), action.backup, salt=ctx.run_id)
    try:
        sql = restore_sql(
            scope, renames, destination_sql(bucket, folder), op_id, False, base_sql, from_copy and bool(base_sql)
        )
        create_databases(ch, scope, renames.values())  # dropped below, as the RESTORE's would be
        ch.start(sql, op_id)
        op = ch.wait(op_id, on_poll=lambda o: ctx.console.action_progress(action, f"drill {o.status}"))
        if not op.succeeded:
            return finish(False, f"RESTORE into scratch databases: {op.status}: {redact(op.error)}")
        problems = []
        for db, table in tables:
            scratch = f"{quote_ident(renames[db])}.{quote_ident(table)}"
            check = ch.query(f"CHECK TABLE {scratch} SETTINGS check_query_single_value_result = 1")
            if check and not int(check[0][0]):
                problems.append(f"CHECK TABLE {db}.{table} failed")
                continue
            if (db, table) in want:
                got = int(ch.query(f"SELECT count() FROM {scratch}")[0][0])
                if got != want[(db, table)]:
                    problems.append(f"{db}.{table} has {got} rows after restore, the backup holds {want[(db, table)]}")
        if problems:
            return finish(False, "; ".join(problems[:5]), len(tables))
        rows = sum(want.values())
        return finish(
            True,
            f"restored {len(tables)} tables into scratch databases on {drill_service}, "
            f"CHECK TABLE passed, {rows} rows as in the backup",
            len(tables),
        )
    except ReconcilerError as e:
        return finish(False, redact(e.message))
    finally:
        for scratch_db in renames.values():
            # if this fails, the next apply finds and drops it (drop_leftovers)
            with contextlib.suppress(ReconcilerError):
                ch.command(f"DROP DATABASE IF EXISTS {quote_ident(scratch_db)} SYNC")


def _read_exact(store, key: str, n: int) -> bytes:  # type: ignore[no-untyped-def]
    got = store.read(key)
    if got is None:
        raise ChecksumProblem(f"{key.rsplit('/', 1)[-1]} is missing")
    return got[0][:n] if n else got[0]
