"""Read one schedule's backup folders, by folder and not by file (docs/bucket-layout.md,
"The index"; docs/commands.md, "Refresh").

- fast (``Refresh.FAST``): one delimiter listing of the schedule's folder names and the index;
  a folder the index knows as settled is taken from it; any other folder (new, running, being
  pruned, failed without a final sidecar, or named in ``recheck``) costs one listing of its top
  level and a read of its sidecar (none when the index holds the sidecar at that ETag);
- full (``Refresh.FULL``): one recursive listing of the schedule's prefix and the index; a
  sidecar is taken from the index only at the ETag the listing shows, and each folder's files and
  bytes are counted, to be compared with what its sidecar recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from ..errors import ReconcilerError
from ..model import Refresh, iso, parse_iso
from ..redact import redact
from ..stores.base import ObjectInfo, Store
from . import layout
from .index import UNMANAGED, IndexEntry, ScheduleIndex
from .records import MAX_SMALL_OBJECT
from .sidecar import Sidecar

#: folders are read this many at a time
READ_PARALLELISM = 16
#: an index larger than this is not read (a schedule of 100,000 backups is about 100 MB)
MAX_INDEX = 256 * 1024 * 1024


@dataclass(slots=True)
class Folder:
    """What the bucket (or the index) says about one backup folder."""

    name: str
    has_manifest: bool = False
    #: files and bytes in the folder besides the sidecar: counted by a full refresh only
    listed_files: int | None = None
    listed_bytes: int | None = None
    sidecar_etag: str | None = None
    sidecar_size: int = 0
    sidecar: Sidecar | None = None
    sidecar_problem: str | None = None
    #: the facts came from the index (a fast refresh of a settled folder), not from the bucket
    from_index: bool = False
    #: when the Object Lock of its manifest and sidecar ends, as the index recorded it at this
    #: sidecar's ETag (None: not known)
    locked_until: datetime | None = None


def list_folders(store: Store, prefix: str) -> dict[str, Folder]:
    """One recursive listing of ``prefix`` grouped by backup folder, files and bytes counted."""
    folders: dict[str, Folder] = {}
    for obj in store.list(prefix):
        rel = obj.key[len(prefix) :]
        name, sep, inner = rel.partition("/")
        if not sep or not name:
            continue  # an object directly under the schedule prefix: not a backup
        f = folders.get(name)
        if f is None:
            f = folders[name] = Folder(name, listed_files=0, listed_bytes=0)
        if inner == layout.SIDECAR:
            f.sidecar_etag, f.sidecar_size = obj.etag, obj.size
            continue
        if inner == layout.MANIFEST:
            f.has_manifest = True
        f.listed_files = (f.listed_files or 0) + 1
        f.listed_bytes = (f.listed_bytes or 0) + obj.size
    return folders


def folder_of_top(name: str, objects: Iterable[ObjectInfo], prefix: str) -> Folder:
    """A folder from the listing of its top level (``.backup``, the sidecar, ClickHouse's ``.lock``)."""
    f = Folder(name)
    for obj in objects:
        inner = obj.key[len(prefix) :]
        if inner == layout.SIDECAR:
            f.sidecar_etag, f.sidecar_size = obj.etag, obj.size
        elif inner == layout.MANIFEST:
            f.has_manifest = True
    return f


@dataclass
class ScheduleRead:
    folders: dict[str, Folder]
    index: ScheduleIndex | None  # as read (None: missing or unreadable)
    index_problem: str | None
    reread: set[str]  # folders whose sidecar was read from the bucket
    refresh: Refresh = Refresh.FAST
    #: folders a fast refresh looked at in the bucket (a listing of their top level)
    looked_at: set[str] | None = None

    @property
    def index_is_current(self) -> bool:
        """The index as read says what this read found, so writing it again would change nothing:
        it is of the current format, names the same folders, and every folder read from the bucket
        shows the manifest and the sidecar (at the ETag) the index recorded."""
        if self.index is None or self.index.version != 2 or self.reread:
            return False
        entries = self.index.entries
        if entries.keys() != self.folders.keys():
            return False
        return all(
            f.from_index or (entries[n].manifest, entries[n].sidecar_etag) == (f.has_manifest, f.sidecar_etag)
            for n, f in self.folders.items()
        )


def check_sidecar(sc: Sidecar, expect: tuple[str, str], name: str) -> Sidecar:
    """``sc``, if it names the folder it is in (``ValueError`` otherwise)."""
    if (sc.service, sc.schedule, sc.backup) != (*expect, name):
        raise ValueError(f"sidecar names {sc.service}/{sc.schedule}/{sc.backup}, not the folder it is in")
    return sc


def _sidecar_from_entry(f: Folder, entry: IndexEntry, expect: tuple[str, str]) -> None:
    f.sidecar_problem = entry.sidecar_problem
    if entry.locked_until and entry.manifest and f.has_manifest:  # the same sidecar, the manifest there
        try:
            f.locked_until = parse_iso(entry.locked_until)
        except ValueError:
            f.locked_until = None  # unreadable: the plan asks the bucket
    if entry.sidecar is not None:
        try:
            f.sidecar = check_sidecar(Sidecar.from_json(entry.sidecar), expect, f.name)
        except ValueError as e:
            f.sidecar, f.sidecar_problem = None, redact(str(e))[:300]


def _from_settled(name: str, entry: IndexEntry, expect: tuple[str, str]) -> Folder:
    f = Folder(name, has_manifest=bool(entry.manifest), sidecar_etag=entry.sidecar_etag, from_index=True)
    _sidecar_from_entry(f, entry, expect)
    return f


def entry_of(f: Folder) -> IndexEntry:
    """The index entry of what was read about a folder."""
    sc = f.sidecar
    state = UNMANAGED if sc is None else sc.state.value
    sidecar = sc.to_json() if sc else None
    files = sc.stored_files if sc else None
    size = sc.stored_bytes if sc else None
    locked = iso(f.locked_until) if f.locked_until else None
    return IndexEntry(f.sidecar_etag, sidecar, f.sidecar_problem, f.has_manifest, state, files, size, locked)


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
        f.sidecar = check_sidecar(Sidecar.decode(data), expect, f.name)
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


def _parallel(fn: Callable[[str], object], items: list[str]) -> None:
    if len(items) == 1:
        fn(items[0])
    elif items:
        with ThreadPoolExecutor(min(READ_PARALLELISM, len(items))) as pool:
            list(pool.map(fn, items))


def read_schedule(
    store: Store,
    prefix: str,
    index_key: str,
    expect: tuple[str, str],
    refresh: Refresh = Refresh.FAST,
    recheck: Collection[str] = (),
) -> ScheduleRead:
    """The folders of one schedule. ``recheck``: folders a fast refresh must look at in the bucket
    whatever the index says (those an apply just wrote or deleted)."""
    # the index is read while the folders are listed: neither needs the other
    with ThreadPoolExecutor(1) as side:
        index_read = side.submit(read_index, store, index_key, expect)
        if refresh == Refresh.FULL:
            listed = list_folders(store, prefix)
        else:
            names = store.list_folders(prefix)
        index, problem = index_read.result()
    entries = index.entries if index else {}
    reread: set[str] = set()

    def sidecar_of(f: Folder) -> None:
        entry = entries.get(f.name)
        if f.sidecar_etag is None:
            return  # no sidecar: unmanaged
        if entry is not None and entry.sidecar_etag == f.sidecar_etag:
            _sidecar_from_entry(f, entry, expect)
        else:
            reread.add(f.name)
            _read_sidecar(store, prefix, f, expect)

    if refresh == Refresh.FULL:
        _parallel(lambda n: sidecar_of(listed[n]), sorted(listed))
        return ScheduleRead(dict(sorted(listed.items())), index, problem, reread, refresh)

    folders: dict[str, Folder] = {}
    todo: list[str] = []
    for name in names:
        entry = entries.get(name)
        if entry is not None and entry.settled and name not in recheck:
            folders[name] = _from_settled(name, entry, expect)
        else:
            todo.append(name)

    def look(name: str) -> None:
        folder_prefix = prefix + name + "/"
        objects, _ = store.list_top(folder_prefix)
        f = folder_of_top(name, objects, folder_prefix)
        sidecar_of(f)
        folders[name] = f

    _parallel(look, todo)
    return ScheduleRead(dict(sorted(folders.items())), index, problem, reread, refresh, set(todo))


def lock_end(store: Store, folder: str) -> datetime | None:
    """When the Object Lock of a backup's manifest and sidecar ends: the later retain-until of the
    two (each validation rewrites the sidecar, and each version gets its own date). Two HEAD
    requests; None when neither says (unknown: the apply asks the store again)."""
    ends: list[datetime] = []
    for key in (folder + layout.MANIFEST, folder + layout.SIDECAR):
        try:
            r = store.head_retention(key)
        except ReconcilerError:
            continue
        if r is not None and r.retain_until is not None:
            ends.append(r.retain_until)
    return max(ends) if ends else None


def fill_lock_ends(store: Store, prefix: str, read: ScheduleRead) -> int:
    """Sets ``locked_until`` on the complete backups of ``read`` that do not know it (in place),
    16 at a time; how many got one."""
    todo = [
        f.name
        for f in read.folders.values()
        if f.has_manifest and f.sidecar is not None and f.sidecar.state.value == "complete" and f.locked_until is None
    ]

    def one(name: str) -> None:
        read.folders[name].locked_until = lock_end(store, prefix + name + "/")

    _parallel(one, todo)
    return sum(1 for name in todo if read.folders[name].locked_until is not None)
