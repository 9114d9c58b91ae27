"""``prune`` on a versioned bucket (docs/compliance.md): a plain delete there only adds a delete
marker and keeps the bytes, so the prune deletes every version and delete marker under the
folder — the manifest's first (the backup stops looking complete), the other files next, the
sidecar last. Nothing is written (a new sidecar version would get a lock of its own). A deletion
the store refuses under an object lock (``AccessDenied``) makes the outcome **held**: neither done
nor failed; what was refused stays, and the next plan prunes it once the lock has ended. A folder
planned as unmanaged whose sidecar survives under a delete marker is not pruned: it is a deleted
backup (observe/deleted.py)."""

from __future__ import annotations

from datetime import datetime

from ..bucket import layout
from ..bucket.hidden import hidden_keys
from ..model import Action, Outcome, OutcomeStatus, iso
from ..stores.base import ObjectVersion, Store, VersionRefusal
from .context import ApplyContext
from .guard import check_keys


def prune_versions(ctx: ApplyContext, action: Action, folder: str, store: Store, started: datetime) -> Outcome:
    versions = list(store.list_versions(folder))
    check_keys(folder, {v.key for v in versions})
    manifest, sidecar = folder + layout.MANIFEST, folder + layout.SIDECAR
    ours = hidden_keys(versions).get(sidecar)
    if getattr(action, "state", None) == "unmanaged" and ours is not None and ours.version is not None:
        # planned as unmanaged (prune_unmanaged) from a listing that showed no sidecar: a sidecar of
        # ours survives under a delete marker, so this is a deleted backup that can come back
        detail = (
            "not pruned: the folder's sidecar was deleted outside an apply and its version survives; it is a "
            "deleted backup, not an unmanaged folder (run drift: a full refresh reports it)"
        )
        return Outcome(action.id, OutcomeStatus.SKIPPED, detail, started, ctx.clock())
    first = [v for v in versions if v.key == manifest]
    last = [v for v in versions if v.key == sidecar]
    rest = [v for v in versions if v.key not in (manifest, sidecar)]
    refused: dict[tuple[str, str], VersionRefusal] = {}
    deleted: list[ObjectVersion] = []
    for group in (first, rest, last):
        if refused:
            break  # a refused manifest keeps the backup whole; refused files keep their sidecar
        got = store.delete_versions([(v.key, v.version_id) for v in group])
        refused.update(got)
        deleted += [v for v in group if (v.key, v.version_id) not in got]
        if group is rest:
            store.abort_uploads(folder)
    freed = sum(v.size for v in deleted if not v.delete_marker)
    facts = {"freed_bytes": freed, "freed_objects": len(deleted), "kept_versions": len(refused)}
    if not refused:
        detail = f"deleted {len(deleted)} object versions and delete markers, {freed} bytes"
        return Outcome(action.id, OutcomeStatus.DONE, detail, started, ctx.clock(), facts)
    sample = next(iter(refused.items()))
    where = ctx.config.buckets[action.bucket or ""].url(sample[0][0])
    if all(r.locked for r in refused.values()):
        until = _lock_end(store, list(refused)[:3])
        when = f" until {iso(until)}" if until else ""
        detail = (
            f"held: the object lock keeps {len(refused)} object versions{when} "
            f"(e.g. {where}: {sample[1].cause}); deleted {len(deleted)}, {freed} bytes"
        )
        return Outcome(
            action.id,
            OutcomeStatus.HELD,
            detail,
            started,
            ctx.clock(),
            {**facts, "held_until": iso(until) if until else None},
        )
    detail = f"{len(refused)} object versions could not be deleted ({where}: {sample[1].cause})"
    return Outcome(action.id, OutcomeStatus.FAILED, detail, started, ctx.clock(), facts)


def _lock_end(store: Store, versions: list[tuple[str, str]]) -> datetime | None:
    ends = []
    for key, vid in versions:
        try:
            r = store.head_retention(key, vid)
        except Exception:  # the date is a courtesy: the refusal is what counts
            continue
        if r is not None and r.retain_until is not None:
            ends.append(r.retain_until)
    return max(ends) if ends else None
