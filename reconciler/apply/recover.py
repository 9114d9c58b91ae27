"""``recover`` (docs/compliance.md, "Deleted backups"): bring back a backup hidden by delete
markers outside an apply, on a versioned bucket.

One listing of the folder's versions; the manifest's newest surviving version is read (by its
version id) for the files it lists; then the delete markers over those files, over the sidecar and,
last, over the manifest are removed — a delete marker holds no data, and only markers are ever
deleted, only of those keys, only inside the backup's folder. ClickHouse's own ``.lock`` (deleted
by ClickHouse at the end of every backup: a marker too) and anything else the manifest does not
list stay as they are. The manifest goes last so that the backup looks complete only once its
files are back; an interrupted recover is planned again by the next plan. The validation is the
plan's next action (a ``validate`` that depends on this one).
"""

from __future__ import annotations

from ..bucket import layout
from ..bucket.hidden import hidden_keys
from ..clickhouse.manifest import ManifestError, parse_manifest
from ..model import Outcome, OutcomeStatus, RecoverAction
from .context import ApplyContext
from .guard import backup_folder, check_keys


def run_recover(ctx: ApplyContext, action: RecoverAction) -> Outcome:
    assert action.schedule and action.backup and action.bucket
    started = ctx.clock()
    folder = backup_folder(ctx.config, action.schedule, action.backup, action.bucket)
    store = ctx.conns.store(action.bucket)

    def failed(detail: str) -> Outcome:
        return Outcome(action.id, OutcomeStatus.FAILED, detail, started, ctx.clock())

    versions = list(store.list_versions(folder))
    check_keys(folder, {v.key for v in versions})
    hidden = hidden_keys(versions)
    manifest_key, sidecar_key = folder + layout.MANIFEST, folder + layout.SIDECAR
    manifest = hidden.get(manifest_key)
    current = {v.key: v for v in versions if v.is_latest and not v.delete_marker}
    if manifest is not None:
        version = manifest.version
    else:  # the manifest is back already (a recover that did not finish): read it as it is
        version = current[manifest_key].version_id if manifest_key in current else None
    if version is None:
        return failed(f"no version of {action.location}{layout.MANIFEST} survives: there is nothing to recover")
    data = store.read_version(manifest_key, version)
    if data is None:
        return failed(f"the version {version} of the manifest cannot be read: there is nothing to recover")
    try:
        listed = parse_manifest(data)
    except ManifestError as e:
        return failed(f"the manifest's surviving version does not parse ({e}): not recovered")

    # the keys recover may bring back: what the manifest lists as stored here, and the sidecar
    # an empty file is listed by ClickHouse and never stored (the manifest level skips it too)
    files = {folder + f.stored_name for f in listed.files if f.stored_size and not f.in_base_only}
    files.discard(folder + layout.CLICKHOUSE_LOCK)  # never ClickHouse's own lock, whatever a manifest says
    check_keys(folder, files)
    lost = sorted(k for k in files if k not in current and (k not in hidden or hidden[k].version is None))
    order = [sorted(k for k in files if k in hidden), [sidecar_key] if sidecar_key in hidden else []]
    order.append([manifest_key] if manifest is not None else [])
    removed = 0
    for keys in order:
        markers = [(k, m) for k in keys for m in hidden[k].markers if hidden[k].version is not None]
        refused = store.delete_versions(markers)
        if refused:
            (key, _), why = next(iter(refused.items()))
            where = ctx.config.buckets[action.bucket].url(key)
            return failed(f"{len(refused)} delete markers could not be removed (e.g. {where}: {why.cause})")
        removed += len(markers)
    detail = f"removed {removed} delete markers: the manifest, the sidecar and {len(files)} files it lists are back"
    if lost:
        example = lost[0][len(folder) :]
        detail += f"; {len(lost)} listed files have no version left (e.g. {example}): the validation will say so"
    facts = {"removed_markers": removed, "files": len(files), "lost_files": len(lost)}
    return Outcome(action.id, OutcomeStatus.DONE, detail, started, ctx.clock(), facts)
