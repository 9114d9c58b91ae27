"""``validate`` at the ``manifest`` level: the manifest parses, and every file it lists is in the
bucket with its size — checked against one listing of the folder, not a request per file."""

from __future__ import annotations

from dataclasses import replace

from .. import layout
from ..manifest import ManifestError, check_files, parse_manifest
from ..model import Action, Outcome, OutcomeStatus, Validation, ValidationLevel, ValidationResult
from ..sidecar import Sidecar, SidecarState
from ..stores import Store
from .context import ApplyContext


def check_backup(store: Store, key: str) -> tuple[bool, str, int, int]:
    """(ok, detail, files, bytes) of the manifest check of the folder ``key``."""
    got = store.read(key + layout.MANIFEST)
    if got is None:
        return False, "the manifest .backup is missing", 0, 0
    try:
        manifest = parse_manifest(got[0])
    except ManifestError as e:
        return False, str(e), 0, 0
    stored = {o.key[len(key) :]: o.size for o in store.list(key) if o.key[len(key) :] != layout.SIDECAR}
    problems = check_files(manifest, stored)
    size = sum(stored.values())
    if problems:
        return False, "; ".join(problems), len(stored), size
    return True, f"{len(manifest.files)} files listed, all present with their sizes", len(stored), size


def run_validate(ctx: ApplyContext, action: Action) -> Outcome:
    assert action.schedule and action.backup and action.bucket and action.service
    level = ValidationLevel(action.details.get("level", "manifest"))
    bucket = ctx.config.buckets[action.bucket]
    store = ctx.conns.store(action.bucket)
    key = layout.backup_prefix(bucket, action.service, action.schedule, action.backup)
    started = ctx.clock()
    if level != ValidationLevel.MANIFEST:
        return Outcome(action.id, OutcomeStatus.FAILED, f"validation level {level.value} is not supported yet", started, ctx.clock())

    ok, detail, files, size = check_backup(store, key)
    finished = ctx.clock()
    validation = Validation(level, finished, ValidationResult.OK if ok else ValidationResult.FAILED, detail)

    got = store.read(key + layout.SIDECAR)
    if got is not None:
        try:
            sc = Sidecar.decode(got[0])
        except ValueError:
            sc = None
        if sc is not None:
            updated = sc.with_validation(validation)
            if ok and sc.state == SidecarState.IN_PROGRESS:
                # the export's apply died after ClickHouse finished: complete the record now
                updated = replace(updated, state=SidecarState.COMPLETE, num_files=files, total_size=size)
            store.replace(key + layout.SIDECAR, updated.encode(), got[1])
    facts = {"level": level.value, "result": validation.result.value, "files": files, "bytes": size}
    status = OutcomeStatus.DONE if ok else OutcomeStatus.FAILED
    return Outcome(action.id, status, detail, started, finished, facts)

