"""``validate``: prove a backup restorable, at the level the plan asks for.

- ``manifest``: the manifest parses, and every file it lists is in the bucket with its size —
  checked against one listing of the folder, not a request per file;
- ``checksums``: the same, then every byte is read and ClickHouse's checksum recomputed;
- ``drill``: restored into scratch databases, checked and counted (drill.py).
Each result (level, time, files, bytes, outcome, first error) is recorded in the sidecar.
"""

from __future__ import annotations

import time

from ..bucket import layout
from ..clickhouse.manifest import ManifestError, check_files, parse_manifest
from ..model import Outcome, OutcomeStatus, ValidateAction, Validation, ValidationLevel, ValidationResult
from ..render import words
from ..stores import Store
from .adopt import run_adopt
from .checksums import ChecksumProblem, load_backup, verify
from .context import ApplyContext
from .drill import run_drill
from .sidecar_io import base_folder_of, record_validation


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


def check_checksums(ctx: ApplyContext, action: ValidateAction, store: Store, key: str) -> tuple[bool, str, int, int]:
    try:
        backup = load_backup(store, key, lambda f: base_folder_of(store, f))
    except ChecksumProblem as e:
        return False, str(e), 0, 0

    began = time.monotonic()

    def progress(done: int, total: int) -> None:
        ctx.console.action_progress(action, words.progress("checksums", done, total, None, time.monotonic() - began))

    problems, files, size = verify(store, backup, progress)
    if problems:
        return False, "; ".join(problems[:5]), files, size
    return True, f"{files} files, {size} bytes: every checksum matches the manifest", files, size


def run_validate(ctx: ApplyContext, action: ValidateAction) -> Outcome:
    assert (action.schedule or action.snapshot) and action.backup and action.bucket and action.service
    level = action.level
    if level == ValidationLevel.DRILL:
        return run_drill(ctx, action)
    if action.adopt is not None:
        return run_adopt(ctx, action)
    bucket = ctx.config.buckets[action.bucket]
    store = ctx.conns.store(action.bucket)
    key = layout.backup_prefix(bucket, action.service, action.schedule or layout.SNAPSHOTS, action.backup)
    started = ctx.clock()
    if level == ValidationLevel.CHECKSUMS:
        ok, detail, files, size = check_checksums(ctx, action, store, key)
    else:
        ok, detail, files, size = check_backup(store, key)
    finished = ctx.clock()
    result = ValidationResult.OK if ok else ValidationResult.FAILED
    record_validation(store, key, Validation(level, finished, result, detail, files, size), files, size)
    facts = {"level": level.value, "result": result.value, "files": files, "bytes": size}
    return Outcome(action.id, OutcomeStatus.DONE if ok else OutcomeStatus.FAILED, detail, started, finished, facts)
