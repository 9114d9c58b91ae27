"""Copy decisions (docs/plan.md, "copy"): per schedule and copy bucket, which backups are copied,
which copies are pruned, validated or drilled, and the ``missing_copy`` drift. Pure.

- What a copy bucket should hold: the complete, unbroken backups of the schedule (validated,
  or with a validation in this plan, when the schedule validates), and this plan's export,
  that the copy's retention (default: the schedule's) keeps among them and the copies already
  there; with every base of a kept incremental (retention's own floor), copied first.
- A copy is never overwritten: a folder of that name in the copy bucket that another source
  made (its sidecar names another source location or operation), or that holds no sidecar, is
  ``missing_copy`` drift that says so, and nothing is planned for it. An abandoned, failed or
  broken copy of the same source is copied again.
- A copy waits for the export and the validation of its backup in the same plan, and for the
  copy of its base; the source's prune of a backup being copied waits for the copy.
- ``checksums_every`` and ``drill.every`` also cover the newest copy in each copy bucket (the
  validation runs in the copy bucket and is recorded in the copy's sidecar).
- A complete copy found broken (a full refresh, or a failed validation of the copy) is
  ``broken_backup`` drift of the copy bucket, and is copied again while its source is there.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from ..bucket import layout
from ..model import (
    Action,
    BackupState,
    Bucket,
    CopyAction,
    CopyTarget,
    Drift,
    DriftType,
    ObservedBackup,
    Provider,
    PruneAction,
    Schedule,
    ScheduleInventory,
    ValidateAction,
    ValidationLevel,
)
from ..model.slots import latest_slot, slot_name
from ..render.words import ago, duration
from .chains import Chains, usable
from .ids import copy_id, in_copy, prune_id, validate_id
from .retention import Candidate, retain
from .schedules import ScheduleDecision, due


@dataclass
class CopyDecision:
    actions: list[Action] = field(default_factory=list)
    drift: list[Drift] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def copy_method(source: Bucket, target: Bucket) -> str:
    """``server-side`` where the provider copies within itself (the same S3 endpoint and access
    key: CopyObject/UploadPartCopy; GCS: objects.rewrite on the same endpoint; Azure: copy from
    URL within one storage account, from a source whose credentials can sign a read SAS), else
    ``streamed`` through the reconciler. The executor falls back to streaming when its stores
    disagree, and records the method it used."""
    if source.provider != target.provider:
        return "streamed"
    if source.provider == Provider.S3:
        same = (source.endpoint or "") == (target.endpoint or "") and (
            source.credentials.access_key_id == target.credentials.access_key_id
        )
        return "server-side" if same else "streamed"
    if source.provider == Provider.AZURE:
        (src_url, signs), (dst_url, _) = azure_account(source), azure_account(target)
        return "server-side" if signs and src_url == dst_url else "streamed"
    return "server-side" if (source.gcs_json_endpoint or "") == (target.gcs_json_endpoint or "") else "streamed"


def azure_account(bucket: Bucket) -> tuple[str, bool]:
    """(the storage account's blob URL, whether its credentials can sign a SAS), from the config
    alone, as the Azure SDK reads a connection string."""
    c = bucket.credentials
    if c.connection_string:
        fields = {}
        for part in c.connection_string.split(";"):
            k, sep, v = part.partition("=")
            if sep:
                fields[k.strip().lower()] = v.strip()
        url = fields.get("blobendpoint") or (
            f"{fields.get('defaultendpointsprotocol', 'https')}://{fields.get('accountname', '')}"
            f".blob.{fields.get('endpointsuffix', 'core.windows.net')}"
        )
        return url.rstrip("/").lower(), bool(fields.get("accountkey") or fields.get("sharedaccesssignature"))
    url = bucket.endpoint or f"https://{c.account_name}.blob.core.windows.net"
    return url.rstrip("/").lower(), bool(c.account_key)


def same_source(copy: ObservedBackup, source: ObservedBackup, source_location: str) -> bool:
    """Is this copy a copy of that source backup (by the source's folder and operation id)?"""
    if copy.source_location != source_location:
        return False
    return copy.source_operation_id is None or copy.source_operation_id == source.operation_id


def decide_copies(
    schedule: Schedule,
    buckets: dict[str, Bucket],
    inventory: ScheduleInventory,
    copies: dict[str, ScheduleInventory],
    decision: ScheduleDecision,
    now: datetime,
    drill_reachable: bool = True,
) -> CopyDecision:
    out = CopyDecision()
    for target in schedule.copies:
        inv = copies.get(target.bucket)
        if inv is None:
            continue  # the copy bucket cannot be read: missing_bucket drift says so
        _decide_one(schedule, target, buckets, inventory, inv, decision, now, drill_reachable, out)
    _hold_source_prunes(decision, out)
    return out


def _decide_one(
    schedule: Schedule,
    target: CopyTarget,
    buckets: dict[str, Bucket],
    inventory: ScheduleInventory,
    copy_inv: ScheduleInventory,
    decision: ScheduleDecision,
    now: datetime,
    drill_reachable: bool,
    out: CopyDecision,
) -> None:
    source_bucket, copy_bucket = buckets[schedule.bucket], buckets[target.bucket]
    method = copy_method(source_bucket, copy_bucket)
    latest = latest_slot(schedule, now)
    validates = {
        a.backup: a.id for a in decision.actions if isinstance(a, ValidateAction) and a.level != ValidationLevel.DRILL
    }
    export = decision.export

    def src_location(name: str) -> str:
        return source_bucket.url(layout.backup_prefix(source_bucket, schedule.service, schedule.name, name))

    def copy_location(name: str) -> str:
        return copy_bucket.url(layout.backup_prefix(copy_bucket, schedule.service, schedule.name, name))

    # what may be copied: complete, unbroken, validated (or being validated) source backups
    sources: dict[str, ObservedBackup] = {}
    source_chains = Chains(inventory)  # an incremental on a broken chain is not worth copying
    for b in inventory.backups:
        if not source_chains.usable(b) or b.slot is None:
            continue
        if schedule.validate.after_export is not None and not b.validated and b.name not in validates:
            continue
        sources[b.name] = b
    by_copy = {b.name: b for b in copy_inv.backups}

    def good(name: str) -> bool:
        c = by_copy.get(name)
        src = sources.get(name)
        if c is None or not usable(c):  # its own state: a broken base copy is copied again itself
            return False
        return src is None or same_source(c, src, src_location(name))

    # retention over the copies there and what could be copied (this plan's export included)
    candidates: dict[str, Candidate] = {}
    for c in copy_inv.backups:
        if c.state == BackupState.COMPLETE and c.kind is not None and c.slot is not None:
            candidates[c.name] = Candidate(c.name, c.slot, c.kind, c.base, c.validated and not c.broken)
    for name, b in sources.items():
        if name not in candidates or not good(name):
            candidates[name] = Candidate(name, b.slot, b.kind or "full", b.base, False)  # type: ignore[arg-type]
    if export is not None and export.backup:
        candidates[export.backup] = Candidate(export.backup, latest, export.kind, export.base, False, complete=False)
    kept, pruned = retain(schedule.copy_retention(target), list(candidates.values()), now)

    planned: dict[str, CopyAction] = {}
    blocked: set[str] = set()
    order = sorted(kept, key=lambda n: (candidates[n].time, n) if n in candidates else (now, n))
    for name in order:
        if good(name) or name not in candidates:
            continue
        is_export = export is not None and export.backup == name
        src = sources.get(name)
        if src is None and not is_export:
            continue  # only in the copy bucket (the source pruned it): kept as it is
        existing = by_copy.get(name)
        taken = _taken(existing, src, src_location(name))
        if taken:
            blocked.add(name)
            out.drift.append(_drift(schedule, target, name, taken))
            continue
        if existing is not None and existing.state == BackupState.RUNNING:
            continue  # another apply is writing it
        kind = export.kind if is_export and export else ((src.kind if src else None) or "full")
        base = export.base if is_export and export else (src.base if src else None)
        depends: list[str] = []
        if is_export and export is not None:
            depends.append(export.id)
        if name in validates:
            depends.append(validates[name])
        if base:
            if base in planned:
                depends.append(planned[base].id)
            elif base in blocked or not good(base):
                blocked.add(name)
                out.warnings.append(
                    f"schedule {schedule.name}: {name} is not copied to bucket {target.bucket}: "
                    f"its base {base} has no copy there and none can be made"
                )
                continue
        state = "missing" if existing is None else ("broken" if existing.broken else existing.state.value)
        why = _reason(name, target, state, is_export, method)
        if src is not None and src.slot is not None and src.slot < latest and state == "missing":
            why += f" (its slot passed {ago(src.slot, now)})"
        action = CopyAction(
            id=copy_id(schedule.service, schedule.name, name, target.bucket),
            service=schedule.service,
            schedule=schedule.name,
            bucket=target.bucket,
            backup=name,
            source_bucket=schedule.bucket,
            source_location=src_location(name),
            location=copy_location(name),
            kind=kind,
            base=base,
            chain=tuple(inventory.chain_of(base)),
            level=target.validate,
            method=method,
            state=state,
            size=src.total_size if src else 0,
            reason=why,
            depends_on=tuple(depends),
        )
        planned[name] = action
        out.actions.append(action)

    # missing_copy: a backup whose slot has passed without its copy (planned now or not); a
    # complete copy that is broken is broken_backup drift instead (below)
    for name in sorted(kept):
        src = sources.get(name)
        if src is None or src.slot is None or src.slot >= latest or good(name) or name in blocked:
            continue
        there = by_copy.get(name)
        if there is not None and (there.manifest_lost or (there.state == BackupState.COMPLETE and there.broken)):
            continue  # broken_backup drift (below)
        what = (
            "no copy there yet"
            if there is None
            else f"its copy there is {'broken' if there.broken else there.state.value}"
        )
        fix = "; this plan copies it" if name in planned else ""
        out.drift.append(_drift(schedule, target, name, f"slot {slot_name(src.slot)} has passed and {what}{fix}"))

    _broken_copies(schedule, target, copy_inv, sources, planned, out)
    _prune_copies(schedule, target, copy_bucket, copy_inv, pruned, planned, now, out)
    slots = {c.name: c.slot for c in copy_inv.backups if c.slot is not None}
    slots.update({name: b.slot for name, b in sources.items() if b.slot is not None})
    if export is not None and export.backup:
        slots[export.backup] = latest
    _validate_copies(schedule, target, copy_bucket, copy_inv, planned, set(pruned), slots, now, drill_reachable, out)


def _broken_copies(
    schedule: Schedule,
    target: CopyTarget,
    copy_inv: ScheduleInventory,
    sources: dict[str, ObservedBackup],
    planned: dict[str, CopyAction],
    out: CopyDecision,
) -> None:
    """A complete copy found broken (a full refresh's listing differs from what the copy wrote, or
    its last validation failed), or one whose manifest was deleted since, is ``broken_backup``
    drift of the copy bucket, as in a source bucket; the plan copies it again while its source is
    there."""
    for c in copy_inv.backups:
        if c.kind is None or not (c.manifest_lost or (c.state == BackupState.COMPLETE and c.broken)):
            continue
        last = c.last_validation()
        what = (
            (c.error if c.manifest_lost else None) or c.mismatch or f"failed validation: {last.detail if last else ''}"
        )
        if c.name in planned:
            fix = "; this plan copies it again"
        elif c.name not in sources:
            fix = "; its source backup is not there (or not usable) to copy it again"
        else:
            fix = ""
        out.drift.append(
            Drift(
                DriftType.BROKEN_BACKUP,
                f"{c.name} in copy bucket {target.bucket}: {what}{fix}",
                schedule=schedule.name,
                service=schedule.service,
                bucket=target.bucket,
                backup=c.name,
            )
        )


def _taken(existing: ObservedBackup | None, src: ObservedBackup | None, location: str) -> str | None:
    """Why the copy's folder cannot be written: another source's, or unmanaged. None: free or ours."""
    if existing is None:
        return None
    if existing.state == BackupState.UNMANAGED:
        return (
            f"the folder {existing.name} in the copy bucket has no reconciler sidecar (or one this reconciler "
            "cannot read); a copy is never written over it"
        )
    if existing.source_location is None:
        return (
            f"the folder {existing.name} in the copy bucket is not a copy (its sidecar names no source); "
            "never overwritten"
        )
    if src is not None and not same_source(existing, src, location):
        return (
            f"the name {existing.name} in the copy bucket is taken by a copy of another source backup "
            f"({existing.source_location}); a copy is never overwritten"
        )
    return None


def _drift(schedule: Schedule, target: CopyTarget, name: str, detail: str) -> Drift:
    return Drift(
        DriftType.MISSING_COPY,
        f"{name} is not in copy bucket {target.bucket}: {detail}",
        schedule=schedule.name,
        service=schedule.service,
        bucket=target.bucket,
        backup=name,
    )


def _reason(name: str, target: CopyTarget, state: str, is_export: bool, method: str) -> str:
    how = "server-side" if method == "server-side" else "streamed"
    verify = f"verified at {target.validate.value} level"
    if is_export:
        return (
            f"copy the new backup {name} into bucket {target.bucket} after its export and validation ({how}, {verify})"
        )
    if state == "missing":
        return f"{name} has no copy in bucket {target.bucket} ({how}, {verify})"
    return f"the copy of {name} in bucket {target.bucket} is {state}: copy it again ({how}, {verify})"


def _prune_copies(
    schedule: Schedule,
    target: CopyTarget,
    copy_bucket: Bucket,
    copy_inv: ScheduleInventory,
    pruned: dict[str, str],
    planned: dict[str, CopyAction],
    now: datetime,
    out: CopyDecision,
) -> None:
    """Copies the copy's retention no longer keeps, and failed/abandoned copies older than
    cleanup_after; all of them after this plan's copies into that bucket."""
    reasons: dict[str, str] = {}
    for c in copy_inv.backups:
        if c.state == BackupState.COMPLETE and c.name in pruned and c.name not in planned:
            reasons[c.name] = pruned[c.name].replace("not kept", "copy not kept", 1)
        elif c.state == BackupState.PRUNING:
            reasons[c.name] = "an earlier prune of the copy was interrupted; finish it"
        elif c.state in (BackupState.FAILED, BackupState.ABANDONED) and c.name not in planned:
            since = c.slot or (min(c.started_at, now) if c.started_at else None)
            if since is not None and now - since >= schedule.cleanup_after:
                reasons[c.name] = f"{c.state.value} copy older than cleanup_after={duration(schedule.cleanup_after)}"
    depends = tuple(a.id for a in planned.values())
    for name in sorted(reasons):
        folder = copy_inv.by_name[name]
        out.actions.append(
            PruneAction(
                id=in_copy(prune_id(schedule.service, schedule.name, name), target.bucket),
                service=schedule.service,
                schedule=schedule.name,
                bucket=target.bucket,
                backup=name,
                location=copy_bucket.url(layout.backup_prefix(copy_bucket, schedule.service, schedule.name, name)),
                state=folder.state.value,
                size=folder.total_size,
                reason=reasons[name],
                depends_on=depends,
            )
        )


def _validate_copies(
    schedule: Schedule,
    target: CopyTarget,
    copy_bucket: Bucket,
    copy_inv: ScheduleInventory,
    planned: dict[str, CopyAction],
    pruned: set[str],
    slots: dict[str, datetime],
    now: datetime,
    drill_reachable: bool,
    out: CopyDecision,
) -> None:
    """``checksums_every`` and ``drill.every`` cover the newest copy of the bucket too: when no copy
    there passed the level within ``every``, the newest complete copy (or the newest this plan
    makes, after its copy) is validated in the copy bucket and the result recorded in its sidecar.
    A copy this plan verifies at checksums level needs no second read."""
    chains = Chains(copy_inv)
    complete = [b for b in copy_inv.backups if chains.usable(b) and b.slot is not None and b.name not in pruned]
    names = {b.name for b in complete} | set(planned)
    newest = max(names, key=lambda n: (slots.get(n, now), n), default=None)
    if newest is None:
        return
    copying = planned.get(newest)
    depends = (copying.id,) if copying else ()

    def action(level: ValidationLevel, why: str) -> ValidateAction:
        return ValidateAction(
            id=in_copy(validate_id(schedule.service, schedule.name, newest), target.bucket),
            service=schedule.service,
            schedule=schedule.name,
            bucket=target.bucket,
            backup=newest,
            level=level,
            location=copy_bucket.url(layout.backup_prefix(copy_bucket, schedule.service, schedule.name, newest)),
            reason=f"{why} in copy bucket {target.bucket}: {level.value} level",
            depends_on=depends,
        )

    every = schedule.validate.checksums_every
    checksums = None
    if (
        every is not None
        and due(every, complete, ValidationLevel.CHECKSUMS, now)
        and not (copying and target.validate == ValidationLevel.CHECKSUMS)
    ):
        checksums = action(ValidationLevel.CHECKSUMS, f"checksums are due (checksums_every={duration(every)})")
        out.actions.append(checksums)
    drill = schedule.validate.drill
    if drill is None or not due(drill.every, complete, ValidationLevel.DRILL, now):
        return
    if not drill_reachable:
        out.warnings.append(
            f"schedule {schedule.name}: a drill of the copy in bucket {target.bucket} is due but service "
            f"{drill.service} cannot be reached"
        )
        return
    last = [min(t, now) for b in complete if (t := b.last_ok(ValidationLevel.DRILL)) is not None]
    since = f"the last passed {ago(max(last), now)}" if last else "none has passed yet"
    a = action(
        ValidationLevel.DRILL, f"a restore drill of the copy is due (drill.every={duration(drill.every)}, {since})"
    )
    deps = (checksums.id,) if checksums else depends
    out.actions.append(replace(a, id=a.id + "/drill", drill_service=drill.service, depends_on=deps))


def _hold_source_prunes(decision: ScheduleDecision, out: CopyDecision) -> None:
    """A source backup this plan copies (or whose copy needs it as a base) is pruned only after."""
    readers: dict[str, list[str]] = {}
    for a in out.actions:
        if isinstance(a, CopyAction):
            for name in (a.backup, *a.chain):
                if name:
                    readers.setdefault(name, []).append(a.id)
    if not readers:
        return
    for i, a in enumerate(decision.actions):
        if isinstance(a, PruneAction) and a.backup in readers:
            decision.actions[i] = replace(a, depends_on=(*a.depends_on, *readers[a.backup]))
