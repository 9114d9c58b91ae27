"""Backups of realistic shape for the benchmarks (issue 14), replicated through the store seam.

A real ``BACKUP`` of wide MergeTree tables stores two files per column and part (``.bin`` and its
marks) plus a handful per part, and the metadata: ``backup_files()`` gives that key layout (by
default 5 tables x 10 parts x 20 columns: 2,357 objects, the manifest included).

``ReplicatingStore`` is a ``MemoryStore`` (the whole store protocol, with ``--stats`` counting)
in which every folder of ``VirtualBackups`` holds that layout, its sidecar and, per schedule, the
index — made when asked, never stored, so that 100,000 backups of 2,357 files (235 million keys)
cost the process only their folder names. Listings page as S3 does (1,000 entries a page,
delimiter listings collapse a folder to one entry), so request counts are those of a real bucket.
Objects written by the reconciler are stored for real and shadow the replicated ones.
"""

from __future__ import annotations

import bisect
import builtins
import hashlib
import heapq
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from reconciler.bucket.index import IndexEntry, ScheduleIndex
from reconciler.model import UTC, Bucket
from reconciler.model.slots import slot_name
from reconciler.stores.base import ObjectInfo, Page
from reconciler.stores.memory import MemoryStorage, MemoryStore

START = datetime(2015, 1, 1, tzinfo=UTC)
WHEN = datetime(2026, 1, 1, tzinfo=UTC)
PART_FILES = (
    ("checksums.txt", 1500),
    ("columns.txt", 600),
    ("count.txt", 4),
    ("default_compression_codec.txt", 10),
    ("metadata_version.txt", 1),
    ("primary.cidx", 120),
    ("serialization.json", 400),
)


def backup_files(tables: int = 5, parts: int = 10, columns: int = 20, db: str = "shop") -> list[tuple[str, int]]:
    """(key inside the folder, size) of every object ClickHouse writes for one backup, sorted."""
    files = [(f"metadata/{db}.sql", 60)]
    for t in range(tables):
        files.append((f"metadata/{db}/t{t}.sql", 800 + 40 * columns))
        for p in range(parts):
            base = f"data/{db}/t{t}/all_{p * 10 + 1}_{p * 10 + 10}_1/"
            files += [(base + name, size) for name, size in PART_FILES]
            for c in range(columns):
                files.append((base + f"c{c:02d}.bin", 40_000 + 97 * c + p))
                files.append((base + f"c{c:02d}.cmrk2", 150))
    files.append((".backup", 130 * len(files)))
    return sorted(files)


def sidecar_doc(service: str, schedule: str, name: str, slot: datetime, files: int, size: int) -> dict[str, Any]:
    stamp = slot.isoformat().replace("+00:00", "Z")
    return {
        "format_version": 1,
        "service": service,
        "schedule": schedule,
        "backup": name,
        "slot": stamp,
        "kind": "full",
        "base": None,
        "chain": [],
        "scope": {"databases": ["shop"]},
        "location": "",
        "state": "complete",
        "operation": {"id": f"op-{name}", "status": "BACKUP_CREATED", "error": None},
        "sizes": {"num_files": files + 300, "total_size": size * 3, "stored_files": files, "stored_bytes": size},
        "timings": {"started_at": stamp, "finished_at": stamp, "duration_seconds": 0.0},
        "run_id": "bench",
        "validations": [{"level": "manifest", "at": stamp, "result": "ok", "detail": ""}],
    }


@dataclass
class VirtualBackups:
    """Per schedule (``<prefix>/<service>/<schedule>/``) the names of its replicated backups."""

    prefix: str = "bench"
    service: str = "analytics"
    files: list[tuple[str, int]] = field(default_factory=backup_files)
    schedules: dict[str, list[str]] = field(default_factory=dict)
    with_index: bool = True
    #: keep each index once made, as a bucket stores it (plan_scale: its CPU stays out of the wall
    #: times); off, each read makes it afresh and nothing is held (plan_rss: the memory measured
    #: is the reconciler's)
    keep_index: bool = False

    def __post_init__(self) -> None:
        self.keys = [k for k, _ in self.files]
        self.sizes = dict(self.files)
        self.stored_bytes = sum(self.sizes.values())
        self.top = sorted(k for k in self.keys if "/" not in k)
        self.subfolders = sorted({k.split("/")[0] + "/" for k in self.keys if "/" in k})

    def add(self, schedule: str, backups: int) -> datetime:
        """``backups`` hourly backups of ``schedule``; returns a ``now`` half an hour after the newest."""
        self.schedules[schedule] = [slot_name(START + timedelta(hours=j)) for j in range(backups)]
        return START + timedelta(hours=max(backups, 1) - 1, minutes=30)

    def schedule_prefix(self, schedule: str) -> str:
        return f"{self.prefix}/{self.service}/{schedule}/"

    def index_key(self, schedule: str) -> str:
        return f"{self.prefix}/.reconciler/index/{self.service}/{schedule}.json"

    def sidecar(self, schedule: str, name: str) -> bytes:
        slot = datetime.strptime(name, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        doc = sidecar_doc(self.service, schedule, name, slot, len(self.keys), self.stored_bytes)
        return json.dumps(doc, indent=2).encode()

    def index(self, schedule: str) -> bytes:
        """The schedule's index, made once under ``keep_index`` (a real bucket serves it stored:
        building it on every read would put the benchmark's CPU time into the plan and its floor
        alike)."""
        if not self.keep_index:
            return self._make_index(schedule)
        cache: dict[str, tuple[list[str], bytes]] = self.__dict__.setdefault("_index_cache", {})
        names = self.schedules[schedule]
        got = cache.get(schedule)
        if got is None or got[0] is not names:
            got = cache[schedule] = (names, self._make_index(schedule))
        return got[1]

    def _make_index(self, schedule: str) -> bytes:
        entries = {}
        for name in self.schedules[schedule]:
            data = self.sidecar(schedule, name)
            doc = json.loads(data)
            entries[name] = IndexEntry(etag(data), doc, None, True, "complete", len(self.keys), self.stored_bytes)
        return ScheduleIndex(self.service, schedule, entries).encode()

    # ---- the replicated objects -----------------------------------------------------------

    def where(self, key: str) -> tuple[str, str, str] | None:
        """(schedule, folder, key inside it) of a key under a replicated schedule."""
        for schedule in self.schedules:
            head = self.schedule_prefix(schedule)
            if key.startswith(head):
                name, sep, inner = key[len(head) :].partition("/")
                return (schedule, name, inner) if sep else None
        return None

    def get(self, key: str) -> bytes | None:
        for schedule in self.schedules:
            if self.with_index and key == self.index_key(schedule):
                return self.index(schedule)
        w = self.where(key)
        if w is None or not self._has(*w[:2]):
            return None
        schedule, name, inner = w
        if inner == "reconciler.json":
            return self.sidecar(schedule, name)
        if inner in self.sizes:
            return b"\0" * self.sizes[inner] if inner != ".backup" else b"<config/>".ljust(self.sizes[inner])
        return None

    def _has(self, schedule: str, name: str) -> bool:
        names = self.schedules[schedule]
        i = bisect.bisect_left(names, name)
        return i < len(names) and names[i] == name

    def entries(self, prefix: str, delimiter: str | None, after: str | None) -> Iterator[tuple[str, int | None]]:
        """(entry, size) in key order after ``after``: an object's key and size, or a folder
        ("p/a/", size None) in a delimiter listing."""
        for schedule, names in self.schedules.items():
            head = self.schedule_prefix(schedule)
            if prefix == head:
                start = bisect.bisect_left(names, after[len(head) :].split("/")[0]) if after else 0
                for name in names[start:]:
                    folder = head + name + "/"
                    if delimiter:
                        if after is None or folder > after:
                            yield folder, None
                        continue
                    yield from self._in_folder(schedule, folder, None, after)
                return
            if prefix.startswith(head):
                name, sep, rest = prefix[len(head) :].partition("/")
                if sep and not rest and self._has(schedule, name):
                    yield from self._in_folder(schedule, prefix, delimiter, after)
                return

    def _in_folder(
        self, schedule: str, folder: str, delimiter: str | None, after: str | None
    ) -> Iterator[tuple[str, int | None]]:
        name = folder.rstrip("/").rsplit("/", 1)[1]
        rel, keys = (self._top, self._top_keys) if delimiter else (self._all, self._all_keys)
        start = 0
        if after is not None and after.startswith(folder):
            start = bisect.bisect_right(keys, after[len(folder) :])
        elif after is not None and after > folder:
            return
        for key, size in rel[start:]:
            if key == "reconciler.json":
                size = len(self.sidecar(schedule, name))
            yield folder + key, size

    @property
    def _all(self) -> list[tuple[str, int | None]]:
        if not hasattr(self, "_all_cache"):
            self._all_cache = sorted([*self.files, ("reconciler.json", 0)])
            self._all_keys_cache = [k for k, _ in self._all_cache]
        return self._all_cache  # type: ignore[return-value]

    @property
    def _all_keys(self) -> list[str]:
        self._all  # noqa: B018
        return self._all_keys_cache

    @property
    def _top(self) -> list[tuple[str, int | None]]:
        items: list[tuple[str, int | None]] = [(k, self.sizes[k]) for k in self.top] + [("reconciler.json", 0)]
        items += [(f, None) for f in self.subfolders]
        return sorted(items, key=lambda e: e[0])

    @property
    def _top_keys(self) -> list[str]:
        return [k for k, _ in self._top]


def etag(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class ReplicatingStore(MemoryStore):
    """A ``MemoryStore`` whose replicated folders are listed and read as if they were stored.
    ``latency``: seconds each listing page and each read waits, as a request to a remote store does
    (0: none; the figures of benchmarks/RESULTS.md say which they assumed)."""

    def __init__(
        self,
        storage: MemoryStorage,
        bucket: Bucket | str,
        virtual: VirtualBackups,
        latency: float = 0.0,
        **options: Any,
    ) -> None:
        super().__init__(storage, bucket, **options)
        self.virtual = virtual
        self.latency = latency

    def _list_page(self, prefix: str, delimiter: str | None, token: str | None) -> Page:
        if self.latency:
            time.sleep(self.latency)
        size = self.page_size or 1000
        real = super()._list_page(prefix, delimiter, token)  # what the reconciler wrote (small)
        real_entries: list[tuple[str, int | None, ObjectInfo | None]] = [(o.key, o.size, o) for o in real.objects]
        real_entries += [(f, None, None) for f in real.folders]
        real_entries.sort(key=lambda e: e[0])
        virtual = ((k, s, None) for k, s in self.virtual.entries(prefix, delimiter, token))
        objects: builtins.list[ObjectInfo] = []
        folders: builtins.list[str] = []
        last: str | None = None
        for key, size_, info in heapq.merge(real_entries, virtual, key=lambda e: e[0]):
            if key == last:
                continue  # a real object shadows its replica
            if len(objects) + len(folders) == size:
                return Page(objects, folders, last)
            if key.endswith("/") and size_ is None:
                folders.append(key)
            else:
                objects.append(info or ObjectInfo(key, size_ or 0, self._etag_of(key), WHEN))
            last = key
        if real.token:  # the real page was cut: go on after its last entry
            return Page(objects, folders, last)
        return Page(objects, folders, None)

    def _etag_of(self, key: str) -> str:
        if key.endswith("/reconciler.json"):
            data = self.virtual.get(key)
            return etag(data) if data is not None else ""
        return "v-" + hashlib.md5(key.encode()).hexdigest()[:16]

    def _get(self, key: str) -> tuple[bytes, str]:
        if self.latency:
            time.sleep(self.latency)
        with self.storage.lock:
            if key in self._objects(self.ops.get, key):
                return super()._get(key)
        data = self.virtual.get(key)
        if data is None:
            return super()._get(key)  # raises what a missing object raises
        return data, etag(data) if key.endswith((".json",)) else self._etag_of(key)

    def _head(self, key: str) -> bool:
        return self.virtual.get(key) is not None or super()._head(key)

    def _bucket_exists(self) -> bool:
        if self.latency:
            time.sleep(self.latency)
        return super()._bucket_exists()


def store_factory(virtual: VirtualBackups, storage: MemoryStorage | None = None, latency: float = 0.0) -> Any:
    storage = storage or MemoryStorage()

    def make(bucket: Bucket) -> ReplicatingStore:
        storage.create_bucket(bucket.bucket)
        return ReplicatingStore(storage, bucket, virtual, latency)

    return make
