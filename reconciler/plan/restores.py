"""Restore decisions: a declared restore not yet done (or declared anew) becomes an action."""

from __future__ import annotations

from collections.abc import Mapping

from ..bucket import layout
from ..model import Action, Config, CopyAction, ExportAction, Observed, Restore, RestoreAction, ScheduleInventory, iso
from .asof import resolve_before
from .cloud_restore import decide_cloud_restore
from .ids import restore_id, validate_id
from .schedules import ScheduleDecision, usable


def decide_restore(
    restore: Restore,
    config: Config,
    observed: Observed,
    decisions: Mapping[str, ScheduleDecision],
) -> tuple[Action | None, str | None]:
    """(action, warning). No action when done, or when it cannot be planned (the warning says)."""
    name = restore.name
    if restore.source.service is not None:
        return decide_cloud_restore(restore, config, observed)
    assert restore.source.schedule is not None and restore.target.service is not None
    sched = config.schedules[restore.source.schedule]
    from_bucket = restore.source.bucket or sched.bucket  # a copy bucket: restore from the copy there
    inv: ScheduleInventory | None
    if restore.source.bucket:
        inv = observed.copies.get(sched.name, {}).get(from_bucket)
    else:
        inv = observed.schedules.get(sched.name)
    if inv is None:
        return None, f"restore {name}: bucket {from_bucket} of schedule {sched.name} cannot be read"
    if not observed.services[restore.target.service].reachable:
        return None, f"restore {name}: service {restore.target.service} cannot be reached"

    problem = observed.restore_problems.get(name)
    if problem:
        return None, (
            f"restore {name}: its record {problem}; it is not planned again, so as not to restore twice "
            "(delete the record to run it again)"
        )
    digest = restore.spec_digest()
    record = observed.restores.get(name)
    if record is not None and record.spec_digest == digest and not record.in_progress:
        return None, None
    interrupted = record is not None and record.in_progress

    decision = decisions.get(sched.name)
    planned = decision.export if decision else None
    depends: tuple[str, ...] = ()
    complete = [b for b in inv.backups if usable(b)]
    chain: list[str] | None = None
    asof = ""
    if restore.source.before is not None:
        resolved = resolve_before(inv.backups, restore.source.before)
        skipped = "; ".join(f"{n} passed over: {why}" for n, why in resolved.passed_over)
        if resolved.backup is None:
            return None, (
                f"restore {name}: schedule {sched.name} has no complete backup taken before "
                f"{iso(restore.source.before)}" + (f" ({skipped})" if skipped else "")
            )
        chosen = resolved.backup
        backup, kind, base = chosen.name, chosen.kind, chosen.base
        chain = list(resolved.chain)
        asof = f" (the newest complete backup before {iso(restore.source.before)}" + (
            f"; chain: {', '.join(chain)})" if chain else ")"
        )
        if skipped:
            asof += f" ({skipped})"
    elif restore.source.backup == "latest":
        if complete:
            chosen = complete[-1]
            backup, kind, base = chosen.name, chosen.kind, chosen.base
        elif planned is not None and not restore.source.bucket:
            # nothing to restore yet: restore what this plan exports, once it is validated
            backup, kind, base = planned.backup or "", planned.kind, planned.base
            depends = _after(planned, decision)
        elif planned is not None and (copy := _copy_of(planned, decision, from_bucket)) is not None:
            # nothing in the copy bucket yet: restore the copy this plan makes of its export
            backup, kind, base = planned.backup or "", planned.kind, planned.base
            depends = (copy,)
        else:
            where = f" in copy bucket {from_bucket}" if restore.source.bucket else ""
            return None, f"restore {name}: schedule {sched.name} has no complete backup{where} to restore yet"
    else:
        found = next((b for b in complete if b.name == restore.source.backup), None)
        if found is None:
            return None, (
                f"restore {name}: backup {restore.source.backup} of schedule {sched.name} is not a complete, "
                f"unbroken backup in bucket {from_bucket}"
            )
        backup, kind, base = found.name, found.kind, found.base

    bucket = config.buckets[from_bucket]
    if chain is None:
        chain = inv.chain_of(base)
    renames = dict(restore.target.databases)
    into = ", ".join(f"{s} → {t}" for s, t in renames.items()) or "same names"
    if interrupted:
        why = (
            f"an attempt of run {record.run_id} started {record.done_at:%Y-%m-%d %H:%M}Z and did not finish; "  # type: ignore[union-attr]
            f"what it wrote is removed and {backup} of {sched.name}{asof} restored into service "
            f"{restore.target.service} ({into})"
        )
    elif record is None:
        why = (
            f"declared restore not done yet: {backup} of {sched.name}{asof} into service {restore.target.service} "
            f"({into})"
        )
    else:
        why = (
            f"declaration changed since it was done on {record.done_at:%Y-%m-%d %H:%M}Z from {record.backup}: "
            f"restore {backup} of {sched.name}{asof} into service {restore.target.service} ({into})"
        )
    action = RestoreAction(
        id=restore_id(name),
        service=restore.target.service,
        schedule=sched.name,
        bucket=from_bucket,
        backup=backup,
        restore=name,
        from_service=sched.service,
        kind=kind,
        base=base,
        chain=tuple(chain),
        databases=renames,
        allow_non_empty_tables=restore.allow_non_empty_tables,
        location=bucket.url(layout.backup_prefix(bucket, sched.service, sched.name, backup)),
        spec_digest=digest,
        reason=why,
        depends_on=depends,
    )
    return action, None


def _copy_of(export: ExportAction, decision: ScheduleDecision | None, bucket: str) -> str | None:
    if decision is None:
        return None
    return next(
        (
            a.id
            for a in decision.actions
            if isinstance(a, CopyAction) and a.bucket == bucket and a.backup == export.backup
        ),
        None,
    )


def _after(export: ExportAction, decision: ScheduleDecision | None) -> tuple[str, ...]:
    ids = [export.id]
    if decision:
        vid = validate_id(export.service or "", export.schedule or "", export.backup or "")
        ids += [a.id for a in decision.actions if a.id == vid]
    return tuple(ids)
