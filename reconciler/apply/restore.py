"""``restore``: RESTORE a schedule's backup into a service, then record that it was done."""

from __future__ import annotations

import contextlib
import json

from .. import layout
from ..errors import ReconcilerError
from ..manifest import ManifestError, parse_manifest
from ..model import Action, Outcome, OutcomeStatus, Scope, iso
from ..redact import redact
from ..sidecar import Sidecar
from ..sql import SYSTEM_DATABASES, destination_sql, restore_sql
from .context import ApplyContext, operation_id


def run_restore(ctx: ApplyContext, action: Action) -> Outcome:
    if action.details.get("new_service"):
        from .cloud_restore import run_cloud_restore

        return run_cloud_restore(ctx, action)
    assert action.schedule and action.backup and action.bucket and action.service
    name = action.details["restore"]
    source_service = action.details["from_service"]
    renames: dict[str, str] = dict(action.details.get("databases") or {})
    allow_non_empty = bool(action.details.get("allow_non_empty_tables"))
    bucket = ctx.config.buckets[action.bucket]
    store = ctx.conns.store(action.bucket)
    ch = ctx.conns.clickhouse(action.service)
    key = layout.backup_prefix(bucket, source_service, action.schedule, action.backup)
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

    location = bucket.url(key)
    op_id = operation_id("restore", location, name, salt=ctx.run_id)
    base = action.details.get("base")
    base_sql = (
        destination_sql(bucket, layout.backup_prefix(bucket, source_service, action.schedule, base)) if base else None
    )
    sql = restore_sql(scope, renames, destination_sql(bucket, key), op_id, allow_non_empty, base_sql)
    try:
        ch.start(sql, op_id)
        op = ch.wait(op_id, on_poll=lambda o: ctx.console.action_progress(action, o.status))
    except ReconcilerError as e:
        return failed(redact(e.message))
    if not op.succeeded:
        return failed(f"{op.status}: {redact(op.error)}")

    finished = ctx.clock()
    record = {
        "restore": name,
        "backup": action.backup,
        "from": {"service": source_service, "schedule": action.schedule, "location": location},
        "to": {"service": action.service, "databases": renames},
        "spec_digest": action.details.get("spec_digest", ""),
        "operation_id": op_id,
        "done_at": iso(finished),
        "run_id": ctx.run_id,
    }
    store.write(layout.restore_key(bucket, name), json.dumps(record, indent=2).encode())
    detail = f"restored {len(writes)} tables from {action.backup}"
    return Outcome(action.id, OutcomeStatus.DONE, detail, started, finished, {"tables": len(writes)})
