"""``prune``: delete one backup folder so that an interruption at any point is finished by the
next apply and never leaves something that looks complete but is not.

Order: mark the sidecar ``pruning``; delete ClickHouse's manifest ``.backup`` (the folder stops
looking complete); delete the rest in batches; abort unfinished multipart uploads; delete the
sidecar last.
"""

from __future__ import annotations

from dataclasses import replace

from ..bucket import layout
from ..bucket.sidecar import Sidecar, SidecarState
from ..errors import PreconditionFailed
from ..model import Action, Outcome, OutcomeStatus, Provider, PruneAction
from .context import ApplyContext
from .guard import backup_folder, check_keys
from .prune_versions import prune_versions
from .snapshot import run_snapshot_prune


def run_prune(ctx: ApplyContext, action: Action) -> Outcome:
    if action.snapshot and isinstance(action, PruneAction):
        return run_snapshot_prune(ctx, action, prune_folder)
    assert action.schedule and action.backup and action.bucket
    folder = backup_folder(ctx.config, action.schedule, action.backup, action.bucket)
    source = ctx.config.schedules[action.schedule].bucket
    if ctx.kept_check is not None and action.bucket == source:  # copies are judged in their own bucket
        why = ctx.kept_check.problem(ctx, action.schedule)
        if why:
            return Outcome(action.id, OutcomeStatus.SKIPPED, why, ctx.clock(), ctx.clock())
    return prune_folder(ctx, action, folder)


def prune_folder(ctx: ApplyContext, action: Action, folder: str) -> Outcome:
    """Delete ``folder`` (a key the guard gave) in the order above."""
    assert action.bucket
    started = ctx.clock()
    store = ctx.conns.store(action.bucket)
    if ctx.config.buckets[action.bucket].provider == Provider.S3 and store.lock_configuration().versioning:
        return prune_versions(ctx, action, folder, store, started)
    sidecar_key = folder + layout.SIDECAR

    got = store.read(sidecar_key)
    if got is not None:
        try:
            sc = Sidecar.decode(got[0])
        except ValueError:
            sc = None
        if sc is not None and sc.state != SidecarState.PRUNING:
            try:
                store.replace(sidecar_key, replace(sc, state=SidecarState.PRUNING).encode(), got[1])
            except PreconditionFailed:
                return Outcome(
                    action.id, OutcomeStatus.FAILED, "the sidecar changed since the plan; re-plan", started, ctx.clock()
                )

    objects = {o.key: o.size for o in store.list(folder)}
    keys = check_keys(folder, objects)
    manifest = folder + layout.MANIFEST
    if manifest in objects:
        store.delete(manifest)
    rest = [k for k in keys if k not in (manifest, sidecar_key)]
    store.delete_many(rest)
    store.abort_uploads(folder)
    if sidecar_key in objects or got is not None:
        store.delete(sidecar_key)
    freed = sum(objects.values())
    facts = {"freed_bytes": freed, "freed_objects": len(objects)}
    return Outcome(
        action.id, OutcomeStatus.DONE, f"deleted {len(objects)} objects, {freed} bytes", started, ctx.clock(), facts
    )
