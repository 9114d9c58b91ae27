"""The ``checksums`` level: stream every file a backup holds and recompute ClickHouse's checksum
(CityHash128 v1.0.2 chained over 2048-byte blocks, ``reconciler.checksum``).

A file of an incremental backup may live (partly) in its base: ``use_base`` with ``base_size ==
size`` is wholly in the base and is checked against the base's manifest (the base's own content
is verified when the base is validated: the periodic ``checksums_every`` validation plans one for
each base of the newest incremental's chain, plan/schedules.py); with ``base_size < size`` the base holds the first
``base_size`` bytes and this backup the rest, so the base's bytes are read too and the whole file
is hashed. Files are verified in parallel, each streamed in bounded chunks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field

from ..bucket import layout
from ..clickhouse.checksum import new_hasher
from ..clickhouse.manifest import Manifest, ManifestError, ManifestFile, check_files, parse_manifest
from ..stores import Store

CHUNK = 1 << 20
PARALLELISM = 8


@dataclass
class BackupFiles:
    """A backup's manifest and stored objects, and its base (loaded on demand)."""

    folder: str
    manifest: Manifest
    stored: dict[str, int]
    base: BackupFiles | None = None
    _by_content: dict[tuple[int, str | None], ManifestFile] = field(default_factory=dict)

    def find(self, size: int, checksum: str | None) -> ManifestFile | None:
        """ClickHouse finds a base file by size and checksum, whatever its name."""
        if not self._by_content:
            self._by_content = {(f.size, f.checksum): f for f in self.manifest.files}
        return self._by_content.get((size, checksum))


class ChecksumProblem(Exception):
    pass


def load_backup(store: Store, folder: str, base_folder: Callable[[str], str | None]) -> BackupFiles:
    """The manifest and listing of ``folder``, and of its chain of bases. ``base_folder`` maps a
    backup folder to its base's folder (from the sidecar), or None."""
    got = store.read(folder + layout.MANIFEST)
    if got is None:
        raise ChecksumProblem("the manifest .backup is missing")
    try:
        manifest = parse_manifest(got[0])
    except ManifestError as e:
        raise ChecksumProblem(str(e)) from None
    stored = {o.key[len(folder) :]: o.size for o in store.list(folder)}
    files = BackupFiles(folder, manifest, stored)
    if any(f.use_base for f in manifest.files):
        base = base_folder(folder)
        if base is None:
            raise ChecksumProblem("files are held by a base backup, but the sidecar names no base")
        files.base = load_backup(store, base, base_folder)
    return files


def segments(b: BackupFiles, f: ManifestFile) -> list[tuple[str, int]]:
    """The (object key, length) pieces whose concatenation is the file's content."""
    if f.size == 0:
        return []
    tail = [(b.folder + f.stored_name, f.stored_size)] if f.stored_size else []
    if not f.use_base:
        return tail
    if b.base is None:
        raise ChecksumProblem(f"{f.name}: held by a base backup that cannot be found")
    want = (f.size, f.checksum) if f.in_base_only else (f.base_size, f.base_checksum)
    in_base = b.base.find(*want)
    if in_base is None:
        raise ChecksumProblem(f"{f.name}: the base backup holds no file of {want[0]} bytes with checksum {want[1]}")
    return segments(b.base, in_base) + tail


def verify(
    store: Store,
    backup: BackupFiles,
    progress: Callable[[int, int], None] | None = None,
    parallelism: int = PARALLELISM,
) -> tuple[list[str], int, int]:
    """(problems, files checked, bytes read). The cheap checks (listing sizes) come first."""
    problems = check_files(backup.manifest, backup.stored, limit=1000)
    if problems:
        return problems[:5] + ([f"and {len(problems) - 5} more"] if len(problems) > 5 else []), 0, 0

    # one hashing job per distinct content; files wholly in the base only need the base's manifest
    jobs: dict[tuple[tuple[str, int], ...], list[ManifestFile]] = {}
    out: list[str] = []
    for f in backup.manifest.files:
        if f.size == 0:
            continue
        try:
            segs = segments(backup, f)
        except ChecksumProblem as e:
            out.append(str(e))
            continue
        if f.in_base_only:
            continue
        jobs.setdefault(tuple(segs), []).append(f)
    total = sum(n for segs in jobs for _, n in segs)
    done = [0]
    lock = threading.Lock()

    def run(item: tuple[tuple[tuple[str, int], ...], list[ManifestFile]]) -> str | None:
        segs, files = item
        hasher = new_hasher()
        for key, length in segs:
            got = 0
            with closing(store.open(key)) as stream:
                while True:
                    chunk = stream.read(CHUNK)
                    if not chunk:
                        break
                    hasher.update(chunk)
                    got += len(chunk)
                    with lock:
                        done[0] += len(chunk)
                        if progress:
                            progress(done[0], total)
            if got != length:
                return f"{key.rsplit('/', 1)[-1]}: read {got} bytes, expected {length}"
        digest = hasher.hexdigest()
        for f in files:
            if f.checksum and digest != f.checksum:
                return f"{f.name}: checksum {digest} does not match the manifest's {f.checksum}"
        return None

    with ThreadPoolExecutor(max(1, parallelism)) as pool:
        for problem in pool.map(run, list(jobs.items())):
            if problem:
                out.append(problem)
    checked = sum(len(v) for v in jobs.values())
    return out, checked, done[0]
