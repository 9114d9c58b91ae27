"""``copy``: a complete backup of the source bucket into a copy bucket, at the same relative path,
verified as it is written (docs/plan.md, "copy"; docs/bucket-layout.md, "Copies").

Order, so that an interruption at any point is completed or redone by the next apply and a
copy is never complete while half written: the copy's sidecar first (``in_progress``, naming its
source: bucket, folder, backup, the sha256 of the source's manifest); a manifest left by an
earlier attempt removed; the files, in parallel (server-side within one provider, else streamed
with at most one part per file in memory); the verification at the copy's level; ClickHouse's
manifest LAST (an incremental's ``<base_backup>`` rewritten to name the base's copy); the sidecar
completed with its validation. The source is only read.

Verification: ``checksums`` on a streamed copy recomputes ClickHouse's checksum (CityHash128 over
2048-byte blocks) of each file over the bytes as they pass, so no second read; a file of an
incremental that holds only the tail of its content is hashed after the head's bytes, read from
the base's copy. A server-side copy is read back from the copy bucket afterwards. ``manifest``:
every file is in the copy bucket with its size. A mismatch fails the copy: its manifest is never
written, its sidecar says ``failed``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import replace
from xml.sax.saxutils import escape

from ..bucket import layout
from ..bucket.copy_record import CopySource, manifest_digest
from ..bucket.sidecar import Sidecar, SidecarState
from ..clickhouse.checksum import Hasher, new_hasher
from ..clickhouse.manifest import Manifest, ManifestError, ManifestFile, check_files, parse_manifest
from ..clickhouse.sql import destination_sql, object_url, quote_string
from ..errors import PreconditionFailed, ReconcilerError
from ..model import Bucket, CopyAction, Outcome, OutcomeStatus, Provider, Validation, ValidationLevel, ValidationResult
from ..redact import redact
from ..render import words
from ..stores import Store
from .checksums import BackupFiles, ChecksumProblem, load_backup, segments, verify
from .context import ApplyContext, operation_id
from .sidecar_io import base_folder_of

#: files copied at a time by one copy action
PARALLELISM = 8
#: bytes per read of a streamed file
CHUNK = 1 << 20
#: what is never copied: the source's own record, the manifest (written last), ClickHouse's lock
SKIPPED = (layout.SIDECAR, layout.MANIFEST, layout.CLICKHOUSE_LOCK)


class CopyFailed(Exception):
    pass


def run_copy(ctx: ApplyContext, action: CopyAction) -> Outcome:
    assert action.schedule and action.backup and action.bucket and action.service
    started = ctx.clock()
    config = ctx.config
    src_bucket, dst_bucket = config.buckets[action.source_bucket], config.buckets[action.bucket]
    src, dst = ctx.conns.store(action.source_bucket), ctx.conns.store(action.bucket)
    src_folder = layout.backup_prefix(src_bucket, action.service, action.schedule, action.backup)
    dst_folder = layout.backup_prefix(dst_bucket, action.service, action.schedule, action.backup)

    def failed(detail: str) -> Outcome:
        return Outcome(action.id, OutcomeStatus.FAILED, redact(detail), started, ctx.clock())

    got = src.read(src_folder + layout.MANIFEST)
    if got is None:
        return failed(f"{src_bucket.url(src_folder)} has no manifest: the source backup is not complete")
    raw_manifest = got[0]
    digest = manifest_digest(raw_manifest)
    try:
        manifest = parse_manifest(raw_manifest)
    except ManifestError as e:
        return failed(f"{src_bucket.url(src_folder)}: {e}")
    src_sc = _sidecar(src, src_folder)
    if src_sc is None:
        return failed(f"{src_bucket.url(src_folder)} has no readable sidecar: not a managed backup")

    source = CopySource(
        bucket=action.source_bucket,
        location=src_bucket.url(src_folder),
        backup=action.backup,
        manifest_digest=digest,
        operation_id=src_sc.operation_id,
        method=action.method,
        base_rewritten=bool(manifest.base_backup),
    )
    sidecar_key = dst_folder + layout.SIDECAR
    existing = dst.read(sidecar_key)
    etag: str | None = None
    if existing is not None:
        theirs = _decode(existing[0])
        if theirs is None or theirs.copy_of is None:
            return failed(f"{dst_bucket.url(dst_folder)} holds a folder that is not a copy; a copy never overwrites it")
        if theirs.copy_of.location != source.location or theirs.copy_of.manifest_digest != digest:
            return failed(
                f"{dst_bucket.url(dst_folder)} is taken by a copy of another source backup "
                f"({theirs.copy_of.location}, manifest {theirs.copy_of.manifest_digest}); a copy is never overwritten"
            )
        done = theirs.state == SidecarState.COMPLETE and theirs.validations and theirs.validations[-1].result == "ok"
        # a copy the plan found broken (a full refresh: a file deleted or changed there) is redone
        if done and action.state != "broken" and dst.read(dst_folder + layout.MANIFEST) is not None:
            return Outcome(action.id, OutcomeStatus.DONE, "already copied and verified", started, ctx.clock())
        etag = existing[1]
    elif any(True for _ in dst.list(dst_folder)):
        return failed(f"{dst_bucket.url(dst_folder)} holds objects without a sidecar; a copy never overwrites them")

    base_files: BackupFiles | None = None
    base_value: str | None = None
    if manifest.base_backup:
        if not action.base:
            return failed("the source manifest names a base backup, but the plan names none")
        base_folder = layout.backup_prefix(dst_bucket, action.service, action.schedule, action.base)
        try:
            base_files = load_backup(dst, base_folder, lambda f: base_folder_of(dst, f))
        except ChecksumProblem as e:
            return failed(f"the copy of its base {action.base} in bucket {action.bucket} is not usable: {e}")
        base_value = base_location(dst_bucket, base_folder, manifest.base_backup)

    sidecar = Sidecar(
        service=action.service,
        schedule=action.schedule,
        backup=action.backup,
        slot=src_sc.slot,
        kind=src_sc.kind,
        base=src_sc.base,
        scope=src_sc.scope,
        location=dst_bucket.url(dst_folder),
        operation_id=operation_id("copy", dst_bucket.url(dst_folder), action.backup, salt=ctx.run_id),
        run_id=ctx.run_id,
        started_at=started,
        chain=src_sc.chain,
        copy_of=source,
    )
    try:
        etag = (
            dst.create(sidecar_key, sidecar.encode())
            if etag is None
            else dst.replace(sidecar_key, sidecar.encode(), etag)
        )
    except PreconditionFailed:
        return failed(f"{dst_bucket.url(sidecar_key)} changed meanwhile (another apply?); re-plan")
    dst.delete(dst_folder + layout.MANIFEST)  # an earlier attempt's: not complete until rewritten

    objects = {
        o.key[len(src_folder) :]: o.size for o in src.list(src_folder) if o.key[len(src_folder) :] not in SKIPPED
    }
    total = sum(objects.values())
    try:
        copied, method = _copy_files(ctx, action, src, dst, src_folder, dst_folder, objects, manifest, base_files)
        level = action.level
        files, size = len(objects), total
        if level == ValidationLevel.CHECKSUMS and method == "server-side":
            problems, files, size = _verify_copy(ctx, action, dst, dst_folder, manifest, base_files)
            if problems:
                raise CopyFailed("; ".join(problems[:3]))
        stored = {o.key[len(dst_folder) :]: o.size for o in dst.list(dst_folder)}
        missing = check_files(manifest, stored)
        if missing:
            raise CopyFailed("after the copy: " + "; ".join(missing))
        detail = f"{len(objects)} files, {total} bytes copied {method}; " + (
            "every checksum matches the manifest"
            if level == ValidationLevel.CHECKSUMS
            else "every file there with its size"
        )
        copied_manifest = rewrite_base(raw_manifest, base_value)
        dst.write(dst_folder + layout.MANIFEST, copied_manifest)  # LAST
    except (CopyFailed, ChecksumProblem, ReconcilerError) as e:
        message = e.message if isinstance(e, ReconcilerError) else str(e)
        bad = replace(sidecar, state=SidecarState.FAILED, error=redact(message)[:2000], finished_at=ctx.clock())
        _write(dst, sidecar_key, bad, etag)
        return failed(f"copy to {dst_bucket.url(dst_folder)} failed: {message}")

    finished = ctx.clock()
    validation = Validation(level, finished, ValidationResult.OK, detail, files, size)
    done_sc = replace(
        sidecar,
        state=SidecarState.COMPLETE,
        num_files=src_sc.num_files,
        total_size=src_sc.total_size if src_sc.total_size is not None else total,
        # what the copy wrote (its manifest included): a full refresh compares the listing with it
        stored_files=len(objects) + 1,
        stored_bytes=total + len(copied_manifest),
        finished_at=finished,
        copy_of=replace(source, method=method),
        validations=(validation,),
    )
    _write(dst, sidecar_key, done_sc, etag)
    facts = {"files": len(objects), "bytes": total, "copied_bytes": copied, "method": method, "level": level.value}
    return Outcome(action.id, OutcomeStatus.DONE, detail, started, finished, facts)


def base_location(bucket: Bucket, folder: str, original: str) -> str:
    """What ``<base_backup>`` of a copied incremental says: the base's copy, in the form ClickHouse
    writes for the copy bucket's provider. S3 and GCS: ``S3('<url>')`` without a credential (a
    restore passes its own with ``use_same_s3_credentials_for_base_backup``); Azure: ClickHouse's
    own form, which holds the connection string (docs/bucket-layout.md)."""
    if bucket.provider == Provider.AZURE:
        return destination_sql(bucket, folder)
    url = object_url(bucket, folder)
    if "/')" in original or original.rstrip(")").rstrip("'").endswith("/"):
        url += "/"
    return f"S3({quote_string(url)})"


_BASE = re.compile(rb"(<base_backup>)(.*?)(</base_backup>)", re.S)


def rewrite_base(manifest: bytes, value: str | None) -> bytes:
    """The manifest with ``<base_backup>`` replaced (every other byte as it was)."""
    if value is None:
        return manifest
    text = escape(value).encode()
    return _BASE.sub(lambda m: m.group(1) + text + m.group(3), manifest, count=1)


def _copy_files(
    ctx: ApplyContext,
    action: CopyAction,
    src: Store,
    dst: Store,
    src_folder: str,
    dst_folder: str,
    objects: dict[str, int],
    manifest: Manifest,
    base_files: BackupFiles | None,
) -> tuple[int, str]:
    """Copy every object; (bytes moved through the reconciler, method used)."""
    server_side = action.method == "server-side" and dst.can_copy_from(src)
    method = "server-side" if server_side else "streamed"
    hash_it = action.level == ValidationLevel.CHECKSUMS and not server_side
    by_stored: dict[str, list[ManifestFile]] = {}
    for f in manifest.files:
        if f.stored_size and not f.in_base_only:
            by_stored.setdefault(f.stored_name, []).append(f)
    total = sum(objects.values())
    moved, files_done = [0], [0]
    lock = threading.Lock()
    began = time.monotonic()

    def progress(n: int, file_done: bool = False) -> None:
        with lock:
            moved[0] += n
            files_done[0] += file_done
            line = words.progress(method, moved[0], total, (files_done[0], len(objects)), time.monotonic() - began)
        ctx.console.action_progress(action, line)

    def one(item: tuple[str, int]) -> None:
        rel, size = item
        key, target = src_folder + rel, dst_folder + rel
        if server_side:
            dst.copy_from(src, key, target, size)
            progress(size, file_done=True)
            return
        hasher = _head_hasher(dst, base_files, by_stored.get(rel, [])) if hash_it else None
        with closing(src.open(key)) as stream:
            reader = _Passing(stream, hasher, progress)
            dst.write_from(target, reader, size)
        progress(0, file_done=True)
        if hasher is not None:
            for f in by_stored.get(rel, []):
                if f.checksum and hasher.hexdigest() != f.checksum:
                    raise CopyFailed(
                        f"{rel}: checksum {hasher.hexdigest()} of the source's bytes does not match the manifest's "
                        f"{f.checksum}; the source file is damaged, nothing is copied as good"
                    )

    with ThreadPoolExecutor(max(1, min(PARALLELISM, len(objects) or 1))) as pool:
        list(pool.map(one, sorted(objects.items(), key=lambda kv: -kv[1])))
    return (0 if server_side else moved[0]), method


def _head_hasher(dst: Store, base_files: BackupFiles | None, files: list[ManifestFile]) -> Hasher:
    """A hasher fed with the bytes of the file held by the base (its copy), for a stored tail."""
    hasher = new_hasher()
    partial = next((f for f in files if f.use_base and not f.in_base_only), None)
    if partial is None:
        return hasher
    if base_files is None:
        raise ChecksumProblem(f"{partial.name}: held partly by a base backup that has no copy")
    head = base_files.find(partial.base_size, partial.base_checksum)
    if head is None:
        raise ChecksumProblem(f"{partial.name}: the base's copy holds no file of {partial.base_size} bytes")
    for key, _ in segments(base_files, head):
        with closing(dst.open(key)) as stream:
            while chunk := stream.read(CHUNK):
                hasher.update(chunk)
    return hasher


class _Passing:
    """The source's bytes on their way to the copy: hashed and counted as they pass."""

    def __init__(self, stream: object, hasher: Hasher | None, progress: Callable[[int], None]) -> None:
        self._stream = stream
        self._hasher = hasher
        self._progress = progress

    def read(self, n: int = -1) -> bytes:
        data: bytes = self._stream.read(n)  # type: ignore[attr-defined]
        if data:
            if self._hasher is not None:
                self._hasher.update(data)
            self._progress(len(data))
        return data


def _verify_copy(
    ctx: ApplyContext, action: CopyAction, dst: Store, folder: str, manifest: Manifest, base_files: BackupFiles | None
) -> tuple[list[str], int, int]:
    """A server-side copy read back from the copy bucket, its checksums recomputed."""
    stored = {o.key[len(folder) :]: o.size for o in dst.list(folder)}
    began = time.monotonic()

    def progress(done: int, total: int) -> None:
        ctx.console.action_progress(
            action, words.progress("verifying the copy", done, total, None, time.monotonic() - began)
        )

    return verify(dst, BackupFiles(folder, manifest, stored, base=base_files), progress)


def _sidecar(store: Store, folder: str) -> Sidecar | None:
    got = store.read(folder + layout.SIDECAR)
    return _decode(got[0]) if got else None


def _decode(data: bytes) -> Sidecar | None:
    try:
        return Sidecar.decode(data)
    except ValueError:
        return None


def _write(store: Store, key: str, sidecar: Sidecar, etag: str | None) -> None:
    try:
        if etag is None:
            raise PreconditionFailed("no etag")
        store.replace(key, sidecar.encode(), etag)
    except PreconditionFailed:
        store.write(key, sidecar.encode())
