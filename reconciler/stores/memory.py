"""A store in memory, like restic's ``mem`` backend: the whole protocol, no server, for fast tests.

``MemoryStorage`` is the server: buckets of objects, shared by every ``MemoryStore`` opened on it,
so that a plan and then an apply (two ``Connections``) see the same bucket. The stores are built
on ``BaseStore`` like the others, so they have the same semantics, errors, retries and ``--stats``
counting (provider ``Memory``, S3's operation names)::

    storage = MemoryStorage()
    conns = Connections(config, store_factory=storage.open_store)   # or memory_store_factory()

Every write makes a new ETag (even of the same bytes); conditional create/replace/delete lose
with ``PreconditionFailed``; listings are in key order, in pages of ``page_size``, with delimiter
listings for ``list_folders``; ``open`` streams in ranges pinned to the ETag; ``delete_many`` goes
in batches; ``abort_uploads`` aborts the uploads ``start_upload`` began. Faults are injected as a
server would answer them (``fail``, ``break_stream``), and go through the store's error table.
"""

from __future__ import annotations

import bisect
import builtins
import functools
import hashlib
import io
import itertools
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import BucketMissing, ObjectMissing, PreconditionFailed, TemporaryError
from ..model import Bucket, Provider
from ..retry import RetryPolicy
from .base import (
    BaseStore,
    Download,
    LockConfiguration,
    ObjectInfo,
    ObjectRetention,
    ObjectVersion,
    Operations,
    Page,
    VersionRefusal,
)
from .errormap import SERVER_ERRORS, TOO_MANY_REQUESTS, ErrorTable, Failure, Refused, row

#: what the memory "server" answers, what we raise (the first row that matches; else ``StoreError``)
ERRORS = ErrorTable(
    row(BucketMissing, codes={"NoSuchBucket"}),
    row(ObjectMissing, codes={"NoSuchKey"}),
    row(PreconditionFailed, codes={"PreconditionFailed"}),
    row(TemporaryError, codes={"SlowDown", "InternalError"}),
    row(TemporaryError, statuses=TOO_MANY_REQUESTS | SERVER_ERRORS),
    row(TemporaryError, exceptions=(ConnectionError,)),  # a stream broken midway
)

#: retries without waiting: a test injects the faults it wants ridden out
FAST_RETRY = RetryPolicy(attempts=3, total=10.0, initial=0.0, max_wait=0.0, jitter=0.0)

#: (bucket, list, get, head, put, delete, delete_batch): S3's names
OPS = Operations("HeadBucket", "ListObjects", "GetObject", "HeadObject", "PutObject", "DeleteObject", "DeleteObjects")


@dataclass(frozen=True)
class StoredObject:
    data: bytes
    etag: str
    last_modified: datetime


@dataclass
class Fault:
    """Answer ``op`` (on ``key``, or on any key) with an error, ``times`` times (None: always).
    A fault of ``DeleteObjects`` with a key refuses that key only, in the batch's answer."""

    op: str
    code: str
    status: int
    message: str
    times: int | None = 1
    key: str | None = None

    def failure(self) -> Failure:
        return Failure(self.code, self.status, f"{self.code}: {self.message}")


@dataclass
class _Version:
    """One version of a key in a versioned bucket (``obj`` None: a delete marker)."""

    version_id: str
    obj: StoredObject | None
    last_modified: datetime
    mode: str | None = None
    retain_until: datetime | None = None


@dataclass
class _Bucket:
    objects: dict[str, StoredObject] = field(default_factory=dict)
    uploads: dict[str, str] = field(default_factory=dict)  # upload id -> key
    versioned: bool = False
    #: Object Lock default retention: (mode, days), as S3 applies it to every new version
    lock: tuple[str, int] | None = None
    lock_enabled: bool = False
    history: dict[str, list[_Version]] = field(default_factory=dict)  # key -> versions, oldest first

    def record(self, key: str, obj: StoredObject | None, version_id: str, now: datetime) -> None:
        """A new version (or delete marker) of ``key``; the current object follows it."""
        if not self.versioned:
            return
        mode, until = None, None
        if obj is not None and self.lock is not None:
            mode, until = self.lock[0], now + timedelta(days=self.lock[1])
        self.history.setdefault(key, []).append(_Version(version_id, obj, now, mode, until))

    def settle(self, key: str) -> None:
        """The current object of ``key`` after versions were removed: the newest, unless a marker."""
        versions = self.history.get(key) or []
        if not versions:
            self.history.pop(key, None)
            self.objects.pop(key, None)
        elif versions[-1].obj is None:
            self.objects.pop(key, None)
        else:
            self.objects[key] = versions[-1].obj


class MemoryStorage:
    """The buckets, shared by the stores opened on it. ``auto_create``: a bucket a store is opened
    on exists from then on (else ``create_bucket`` it first; a missing one is ``BucketMissing``)."""

    def __init__(self, *, clock: Callable[[], datetime] | None = None, auto_create: bool = True) -> None:
        self.clock = clock or (lambda: datetime.now(UTC))
        self.auto_create = auto_create
        self.lock = threading.RLock()
        self.buckets: dict[str, _Bucket] = {}
        self.faults: builtins.list[Fault] = []
        self._broken: dict[str, builtins.list[int]] = {}  # key -> byte offsets to break streams at
        self._writes = itertools.count(1)

    # -- the factory -------------------------------------------------------------------------

    def open_store(self, bucket: Bucket) -> MemoryStore:
        """A ``StoreFactory``: the store of a configured bucket (its credentials never shown)."""
        if self.auto_create:
            self.create_bucket(bucket.bucket)
        return MemoryStore(self, bucket)

    # -- what a test arranges ----------------------------------------------------------------

    def create_bucket(self, name: str) -> None:
        with self.lock:
            self.buckets.setdefault(name, _Bucket())

    def enable_versioning(self, name: str) -> None:
        """Versioning on: every write keeps the older versions, a delete leaves a marker."""
        with self.lock:
            self.create_bucket(name)
            self.buckets[name].versioned = True

    def set_object_lock(self, name: str, mode: str | None, days: int | None) -> None:
        """Object Lock on the bucket (versioning with it), with a default retention of ``days``
        in ``mode`` (``compliance``/``governance``), or none when ``mode`` is None."""
        with self.lock:
            self.enable_versioning(name)
            b = self.buckets[name]
            b.lock_enabled = True
            b.lock = (mode, days) if mode and days else None

    def versions(self, name: str) -> dict[str, list[tuple[str, bool]]]:
        """key -> [(version id, is a delete marker)], oldest first: what a test looks at."""
        with self.lock:
            return {
                k: [(v.version_id, v.obj is None) for v in vs] for k, vs in sorted(self.buckets[name].history.items())
            }

    def drop_bucket(self, name: str) -> None:
        with self.lock:
            self.buckets.pop(name, None)

    def contents(self, name: str) -> dict[str, bytes]:
        """The bucket's objects: key -> bytes."""
        with self.lock:
            return {k: o.data for k, o in sorted(self.buckets[name].objects.items())}

    def fail(
        self,
        op: str,
        code: str = "SlowDown",
        *,
        status: int = 503,
        message: str = "Please reduce your request rate",
        times: int | None = 1,
        key: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests ``op`` (``PutObject``...; on ``key`` only, if given) with an error."""
        with self.lock:
            self.faults.append(Fault(op, code, status, message, times, key))

    def break_stream(self, key: str, after: int) -> None:
        """The next download of ``key`` breaks (a reset connection) after ``after`` bytes."""
        with self.lock:
            self._broken.setdefault(key, []).append(after)

    def start_upload(self, name: str, key: str) -> str:
        """Begin a multipart upload that nobody finishes (``abort_uploads`` finds it)."""
        with self.lock:
            upload_id = f"upload-{next(self._writes)}"
            self.buckets[name].uploads[upload_id] = key
            return upload_id

    def uploads(self, name: str) -> builtins.list[str]:
        with self.lock:
            return sorted(self.buckets[name].uploads.values())

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()
            self._broken.clear()

    # -- what the stores use -----------------------------------------------------------------

    def fault(self, op: str, key: str | None, *, per_key: bool = False) -> Failure | None:
        """The failure of the next matching fault (used up once), if any."""
        with self.lock:
            for f in self.faults:
                if f.op == op and (f.key == key if per_key else f.key is None or f.key == key):
                    if f.times is not None:
                        f.times -= 1
                        if f.times <= 0:
                            self.faults.remove(f)
                    return f.failure()
        return None

    def stream(self, key: str, data: bytes) -> io.RawIOBase | io.BytesIO:
        with self.lock:
            breaks = self._broken.get(key)
            after = breaks.pop(0) if breaks else None
        return io.BytesIO(data) if after is None else _BrokenStream(data, after)

    def etag(self, data: bytes) -> str:
        """A new ETag for every write, even of the same bytes."""
        return hashlib.md5(f"{next(self._writes)}:".encode() + data).hexdigest()


def memory_store_factory(storage: MemoryStorage | None = None) -> Callable[[Bucket], MemoryStore]:
    """What ``Connections(config, store_factory=...)`` takes: every bucket of the config in memory
    (in ``storage``, to look at or to share; a new one when not given)."""
    return (storage or MemoryStorage()).open_store


class _BrokenStream(io.RawIOBase):
    """Gives ``after`` bytes of ``data``, then fails as a reset connection does."""

    def __init__(self, data: bytes, after: int) -> None:
        super().__init__()
        self._data, self._after, self._pos = data, after, 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1, /) -> bytes:
        if self._pos >= self._after:
            raise ConnectionResetError("Connection reset by peer")
        end = min(self._after, len(self._data) if n < 0 else self._pos + n)
        out, self._pos = self._data[self._pos : end], end
        return out


def _found(obj: StoredObject | None) -> StoredObject:
    if obj is None:
        raise Refused(Failure("NoSuchKey", 404, "NoSuchKey: The specified key does not exist."))
    return obj


def _refuse_unless(ok: bool) -> None:
    if not ok:
        raise Refused(
            Failure("PreconditionFailed", 412, "PreconditionFailed: At least one of the preconditions failed")
        )


class MemoryStore(BaseStore):
    """A ``Store`` on one bucket of a ``MemoryStorage``."""

    provider, scheme, ops, error_table = "Memory", "memory", OPS, ERRORS
    native_errors, max_delete_batch = (ConnectionError,), 1000
    default_retry, default_page_size = FAST_RETRY, 1000

    def __init__(self, storage: MemoryStorage, bucket: Bucket | str, **options: Any) -> None:
        """A store on ``bucket`` of ``storage`` (a name, or a configured bucket whose credentials
        are then never shown); ``options`` as for every store."""
        self.storage = storage
        super().__init__(bucket if isinstance(bucket, Bucket) else Bucket("memory", Provider.S3, bucket), **options)

    def _connect(self, bucket: Bucket) -> None:
        self._add_secrets(bucket.credentials.secrets())

    def can_copy_from(self, source: Any) -> bool:
        return isinstance(source, MemoryStore) and source.storage is self.storage

    def copy_from(self, source: Any, source_key: str, key: str, size: int) -> str:
        """Server-side within one ``MemoryStorage``: one request (S3's name, CopyObject)."""
        assert isinstance(source, MemoryStore)

        def copy() -> str:
            with self.storage.lock:
                got = source._objects("CopyObject", source_key).get(source_key)
                if got is None:
                    raise Refused(Failure("NoSuchKey", 404, "NoSuchKey: The specified key does not exist."))
                data = got.data
            return self._put(key, data)

        return self._call("CopyObject", key, copy)

    def _objects(self, op: str, key: str | None = None) -> dict[str, StoredObject]:
        """The bucket's objects, after the faults of ``op`` (call with the storage's lock held)."""
        failure = self.storage.fault(op, key)
        if failure is not None:
            raise Refused(failure)
        got = self.storage.buckets.get(self.bucket)
        if got is None:
            raise Refused(Failure("NoSuchBucket", 404, "NoSuchBucket: The specified bucket does not exist"))
        return got.objects

    # ----------------------------------------------------------------------------------------
    # the primitives
    # ----------------------------------------------------------------------------------------

    def _bucket_exists(self) -> bool:
        with self.storage.lock:
            failure = self.storage.fault(self.ops.bucket, None)
            if failure is not None:
                raise Refused(failure)
            return self.bucket in self.storage.buckets

    def _list_page(self, prefix: str, delimiter: str | None, token: str | None) -> Page:
        size = self.page_size or 1000
        found: builtins.list[ObjectInfo] = []
        folders: builtins.list[str] = []
        last: str | None = None
        with self.storage.lock:
            objects = self._objects(self.ops.list, prefix)
            keys = sorted(objects)
            for key in itertools.islice(keys, bisect.bisect_left(keys, prefix), None):
                if not key.startswith(prefix):
                    break
                cut = key.find(delimiter, len(prefix)) if delimiter else -1
                entry = key if cut < 0 else key[: cut + 1]  # a key, or the folder it is in
                if (token is not None and entry <= token) or entry == last:
                    continue
                if len(found) + len(folders) == size:
                    return Page(found, folders, last)  # the next page starts after the last entry
                if cut < 0:
                    o = objects[key]
                    found.append(ObjectInfo(key, len(o.data), o.etag, o.last_modified))
                else:
                    folders.append(entry)
                last = entry
        return Page(found, folders, None)

    def _get(self, key: str) -> tuple[bytes, str]:
        with self.storage.lock:
            obj = _found(self._objects(self.ops.get, key).get(key))
        return obj.data, obj.etag

    def _head(self, key: str) -> bool:
        with self.storage.lock:
            _found(self._objects(self.ops.head, key).get(key))
        return True

    def _download(self, key: str, start: int, etag: str | None) -> Download:
        with self.storage.lock:
            obj = _found(self._objects(self.ops.get, key).get(key))
            _refuse_unless(etag is None or obj.etag == etag)
        end = start + self.read_chunk if self.read_chunk else len(obj.data)
        return Download(self.storage.stream(key, obj.data[start:end]), obj.etag, len(obj.data))

    def _put(self, key: str, data: bytes, *, if_absent: bool = False, if_match: str | None = None) -> str:
        with self.storage.lock:
            objects = self._objects(self.ops.put, key)
            current = objects.get(key)
            _refuse_unless(not (if_absent and current is not None))
            if if_match is not None:
                _refuse_unless(_found(current).etag == if_match)
            stored = StoredObject(bytes(data), self.storage.etag(data), self.storage.clock())
            objects[key] = stored
            self._bucket().record(key, stored, stored.etag, stored.last_modified)
            return stored.etag

    def _delete(self, key: str, etag: str | None) -> None:
        with self.storage.lock:
            objects = self._objects(self.ops.delete, key)
            if etag is not None:
                _refuse_unless(_found(objects.get(key)).etag == etag)
            self._remove(key)

    def _delete_keys(self, keys: builtins.list[str]) -> Mapping[str, Failure | None]:
        with self.storage.lock:
            self._objects(self.ops.delete_batch)
            answers: dict[str, Failure | None] = {}
            for key in keys:
                answers[key] = self.storage.fault(self.ops.delete_batch, key, per_key=True)
                if answers[key] is None:
                    self._remove(key)
            return answers

    def _bucket(self) -> _Bucket:
        return self.storage.buckets[self.bucket]

    def _remove(self, key: str) -> None:
        """A plain delete: gone, or on a versioned bucket a delete marker over it."""
        b = self._bucket()
        if b.versioned and key in b.objects:
            b.record(key, None, self.storage.etag(b"marker"), self.storage.clock())
        b.objects.pop(key, None)

    # -- versions and Object Lock ------------------------------------------------------------

    def _lock_configuration(self) -> LockConfiguration:
        def ask() -> LockConfiguration:
            with self.storage.lock:
                self._objects("GetBucketVersioning")
                b = self._bucket()
                mode, days = b.lock if b.lock else (None, None)
                return LockConfiguration(b.versioned, b.lock_enabled, mode, days)

        return self._call("GetBucketVersioning", "", ask)

    def list_versions(self, prefix: str) -> Iterator[ObjectVersion]:
        def page() -> builtins.list[ObjectVersion]:
            with self.storage.lock:
                self._objects("ListObjectVersions", prefix)
                out = []
                for key, versions in sorted(self._bucket().history.items()):
                    if not key.startswith(prefix):
                        continue
                    for i, v in reversed(builtins.list(enumerate(versions))):
                        size = len(v.obj.data) if v.obj is not None else 0
                        out.append(
                            ObjectVersion(
                                key, v.version_id, size, i == len(versions) - 1, v.obj is None, v.last_modified
                            )
                        )
                return out

        yield from self._call("ListObjectVersions", prefix, page)

    def delete_versions(self, versions: Iterable[tuple[str, str]]) -> dict[tuple[str, str], VersionRefusal]:
        wanted = builtins.list(dict.fromkeys(versions))

        def batch(part: builtins.list[tuple[str, str]]) -> dict[tuple[str, str], VersionRefusal]:
            refused: dict[tuple[str, str], VersionRefusal] = {}
            with self.storage.lock:
                self._objects(self.ops.delete_batch)
                b, now = self._bucket(), self.storage.clock()
                for key, vid in part:
                    history = b.history.get(key) or []
                    found = next((v for v in history if v.version_id == vid), None)
                    if found is None:
                        continue  # gone already
                    if found.retain_until is not None and found.retain_until > now:
                        refused[(key, vid)] = VersionRefusal(
                            "AccessDenied", "AccessDenied: Access Denied because object protected by object lock."
                        )
                        continue
                    history.remove(found)
                    b.settle(key)
            return refused

        out: dict[tuple[str, str], VersionRefusal] = {}
        for i in range(0, len(wanted), self.delete_batch):
            out.update(
                self._call(self.ops.delete_batch, "", functools.partial(batch, wanted[i : i + self.delete_batch]))
            )
        return out

    def head_retention(self, key: str, version_id: str | None = None) -> ObjectRetention | None:
        def head() -> ObjectRetention | None:
            with self.storage.lock:
                self._objects(self.ops.head, key)
                b = self._bucket()
                history = b.history.get(key) or []
                if version_id is not None:
                    v = next((v for v in history if v.version_id == version_id), None)
                elif history:
                    v = history[-1]
                else:
                    return ObjectRetention(None, None) if key in b.objects else None
                if v is None or v.obj is None:
                    return None
                return ObjectRetention(v.mode, v.retain_until)

        return self._call(self.ops.head, key, head)

    def list_version_folders(self, prefix: str) -> builtins.list[str]:
        if prefix and not prefix.endswith("/"):
            prefix += "/"

        def page() -> builtins.list[str]:
            with self.storage.lock:
                self._objects("ListObjectVersions", prefix)
                keys = [k for k in self._bucket().history if k.startswith(prefix)]
            return sorted({rest.split("/", 1)[0] for k in keys if "/" in (rest := k[len(prefix) :])})

        return self._call("ListObjectVersions", prefix, page)

    def read_version(self, key: str, version_id: str) -> bytes | None:
        def get() -> bytes | None:
            with self.storage.lock:
                self._objects(self.ops.get, key)
                history = self._bucket().history.get(key) or []
                v = next((v for v in history if v.version_id == version_id), None)
                return None if v is None or v.obj is None else v.obj.data

        return self._call(self.ops.get, key, get)

    def abort_uploads(self, prefix: str) -> int:
        def pending() -> builtins.list[str]:
            with self.storage.lock:
                self._objects("ListMultipartUploads", prefix)
                uploads = self.storage.buckets[self.bucket].uploads
                return sorted(u for u, k in uploads.items() if k.startswith(prefix))

        def abort(upload_id: str) -> bool:
            with self.storage.lock:
                self._objects("AbortMultipartUpload", upload_id)
                return self.storage.buckets[self.bucket].uploads.pop(upload_id, None) is not None

        found = self._call("ListMultipartUploads", prefix, pending)
        return sum(self._call("AbortMultipartUpload", prefix, functools.partial(abort, u)) for u in found)
