"""The one small protocol every object store implements, and the one base every store is built on.

Keys are full object keys inside the bucket/container (no leading slash). Everything above this
protocol (observe, apply) knows nothing of boto3, azure or google clients.

``BaseStore`` holds what is the same for every provider, once: the protocol's semantics (a read
of a missing object is ``None``, a lost condition says whether the object changed or is gone,
deletes in batches with the keys refused for a passing reason retried, a reader in ranges pinned
to one ETag), the request plumbing (every request one attempt under the ``RetryPolicy``, counted
in ``STATS`` as (provider, operation), its errors mapped through the provider's ``ErrorTable``),
redaction, and ``url``/``description``/``repr``. A provider gives its names (``provider``,
``scheme``, ``ops``), its error table and ``_describe``, and the primitives below — each ONE
request (one attempt), raising its SDK's errors, ``Refused``, or an error of ``reconciler.errors``.
"""

from __future__ import annotations

import abc
import builtins
import contextlib
import functools
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, ClassVar, Protocol, TypeVar, cast

from ..errors import (
    BucketMissing,
    NotSupported,
    ObjectMissing,
    PreconditionFailed,
    ReconcilerError,
    StoreError,
    TemporaryError,
)
from ..model import Bucket
from ..redact import HIDDEN, redact
from ..retry import DEFAULT_POLICY, RetryPolicy
from .errormap import ErrorTable, Failure, Outcome, Refused
from .stats import STATS

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    etag: str  # S3/Azure ETag (quotes stripped), GCS generation as a string
    last_modified: datetime


@dataclass(frozen=True, slots=True)
class ObjectVersion:
    """One version of an object, or a delete marker, of a versioned bucket."""

    key: str
    version_id: str
    size: int
    is_latest: bool
    delete_marker: bool
    last_modified: datetime


@dataclass(frozen=True)
class LockConfiguration:
    """A bucket's versioning and its Object Lock default retention (docs/compliance.md).
    ``mode`` is ``compliance`` or ``governance`` (lowercase), ``days`` the default retention in
    days (a default in years counts 365 days a year); both None without a default retention."""

    versioning: bool
    lock_enabled: bool = False
    mode: str | None = None
    days: int | None = None


@dataclass(frozen=True)
class ObjectRetention:
    """The lock of one object version: its mode and the end of its retention (None: not locked)."""

    mode: str | None
    retain_until: datetime | None


@dataclass(frozen=True)
class VersionRefusal:
    """A version the store would not delete: its error code (``AccessDenied`` under a lock) and cause."""

    code: str
    cause: str

    @property
    def locked(self) -> bool:
        return self.code == "AccessDenied"


class Store(Protocol):
    """An object store bucket/container. Errors: ``BucketMissing``, ``PreconditionFailed``,
    ``ObjectMissing`` (``open``), ``TemporaryError`` (already retried within a bound), ``StoreError``."""

    #: e.g. "s3://acme-ch-backups" — never contains a secret
    description: str

    def bucket_exists(self) -> bool:
        """True if the bucket/container exists and can be listed."""
        ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix`` (recursive), in key order."""
        ...

    def list_folders(self, prefix: str) -> builtins.list[str]:
        """Names of the immediate sub-folders of ``prefix`` (a '/' is added if missing), sorted."""
        ...

    def list_top(self, prefix: str) -> tuple[builtins.list[ObjectInfo], builtins.list[str]]:
        """One delimiter listing of ``prefix`` (a '/' is added if missing): the objects directly
        in it, in key order, and the names of its immediate sub-folders, sorted."""
        ...

    def read(self, key: str) -> tuple[bytes, str] | None:
        """(content, etag), or None if the object does not exist."""
        ...

    def open(self, key: str) -> BinaryIO:
        """A streaming reader of an object (for large files: checksums). ``ObjectMissing`` if
        absent; ``StoreError`` if it is replaced while it is read (never a mix of two versions)."""
        ...

    def write(self, key: str, data: bytes) -> str:
        """Create or overwrite; returns the new etag (a new one on every write)."""
        ...

    def create(self, key: str, data: bytes) -> str:
        """Create only if absent; ``PreconditionFailed`` if it exists. Returns the etag."""
        ...

    def replace(self, key: str, data: bytes, etag: str) -> str:
        """Overwrite only if the current etag is ``etag``; ``PreconditionFailed`` otherwise."""
        ...

    def delete(self, key: str, etag: str | None = None) -> None:
        """Delete one object (only if its etag is ``etag`` when given). Missing is not an error."""
        ...

    def delete_many(self, keys: Iterable[str]) -> int:
        """Delete in batches (S3: 1000 keys a request). Returns how many of the keys are gone (a
        key that was already missing counts: S3 cannot tell)."""
        ...

    def abort_uploads(self, prefix: str) -> int:
        """Abort unfinished multipart uploads under ``prefix`` (S3); 0 where there are none."""
        ...

    def lock_configuration(self) -> LockConfiguration:
        """The bucket's versioning and Object Lock default retention (asked once per store; a
        provider without them here: not versioned, no lock, no request)."""
        ...

    def list_versions(self, prefix: str) -> Iterator[ObjectVersion]:
        """Every version and delete marker under ``prefix``, by key, newest first within a key.
        ``NotSupported`` where the reconciler does not handle versions of that provider yet."""
        ...

    def delete_versions(self, versions: Iterable[tuple[str, str]]) -> dict[tuple[str, str], VersionRefusal]:
        """Delete versions (key, version id) in batches (a delete marker is a version too). Returns
        the ones refused (under an object lock: ``AccessDenied``); a version already gone counts
        as deleted. ``NotSupported`` where versions are not handled yet."""
        ...

    def head_retention(self, key: str, version_id: str | None = None) -> ObjectRetention | None:
        """The lock of an object (its current version, or ``version_id``); None if absent."""
        ...

    def read_version(self, key: str, version_id: str) -> bytes | None:
        """The content of one version of an object (one hidden under a delete marker too); None
        when that version does not exist or is a delete marker. ``NotSupported`` as above."""
        ...

    def list_version_folders(self, prefix: str) -> builtins.list[str]:
        """Names of the immediate sub-folders of ``prefix`` that hold any version or delete marker
        (a folder of which every object is deleted is among them), sorted: a delimiter listing of
        versions. ``NotSupported`` as above."""
        ...

    def write_from(self, key: str, stream: Readable, size: int) -> str:
        """Create or overwrite ``key`` with ``size`` bytes read from ``stream``, holding at most one
        part (``UPLOAD_PART``) in memory; the new etag. Fewer bytes than ``size`` is a ``StoreError``."""
        ...

    def can_copy_from(self, source: Store) -> bool:
        """Can this store copy an object of ``source`` server-side (the same provider and account)?"""
        ...

    def copy_from(self, source: Store, source_key: str, key: str, size: int) -> str:
        """Server-side copy of ``source_key`` of ``source`` to ``key`` here; the new etag."""
        ...


@dataclass(frozen=True)
class Operations:
    """A provider's names of its requests, in messages and in ``--stats``."""

    bucket: str  # does the bucket exist?
    list: str
    get: str  # an object's content (read, and the ranges of open)
    head: str  # does an object exist?
    put: str
    delete: str
    delete_batch: str


@dataclass(frozen=True)
class Page:
    """One page of a listing: objects, the folders of a delimiter listing (full prefixes, "p/a/"),
    and the token of the next page (None: the last one)."""

    objects: builtins.list[ObjectInfo]
    folders: builtins.list[str]
    token: str | None


class Stream(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


@dataclass
class Download:
    """The answer to one ranged GET: the body, the object's etag and its whole size (None when
    the answer does not say; the first range always says)."""

    stream: Stream
    etag: str
    size: int | None


def empty_download() -> Download:
    return Download(io.BytesIO(b""), "", 0)


class ConditionLost(PreconditionFailed):
    """A conditional request lost, as the provider said it (``cause``); the operation words it."""

    def __init__(self, what: str, cause: str) -> None:
        super().__init__(f"{what}: {cause}")
        self.cause = cause


def _cause(e: PreconditionFailed) -> str:
    return e.cause if isinstance(e, ConditionLost) else e.message


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


#: the reader's buffer
READ_BUFFER = 1024 * 1024

#: a streamed upload (``write_from``) goes in parts of this many bytes: what one upload holds in memory
UPLOAD_PART = 8 * 1024 * 1024


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def read_full(stream: Readable, n: int) -> bytes:
    """Up to ``n`` bytes: fewer only at the end of the stream (a socket may return less per read)."""
    parts: builtins.list[bytes] = []
    got = 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


class BaseStore(abc.ABC):
    """A ``Store`` on one bucket/container. Keys are full object keys (the bucket prefix included).

    ``retry`` is the policy of every request (the provider's ``default_retry`` when None); the
    timeouts bound one attempt and ``max_pool_connections`` the connections kept open (as many
    as the parallelism); ``page_size`` is how many objects one listing request asks for (the
    provider's default when None), ``delete_batch`` how many keys one batch delete carries (at
    most the provider's ``max_delete_batch``), ``read_chunk`` the bytes of one ranged GET of
    ``open`` (None: the rest of the object, resumed where it broke). A provider makes its
    client in ``_connect``, and gives there the values no message may show (``_add_secrets``)."""

    provider: ClassVar[str]  # "S3": the first word of every message and of every --stats kind
    scheme: ClassVar[str]  # "s3": description and url
    noun: ClassVar[str] = "bucket"
    etag_word: ClassVar[str] = "ETag"
    ops: ClassVar[Operations]
    error_table: ClassVar[ErrorTable]
    native_errors: ClassVar[tuple[type[BaseException], ...]] = ()  # the SDK's, mapped by the table
    max_delete_batch: ClassVar[int]
    secret_patterns: ClassVar[tuple[re.Pattern[str], ...]] = ()  # with a group "head" kept
    default_retry: ClassVar[RetryPolicy] = DEFAULT_POLICY
    default_page_size: ClassVar[int | None] = None
    default_read_chunk: ClassVar[int | None] = None

    def __init__(
        self,
        bucket: Bucket,
        *,
        retry: RetryPolicy | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_pool_connections: int = 32,
        page_size: int | None = None,
        delete_batch: int | None = None,
        read_chunk: int | None = None,
    ) -> None:
        self.bucket = bucket.bucket
        self.description = f"{self.scheme}://{bucket.bucket}"
        self.retry = retry or self.default_retry
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_pool_connections = max_pool_connections
        self.page_size = page_size or self.default_page_size
        self.delete_batch = min(delete_batch or self.max_delete_batch, self.max_delete_batch)
        self.read_chunk = read_chunk or self.default_read_chunk
        self._secrets: builtins.list[str] = []
        self._connect(bucket)

    @abc.abstractmethod
    def _connect(self, bucket: Bucket) -> None:
        """Make the client of ``bucket`` (no request yet) and register its secrets."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description})"

    def url(self, key: str = "") -> str:
        return f"{self.scheme}://{self.bucket}/{key}"

    # ----------------------------------------------------------------------------------------
    # plumbing
    # ----------------------------------------------------------------------------------------

    def _add_secrets(self, values: Iterable[str | None]) -> None:
        """Remember values a message must never show (longest first; very short ones are not secrets)."""
        self._secrets = sorted({*self._secrets, *(v for v in values if v and len(v) >= 4)}, key=len, reverse=True)

    def _redact(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, HIDDEN)
        for p in self.secret_patterns:
            text = p.sub(lambda m: m.group("head") + HIDDEN, text)
        return redact(text)

    def _what(self, op: str, key: str) -> str:
        return f"{self.provider} {op} on {self.url(key)}"

    def _describe(self, e: BaseException) -> Failure:
        """What an exception of the provider says (providers read their SDK's errors here)."""
        return Failure(cause=f"{type(e).__name__}: {first_line(str(e))}", error=e)

    def _error(self, outcome: Outcome, what: str, cause: str) -> ReconcilerError:
        """The error to raise for a classified failure; a ``TemporaryError`` carries the cause only."""
        if outcome is TemporaryError:
            return TemporaryError(cause)
        if outcome is BucketMissing:
            return BucketMissing(f"{what}: {self.noun} {self.bucket} does not exist ({cause})")
        if outcome is ObjectMissing:
            return ObjectMissing(f"{what}: the object does not exist ({cause})")
        if outcome is PreconditionFailed:
            return ConditionLost(what, cause)
        return outcome(f"{what}: {cause}")

    def _translate(self, e: BaseException, what: str) -> ReconcilerError:
        """The reconciler error for an error of a request ``what``, by the provider's table."""
        if isinstance(e, ReconcilerError):
            return e
        failure = e.failure if isinstance(e, Refused) else self._describe(e)
        return self._error(self.error_table.classify(failure), what, self._redact(failure.cause))

    def _once(self, op: str, what: str, fn: Callable[[], T]) -> Callable[[], T]:
        """``fn`` as one counted attempt of ``op``, its errors mapped."""
        mapped: tuple[type[BaseException], ...] = (Refused, *self.native_errors)

        def attempt() -> T:
            STATS.request(self.provider, op)
            try:
                return fn()
            except ReconcilerError:
                raise
            except mapped as e:
                raise self._translate(e, what) from e

        return attempt

    def _call(self, op: str, key: str, fn: Callable[[], T], what: str | None = None) -> T:
        """Run one request ``op`` on ``key`` under the retry policy, errors mapped."""
        what = what or self._what(op, key)
        return self.retry.run(what, self._once(op, what, fn))

    def _exists(self, key: str) -> bool:
        try:
            return self._call(self.ops.head, key, functools.partial(self._head, key))
        except ObjectMissing:
            return False

    # ----------------------------------------------------------------------------------------
    # the primitives: one request each
    # ----------------------------------------------------------------------------------------

    @abc.abstractmethod
    def _bucket_exists(self) -> bool: ...

    @abc.abstractmethod
    def _list_page(self, prefix: str, delimiter: str | None, token: str | None) -> Page: ...

    @abc.abstractmethod
    def _get(self, key: str) -> tuple[bytes, str]:
        """The whole object and its etag; ``ObjectMissing`` (or what the table maps to it) if absent."""

    @abc.abstractmethod
    def _head(self, key: str) -> bool:
        """Does the object exist?"""

    @abc.abstractmethod
    def _download(self, key: str, start: int, etag: str | None) -> Download:
        """``read_chunk`` bytes from ``start`` (all the rest when None) of the object, only if its
        etag is still ``etag``; ``etag`` None: the first range, whatever the object is now."""

    @abc.abstractmethod
    def _put(self, key: str, data: bytes, *, if_absent: bool = False, if_match: str | None = None) -> str:
        """Store ``data`` (only if absent / only if the etag is ``if_match``); the new etag."""

    @abc.abstractmethod
    def _delete(self, key: str, etag: str | None) -> None:
        """Delete one object (only if its etag is ``etag`` when given)."""

    @abc.abstractmethod
    def _delete_keys(self, keys: builtins.list[str]) -> Mapping[str, Failure | None]:
        """One batch delete of ``keys``: for each, None when it is gone, else what was answered."""

    # ----------------------------------------------------------------------------------------
    # the Store protocol
    # ----------------------------------------------------------------------------------------

    def bucket_exists(self) -> bool:
        return self._call(self.ops.bucket, "", self._bucket_exists)

    def _pages(self, prefix: str, delimiter: str | None) -> Iterator[Page]:
        token: str | None = None
        while True:
            page = self._call(self.ops.list, prefix, functools.partial(self._list_page, prefix, delimiter, token))
            yield page
            token = page.token
            if not token:
                return

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        for page in self._pages(prefix, None):
            yield from page.objects

    def list_folders(self, prefix: str) -> builtins.list[str]:
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        names: set[str] = set()
        for page in self._pages(prefix, "/"):
            names.update(n for p in page.folders if (n := p[len(prefix) :].rstrip("/")))
        return sorted(names)

    def list_top(self, prefix: str) -> tuple[builtins.list[ObjectInfo], builtins.list[str]]:
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        objects: builtins.list[ObjectInfo] = []
        names: set[str] = set()
        for page in self._pages(prefix, "/"):
            objects.extend(page.objects)
            names.update(n for p in page.folders if (n := p[len(prefix) :].rstrip("/")))
        return sorted(objects, key=lambda o: o.key), sorted(names)

    def read(self, key: str) -> tuple[bytes, str] | None:
        def get() -> tuple[bytes, str]:
            got = self._get(key)  # read inside the attempt: a stream broken midway is retried
            STATS.read(len(got[0]))
            return got

        try:
            return self._call(self.ops.get, key, get)
        except ObjectMissing:
            return None

    def open(self, key: str) -> BinaryIO:
        return cast(BinaryIO, io.BufferedReader(RangedReader(self, key), buffer_size=READ_BUFFER))

    def write(self, key: str, data: bytes) -> str:
        return self._call(self.ops.put, key, functools.partial(self._put, key, data))

    def create(self, key: str, data: bytes) -> str:
        """Note: if a first attempt was stored but its answer lost, the retry finds the object and
        raises ``PreconditionFailed``; callers that must tell (the lock) read the object back and
        recognise their own content."""
        what = self._what(self.ops.put, key)
        try:
            return self._call(self.ops.put, key, functools.partial(self._put, key, data, if_absent=True), what)
        except PreconditionFailed as e:
            raise PreconditionFailed(f"{what}: the object already exists ({_cause(e)})") from e

    def replace(self, key: str, data: bytes, etag: str) -> str:
        what = self._what(self.ops.put, key)
        expected = f"(expected {self.etag_word} {etag})"
        try:
            return self._call(self.ops.put, key, functools.partial(self._put, key, data, if_match=etag), what)
        except ObjectMissing as e:
            raise PreconditionFailed(f"{what}: the object no longer exists {expected}") from e
        except PreconditionFailed as e:
            # some providers answer a lost condition the same whether the object changed or is gone: ask
            if not self._exists(key):
                raise PreconditionFailed(f"{what}: the object no longer exists {expected}") from e
            raise PreconditionFailed(f"{what}: the object changed {expected}") from e

    def delete(self, key: str, etag: str | None = None) -> None:
        what = self._what(self.ops.delete, key)
        try:
            self._call(self.ops.delete, key, functools.partial(self._delete, key, etag), what)
        except ObjectMissing:
            return  # already gone
        except PreconditionFailed as e:
            if etag is None:
                raise
            if not self._exists(key):  # a condition on a missing object may lose: gone all the same
                return
            raise PreconditionFailed(f"{what}: the object changed (expected {self.etag_word} {etag})") from e

    def delete_many(self, keys: Iterable[str]) -> int:
        unique = builtins.list(dict.fromkeys(keys))
        deleted = 0
        failed: dict[str, str] = {}  # key -> why
        for i in range(0, len(unique), self.delete_batch):
            n, errors = self._delete_batch(unique[i : i + self.delete_batch])
            deleted += n
            failed.update(errors)
        if failed:
            sample = "; ".join(f"{self.url(k)}: {v}" for k, v in builtins.list(failed.items())[:3])
            raise StoreError(
                f"{self._what(self.ops.delete_batch, '')}: {len(failed)} of {len(unique)} objects could not be "
                f"deleted ({deleted} were): {self._redact(sample)}"
            )
        return deleted

    def _delete_batch(self, batch: builtins.list[str]) -> tuple[int, dict[str, str]]:
        """One batch. Keys refused for a passing reason are sent again under the policy, alone;
        whatever is still refused at the end is returned as failed (key -> why)."""
        pending = builtins.list(batch)
        failed: dict[str, str] = {}
        deleted = 0
        per_key = False  # did the last attempt fail on some keys only (not the whole request)?
        what = self._what(self.ops.delete_batch, batch[0] if batch else "")

        def attempt() -> None:
            nonlocal pending, deleted, per_key
            per_key = False
            answers = self._delete_keys(pending)
            again: builtins.list[str] = []
            last = ""
            for key in pending:
                failure = answers.get(key, Failure(cause="no answer for this key"))
                outcome = ObjectMissing if failure is None else self.error_table.classify(failure)
                cause = "" if failure is None else self._redact(failure.cause)
                if outcome is ObjectMissing:  # deleted, or gone already
                    deleted += 1
                elif outcome is BucketMissing:
                    raise self._error(outcome, what, cause)
                elif outcome is TemporaryError:
                    again.append(key)
                    last = cause
                else:
                    failed[key] = cause
            pending = again
            if again:
                per_key = True
                raise TemporaryError(f"{len(again)} deletes refused: {last}")

        try:
            self._call(self.ops.delete_batch, batch[0] if batch else "", attempt, what)
        except TemporaryError as e:
            if not per_key:
                raise
            failed.update((k, e.message) for k in pending)
        return deleted, failed

    def abort_uploads(self, prefix: str) -> int:
        return 0

    # ----------------------------------------------------------------------------------------
    # versions and object locks (S3 and the memory store; others: not supported yet)
    # ----------------------------------------------------------------------------------------

    def _not_supported(self, what: str) -> NotSupported:
        return NotSupported(f"{self.provider} {what} on {self.description}: object versions are not supported yet")

    def lock_configuration(self) -> LockConfiguration:
        cached: LockConfiguration | None = getattr(self, "_lock_config", None)
        if cached is None:
            cached = self._lock_configuration()
            self._lock_config = cached
        return cached

    def _lock_configuration(self) -> LockConfiguration:
        return LockConfiguration(versioning=False)

    def list_versions(self, prefix: str) -> Iterator[ObjectVersion]:
        raise self._not_supported("ListObjectVersions")

    def delete_versions(self, versions: Iterable[tuple[str, str]]) -> dict[tuple[str, str], VersionRefusal]:
        raise self._not_supported("DeleteObjectVersions")

    def head_retention(self, key: str, version_id: str | None = None) -> ObjectRetention | None:
        raise self._not_supported("HeadObject (retention)")

    def read_version(self, key: str, version_id: str) -> bytes | None:
        raise self._not_supported("GetObject (version)")

    def list_version_folders(self, prefix: str) -> builtins.list[str]:
        raise self._not_supported("ListObjectVersions")

    # ----------------------------------------------------------------------------------------
    # copies: streamed uploads and server-side copies
    # ----------------------------------------------------------------------------------------

    upload_part: int = UPLOAD_PART

    def write_from(self, key: str, stream: Readable, size: int) -> str:
        """One put when the object fits in a part; else the provider's upload in parts, each part
        one request under the retry policy (a part is held until it is stored, so a retry resends it)."""
        if size <= self.upload_part:
            data = read_full(stream, size)
            self._check_length(key, len(data), size)
            return self.write(key, data)
        return self._write_parts(key, self._parts(key, stream, size), size)

    def _parts(self, key: str, stream: Readable, size: int) -> Iterator[bytes]:
        left = size
        while left > 0:
            data = read_full(stream, min(self.upload_part, left))
            self._check_length(key, len(data), min(self.upload_part, left))
            left -= len(data)
            yield data

    def _check_length(self, key: str, got: int, want: int) -> None:
        if got != want:
            raise StoreError(f"{self._what(self.ops.put, key)}: the source ended after {got} of {want} bytes")

    def _write_parts(self, key: str, parts: Iterator[bytes], size: int) -> str:
        """The provider's upload in parts (S3 multipart, Azure blocks, GCS resumable). The default
        joins the parts into one put: only for stores with no upload in parts (memory)."""
        return self.write(key, b"".join(parts))

    def can_copy_from(self, source: Store) -> bool:
        return False

    def copy_from(self, source: Store, source_key: str, key: str, size: int) -> str:
        raise StoreError(f"{self.description} cannot copy server-side from {source.description}")


class RangedReader(io.RawIOBase):
    """The raw stream under ``BaseStore.open``: ranges of ``read_chunk`` bytes (or the rest) of the
    one etag found by the first; a range used up is followed by the next, one broken midway is
    asked again from where it stopped, under the retry policy. The object replaced or deleted
    midway is a ``StoreError``: a reader never returns a mix of two versions."""

    def __init__(self, store: BaseStore, key: str) -> None:
        super().__init__()
        self._store = store
        self._key = key
        first = store._call(store.ops.get, key, functools.partial(store._download, key, 0, None))
        self._etag = first.etag
        self._size = first.size or 0
        self._body: Stream | None = first.stream
        self._pos = 0

    def readable(self) -> bool:
        return True

    def _read(self, n: int, what: str) -> bytes:
        assert self._body is not None
        mapped: tuple[type[BaseException], ...] = (Refused, *self._store.native_errors)
        try:
            return self._body.read(n)
        except mapped as e:  # broken midway: the next attempt resumes
            self._close_body()
            raise self._store._translate(e, what) from e

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._pos >= self._size or not len(view):
            return 0
        store, n = self._store, min(len(view), self._size - self._pos)
        what = f"{store._what(store.ops.get, self._key)} at byte {self._pos}"

        def attempt() -> bytes:
            data = self._read(n, what) if self._body is not None else b""
            if not data:  # no range open, or this one is used up: the next one, from here
                self._close_body()
                download = functools.partial(store._download, self._key, self._pos, self._etag)
                self._body = store._once(store.ops.get, what, download)().stream
                data = self._read(n, what)
                if not data:
                    self._close_body()
                    raise TemporaryError(f"the object ended at byte {self._pos} of {self._size}")
            return data

        try:
            data = store.retry.run(what, attempt)
        except (PreconditionFailed, ObjectMissing) as e:  # the pinned etag is gone
            raise StoreError(f"{what}: the object changed while it was read") from e
        view[: len(data)] = data
        self._pos += len(data)
        STATS.read(len(data))
        return len(data)

    def _close_body(self) -> None:
        body, self._body = self._body, None
        if body is not None:
            with contextlib.suppress(Exception):  # a broken stream may fail to close too
                body.close()

    def close(self) -> None:
        self._close_body()
        super().close()
