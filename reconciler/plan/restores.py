"""Restore decisions: a declared restore not yet done (or declared anew) becomes an action."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..bucket import layout
from ..model import (
    Action,
    Config,
    CopyAction,
    ExportAction,
    Observed,
    Restore,
    RestoreAction,
    RestoreRecord,
    ScheduleInventory,
    iso,
)
from .asof import resolve_before
from .chains import Chains
from .cloud_restore import decide_cloud_restore
from .ids import restore_id, validate_id
from .schedules import ScheduleDecision


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

    prior = prior_restore(restore, observed)
    if prior.refusal is not None or prior.done:
        return None, prior.refusal

    decision = decisions.get(sched.name)
    planned = decision.export if decision else None
    depends: tuple[str, ...] = ()
    chains = Chains(inv)  # `latest` and a named backup need their whole chain of bases
    complete = [b for b in inv.backups if chains.usable(b)]
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
    why = prior.reason(f"{backup} of {sched.name}{asof} into service {restore.target.service} ({into})")
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
        spec_digest=prior.digest,
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


@dataclass(frozen=True)
class PriorRestore:
    """What the bucket's records say of a declared restore before it is planned (every kind of
    restore source shares this: a record that cannot be trusted, done, interrupted, changed)."""

    digest: str
    record: RestoreRecord | None
    refusal: str | None = None  # a warning: the restore is not planned

    @property
    def done(self) -> bool:
        r = self.record
        return r is not None and r.spec_digest == self.digest and not r.in_progress

    def reason(self, what: str, suffix: str = "") -> str:
        """The action's reason; ``what`` names the backup, the target service and the renames."""
        r = self.record
        if r is None:
            return f"declared restore not done yet: {what}{suffix}"
        if r.in_progress and r.error:
            return (
                f"the attempt of run {r.run_id} started {r.done_at:%Y-%m-%d %H:%M}Z failed: {r.error}; "
                f"what it wrote is removed and the restore runs again: {what}"
            )
        if r.in_progress:
            return (
                f"an attempt of run {r.run_id} started {r.done_at:%Y-%m-%d %H:%M}Z and did not finish; "
                f"what it wrote is removed and the restore runs again: {what}"
            )
        return f"declaration changed since it was done on {r.done_at:%Y-%m-%d %H:%M}Z from {r.backup}: restore {what}"


def prior_restore(restore: Restore, observed: Observed) -> PriorRestore:
    digest = restore.spec_digest()
    problem = observed.restore_problems.get(restore.name)
    if problem:
        refusal = (
            f"restore {restore.name}: its record {problem}; it is not planned again, so as not to restore twice "
            "(delete the record to run it again)"
        )
        return PriorRestore(digest, None, refusal)
    return PriorRestore(digest, observed.restores.get(restore.name))
