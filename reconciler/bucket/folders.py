"""Read one schedule's backup folders: one listing of the prefix and the index, then the
sidecars the index does not hold at the ETag the listing shows."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..redact import redact
from ..stores.base import Store
from . import layout
from .index import IndexEntry, ScheduleIndex
from .records import MAX_SMALL_OBJECT
from .sidecar import Sidecar

#: sidecars are read this many at a time
READ_PARALLELISM = 16
#: an index larger than this is not read (a schedule of 100,000 backups is about 100 MB)
MAX_INDEX = 256 * 1024 * 1024


@dataclass(slots=True)
class Folder:
    """What the listing and the sidecar say about one backup folder."""

    name: str
    has_manifest: bool = False
    num_files: int = 0
    total_size: int = 0
    sidecar_etag: str | None = None
    sidecar_size: int = 0
    sidecar: Sidecar | None = None
    sidecar_problem: str | None = None
    files: dict[str, int] = field(default_factory=dict)


def list_folders(store: Store, prefix: str, keep_files: bool = False) -> dict[str, Folder]:
    """One recursive listing of ``prefix`` grouped by backup folder."""
    folders: dict[str, Folder] = {}
    for obj in store.list(prefix):
        rel = obj.key[len(prefix) :]
        name, sep, inner = rel.partition("/")
        if not sep or not name:
            continue  # an object directly under the schedule prefix: not a backup
        f = folders.setdefault(name, Folder(name))
        if inner == layout.SIDECAR:
            f.sidecar_etag, f.sidecar_size = obj.etag, obj.size
            continue
        if inner == layout.MANIFEST:
            f.has_manifest = True
        f.num_files += 1
        f.total_size += obj.size
        if keep_files:
            f.files[inner] = obj.size
    return folders


@dataclass
class ScheduleRead:
    folders: dict[str, Folder]
    index: ScheduleIndex | None  # as read (None: missing or unreadable)
    index_problem: str | None
    reread: set[str]  # folders whose sidecar was read from the bucket


def _check(sc: Sidecar, expect: tuple[str, str], name: str) -> Sidecar:
    if (sc.service, sc.schedule, sc.backup) != (*expect, name):
        raise ValueError(f"sidecar names {sc.service}/{sc.schedule}/{sc.backup}, not the folder it is in")
    return sc


def _from_entry(f: Folder, entry: IndexEntry, expect: tuple[str, str]) -> None:
    f.sidecar_problem = entry.sidecar_problem
    if entry.sidecar is not None:
        try:
            f.sidecar = _check(Sidecar.from_json(entry.sidecar), expect, f.name)
        except ValueError as e:
            f.sidecar, f.sidecar_problem = None, redact(str(e))[:300]


def entry_of(f: Folder) -> IndexEntry | None:
    if f.sidecar_etag is None:
        return None
    return IndexEntry(f.sidecar_etag, f.sidecar.to_json() if f.sidecar else None, f.sidecar_problem)


def _read_sidecar(store: Store, prefix: str, f: Folder, expect: tuple[str, str]) -> None:
    if f.sidecar_size > MAX_SMALL_OBJECT:
        f.sidecar_problem = f"sidecar is {f.sidecar_size} bytes, not a reconciler record"
        return
    got = store.read(prefix + f.name + "/" + layout.SIDECAR)
    if got is None:  # deleted since the listing
        f.sidecar_etag = None
        return
    data, f.sidecar_etag = got
    try:
        f.sidecar = _check(Sidecar.decode(data), expect, f.name)
    except ValueError as e:
        f.sidecar_problem = redact(str(e))[:300]


def read_index(store: Store, key: str, expect: tuple[str, str]) -> tuple[ScheduleIndex | None, str | None]:
    got = store.read(key)
    if got is None:
        return None, None
    if len(got[0]) > MAX_INDEX:
        return None, f"index is {len(got[0])} bytes"
    try:
        return ScheduleIndex.decode(got[0], *expect), None
    except ValueError as e:
        return None, redact(str(e))[:200]


def read_schedule(store: Store, prefix: str, index_key: str, expect: tuple[str, str]) -> ScheduleRead:
    folders = list_folders(store, prefix)
    index, problem = read_index(store, index_key, expect)
    todo: list[Folder] = []
    for f in folders.values():
        if f.sidecar_etag is None:
            continue  # no sidecar: unmanaged
        entry = index.entries.get(f.name) if index else None
        if entry is not None and entry.sidecar_etag == f.sidecar_etag:
            _from_entry(f, entry, expect)
        else:
            todo.append(f)
    if len(todo) == 1:
        _read_sidecar(store, prefix, todo[0], expect)
    elif todo:
        with ThreadPoolExecutor(min(READ_PARALLELISM, len(todo))) as pool:
            list(pool.map(lambda f: _read_sidecar(store, prefix, f, expect), todo))
    return ScheduleRead(dict(sorted(folders.items())), index, problem, {f.name for f in todo})
