"""Adopting an unmanaged folder (``adopt_unmanaged``): a ``validate`` action at level ``manifest``
that, when the manifest validates, writes the folder's sidecar with what the plan read from the
manifest (kind, base, slot, scope). The sidecar is created only if absent: a folder that gained a
sidecar since the plan is left alone. A manifest that fails leaves the folder unmanaged."""

from __future__ import annotations

from ..bucket import layout
from ..bucket.sidecar import Sidecar, SidecarState
from ..clickhouse.manifest import ManifestError, check_files, parse_manifest
from ..clickhouse.manifest_facts import facts_of
from ..errors import PreconditionFailed
from ..model import (
    Outcome,
    OutcomeStatus,
    Scope,
    ValidateAction,
    Validation,
    ValidationLevel,
    ValidationResult,
    parse_iso,
)
from .context import ApplyContext
from .sidecar_io import read_sidecar


def run_adopt(ctx: ApplyContext, action: ValidateAction) -> Outcome:
    assert action.schedule and action.backup and action.bucket and action.service and action.adopt is not None
    bucket = ctx.config.buckets[action.bucket]
    store = ctx.conns.store(action.bucket)
    schedule_path = layout.schedule_prefix(bucket, action.service, action.schedule)
    key = layout.backup_prefix(bucket, action.service, action.schedule, action.backup)
    started = ctx.clock()

    def failed(detail: str) -> Outcome:
        return Outcome(action.id, OutcomeStatus.FAILED, f"not adopted: {detail}", started, ctx.clock())

    got = store.read(key + layout.MANIFEST)
    if got is None:
        return failed("the manifest .backup is missing")
    try:
        manifest = parse_manifest(got[0])
    except ManifestError as e:
        return failed(str(e))
    facts = facts_of(manifest, schedule_path)
    planned = action.adopt
    if (facts.kind, facts.base) != (planned.get("kind"), planned.get("base")):
        return failed("the manifest changed since the plan; re-plan")
    stored = {o.key[len(key) :]: o.size for o in store.list(key) if o.key[len(key) :] != layout.SIDECAR}
    problems = check_files(manifest, stored)
    size = sum(stored.values())
    finished = ctx.clock()
    if problems:
        return failed("; ".join(problems))
    detail = f"{len(manifest.files)} files listed, all present with their sizes"
    chain: tuple[str, ...] = ()
    if facts.base:
        base = read_sidecar(store, schedule_path + facts.base + "/")
        chain = (facts.base, *(base.chain if base else ()))
    sidecar = Sidecar(
        service=action.service,
        schedule=action.schedule,
        backup=action.backup,
        slot=parse_iso(str(planned["slot"])),
        kind=facts.kind,
        base=facts.base,
        chain=chain,
        scope=Scope.from_json(planned.get("scope") or {}),
        location=bucket.url(key),
        operation_id=f"adopted-{manifest.uuid or action.backup}"[:200],
        state=SidecarState.COMPLETE,
        num_files=len(stored),
        total_size=size,
        started_at=facts.timestamp,
        finished_at=facts.timestamp,
        run_id=ctx.run_id,
        validations=(Validation(ValidationLevel.MANIFEST, finished, ValidationResult.OK, detail, len(stored), size),),
    )
    try:
        store.create(key + layout.SIDECAR, sidecar.encode())
    except PreconditionFailed:
        return failed("the folder gained a sidecar since the plan; re-plan")
    facts_out = {"level": "manifest", "result": "ok", "files": len(stored), "bytes": size, "adopted": True}
    return Outcome(
        action.id, OutcomeStatus.DONE, f"adopted: {detail}; sidecar written", started, ctx.clock(), facts_out
    )
