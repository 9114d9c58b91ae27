"""The Azure Blob Storage store (Azure, and Azurite, Microsoft's emulator), on azure-storage-blob.

The bucket's ``bucket`` is the container. Credentials are a ``connection_string``, or an
``account_name`` + ``account_key`` (the account URL is the bucket's ``endpoint`` when set — for
Azurite ``http://127.0.0.1:PORT/devstoreaccount1`` — else ``https://<account>.blob.core.windows.net``).
There is no ambient-credential chain: azure-identity is not a dependency, so one of the two forms
is required.

One ``ContainerClient`` per store (the SDK's clients are thread-safe). The SDK's own retries are
off (``retry_total=0``): every request goes through the one ``RetryPolicy`` (retry.py), and every
SDK error is mapped to the errors of ``reconciler.errors``:

- ``ContainerNotFound`` -> ``BucketMissing``;
- 429, 5xx, ``ServerBusy``/``OperationTimedOut``..., connection errors and timeouts -> retried,
  then ``TemporaryError`` naming the request and the attempts;
- a lost condition (412 ``ConditionNotMet``, 409 ``BlobAlreadyExists`` on create) -> ``PreconditionFailed``;
- anything else -> ``StoreError`` with the Azure error code and message.

Messages name ``azure://container/key`` and never contain the account key, a SAS signature or
the connection string.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import io
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO, TypeVar, cast

import requests
from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobPrefix, BlobServiceClient, ContainerClient
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ..errors import (
    BucketMissing,
    ObjectMissing,
    PreconditionFailed,
    ReconcilerError,
    StoreError,
    TemporaryError,
)
from ..model import Bucket
from .base import ObjectInfo
from .retry import DEFAULT_POLICY, RetryPolicy
from .stats import STATS

T = TypeVar("T")

#: Azure error codes that may pass when retried (besides any HTTP 429 and 5xx)
TRANSIENT_CODES = frozenset(
    {
        "ServerBusy",
        "InternalError",
        "OperationTimedOut",
        "ServiceUnavailable",
        "TooManyRequests",
    }
)

#: a conditional request lost
PRECONDITION_CODES = frozenset({"ConditionNotMet", "BlobAlreadyExists", "TargetConditionNotMet"})

#: a Blob Batch request takes at most this many sub-requests
DELETE_BATCH = 256

#: most blobs a List Blobs page returns (Azure's maximum)
MAX_PAGE = 5000

#: bytes fetched per ranged GET by ``open()``
READ_CHUNK = 4 * 1024 * 1024

_CONTAINER_MISSING = "ContainerNotFound"
_BLOB_MISSING = "BlobNotFound"

# secrets inside connection strings and SAS tokens, wherever they show up in a message
_SECRET_PATTERNS = (
    re.compile(r"(?P<head>(?:AccountKey|SharedAccessSignature|SharedAccessKey)=)[^;'\"\s]+", re.I),
    re.compile(r"(?P<head>[?&]sig=)[^&'\"\s]+", re.I),
)


def _strip_etag(etag: str | None) -> str:
    return (etag or "").strip('"')


def _quoted(etag: str) -> str:
    return etag if etag.startswith('"') else f'"{etag}"'


def _code(e: HttpResponseError) -> str:
    """The Azure error code (``x-ms-error-code``) of an SDK error, as a plain string."""
    code: Any = getattr(e, "error_code", None)
    if code is None and e.response is not None:
        code = cast(Any, e.response).headers.get("x-ms-error-code")
    return str(getattr(code, "value", code) or "")


def _status(e: HttpResponseError) -> int:
    return int(e.status_code or 0)


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    # get_blob_properties (a HEAD, no body) words it "Operation returned an invalid status '...'"
    m = re.fullmatch(r"Operation returned an invalid status '(.*)'", line)
    return m.group(1) if m else line


class AzureStore:
    """A ``Store`` on one Azure Blob Storage container. Keys are full blob names (prefix included)."""

    def __init__(
        self,
        bucket: Bucket,
        *,
        retry: RetryPolicy = DEFAULT_POLICY,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_pool_connections: int = 32,
        page_size: int = MAX_PAGE,
    ) -> None:
        self.container = bucket.bucket
        self.description = f"azure://{bucket.bucket}"
        self.retry = retry
        self.page_size = page_size
        creds = bucket.credentials
        conn = creds.connection_string
        secrets = [conn, creds.account_key]
        if conn:
            secrets += [m.group(0)[len(m.group("head")) :] for p in _SECRET_PATTERNS for m in p.finditer(conn)]
        # every secret value, longest first, so a message can never carry one
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
        options: dict[str, Any] = {
            "session": _session(max_pool_connections),
            # the one retry policy is ours
            "retry_total": 0,
            "retry_connect": 0,
            "retry_read": 0,
            "retry_status": 0,
            "connection_timeout": connect_timeout,
            "read_timeout": read_timeout,
        }
        where = f"bucket {bucket.name}"
        service: BlobServiceClient
        if conn:
            try:
                service = BlobServiceClient.from_connection_string(conn, **options)
            except (ValueError, TypeError, AzureError) as e:
                raise ReconcilerError(
                    f"the Azure connection string of container {self.container} is not valid: {self._redact(str(e))}",
                    where,
                ) from None
        elif creds.account_name and creds.account_key:
            try:
                base64.b64decode(creds.account_key, validate=True)
            except (binascii.Error, ValueError):
                raise ReconcilerError(
                    f"the Azure account_key of account {creds.account_name} is not valid base64", where
                ) from None
            account_url = bucket.endpoint or f"https://{creds.account_name}.blob.core.windows.net"
            try:
                service = BlobServiceClient(
                    account_url,
                    credential={"account_name": creds.account_name, "account_key": creds.account_key},
                    **options,
                )
            except (ValueError, TypeError, AzureError) as e:
                raise ReconcilerError(
                    f"cannot use the Azure account URL {account_url}: {self._redact(str(e))}", where
                ) from None
        else:
            raise ReconcilerError(
                f"Azure container {self.container} needs credentials: set connection_string, "
                "or account_name and account_key",
                where,
            )
        self._client: ContainerClient = service.get_container_client(self.container)

    def __repr__(self) -> str:
        return f"AzureStore({self.description})"

    # ----------------------------------------------------------------------------------------
    # plumbing
    # ----------------------------------------------------------------------------------------

    def url(self, key: str = "") -> str:
        return f"azure://{self.container}/{key}"

    def _redact(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, "***")
        for p in _SECRET_PATTERNS:
            text = p.sub(lambda m: m.group("head") + "***", text)
        return text

    def _translate(self, e: Exception, what: str) -> Exception:
        """The reconciler error for an SDK error; a ``TemporaryError`` carries the cause only."""
        if isinstance(e, HttpResponseError) and e.status_code:
            code, status = _code(e), _status(e)
            message = self._redact(_first_line(str(e.reason or "") if not e.message else e.message))
            cause = f"{code or status}: {message}" if message else (code or str(status))
            if code == _CONTAINER_MISSING:
                return BucketMissing(f"{what}: container {self.container} does not exist ({code})")
            if code in TRANSIENT_CODES or status == 429 or status >= 500:
                return TemporaryError(cause)
            if code in PRECONDITION_CODES or status == 412:
                return PreconditionFailed(f"{what}: {cause}")
            return StoreError(f"{what}: {cause}")
        if isinstance(e, (ServiceRequestError, ServiceResponseError, HttpResponseError)):
            # connection refused/reset, timeouts, a body cut short (IncompleteReadError)
            return TemporaryError(self._redact(f"{type(e).__name__}: {_first_line(str(e))}"))
        return StoreError(self._redact(f"{what}: {type(e).__name__}: {_first_line(str(e))}"))

    def _guarded(self, what: str, fn: Callable[[], T]) -> Callable[[], T]:
        """``fn`` with SDK errors mapped (one attempt)."""

        def attempt() -> T:
            STATS.request(what)
            try:
                return fn()
            except AzureError as e:
                raise self._translate(e, what) from e

        return attempt

    def _call(self, op: str, key: str, fn: Callable[[], T]) -> T:
        """Run one Azure request ``op`` on ``key`` under the retry policy, errors mapped."""
        what = f"Azure {op} on {self.url(key)}"
        return self.retry.run(what, self._guarded(what, fn))

    def _blob(self, key: str) -> Any:
        return self._client.get_blob_client(key)

    def _exists(self, key: str) -> bool:
        """Does the blob exist (one GetBlobProperties, under the policy)?"""

        def head() -> bool:
            try:
                self._blob(key).get_blob_properties()
            except HttpResponseError as e:
                if _code(e) == _BLOB_MISSING:
                    return False
                raise
            return True

        return self._call("GetBlobProperties", key, head)

    def _pages(self, op: str, prefix: str, make: Callable[[str | None], Any]) -> Iterator[builtins.list[Any]]:
        """The pages of a listing, each fetched under the policy from the last continuation token."""
        token: str | None = None
        while True:

            def fetch(token: str | None = token) -> tuple[builtins.list[Any], str | None]:
                pages = make(token)
                items = builtins.list(next(pages))
                return items, pages.continuation_token

            items, token = self._call(op, prefix, fetch)
            yield items
            if not token:
                return

    # ----------------------------------------------------------------------------------------
    # the Store protocol
    # ----------------------------------------------------------------------------------------

    def bucket_exists(self) -> bool:
        def head() -> bool:
            try:
                self._client.get_container_properties()
            except HttpResponseError as e:
                if _code(e) == _CONTAINER_MISSING or (_status(e) == 404 and not _code(e)):
                    return False
                raise
            return True

        return self._call("GetContainerProperties", "", head)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        def page(token: str | None) -> Any:
            return self._client.list_blobs(name_starts_with=prefix or None, results_per_page=self.page_size).by_page(
                continuation_token=token
            )

        for items in self._pages("ListBlobs", prefix, page):
            for b in items:
                yield ObjectInfo(
                    key=b.name, size=int(b.size or 0), etag=_strip_etag(b.etag), last_modified=b.last_modified
                )

    def list_folders(self, prefix: str) -> builtins.list[str]:
        if prefix and not prefix.endswith("/"):
            prefix += "/"

        def page(token: str | None) -> Any:
            return self._client.walk_blobs(
                name_starts_with=prefix or None, delimiter="/", results_per_page=self.page_size
            ).by_page(continuation_token=token)

        names: builtins.list[str] = []
        for items in self._pages("ListBlobs", prefix, page):
            for item in items:
                if isinstance(item, BlobPrefix):  # not the blobs directly under the prefix
                    name = item.name[len(prefix) :].rstrip("/")
                    if name:
                        names.append(name)
        return sorted(names)

    def read(self, key: str) -> tuple[bytes, str] | None:
        def get() -> tuple[bytes, str] | None:
            try:
                downloader = self._blob(key).download_blob()
                data = downloader.readall()  # reading inside the attempt: a broken stream is retried
            except HttpResponseError as e:
                if _code(e) == _BLOB_MISSING:
                    return None
                raise
            STATS.read(len(data))
            return data, _strip_etag(downloader.properties.etag)

        return self._call("GetBlob", key, get)

    def open(self, key: str) -> BinaryIO:
        """A buffered reader of the blob, fetched in ranged GETs (each under the retry policy and
        on the same ETag, so a blob replaced midway is an error, not a mix). ``ObjectMissing`` if
        absent."""
        return cast(BinaryIO, io.BufferedReader(_AzureReader(self, key), buffer_size=READ_CHUNK))

    def _upload(
        self, op_key: str, data: bytes, lost: Callable[[HttpResponseError], Exception | None], **kw: Any
    ) -> str:
        """Put Blob (with conditions); ``lost`` maps a refused condition to the error to raise."""

        def put() -> str:
            try:
                resp = self._blob(op_key).upload_blob(data, length=len(data), **kw)
            except HttpResponseError as e:
                mapped = lost(e)
                if mapped is not None:
                    raise mapped from e
                raise
            return _strip_etag(resp["etag"])

        return self._call("PutBlob", op_key, put)

    def write(self, key: str, data: bytes) -> str:
        return self._upload(key, data, lambda e: None, overwrite=True)

    def create(self, key: str, data: bytes) -> str:
        """Put Blob with ``If-None-Match: *`` (what ``upload_blob(overwrite=False)`` sends; the SDK
        refuses an explicit ``etag='*'`` + ``MatchConditions.IfMissing`` on uploads). Azure answers
        409 BlobAlreadyExists (412 on some servers) when the blob exists. As for S3: if a first
        attempt was stored but its answer lost, the retry raises ``PreconditionFailed``; callers
        that must tell (the lock) read the blob back and recognise their own content."""

        def lost(e: HttpResponseError) -> Exception | None:
            if _code(e) in PRECONDITION_CODES or (_status(e) in (409, 412) and _code(e) != _CONTAINER_MISSING):
                return PreconditionFailed(
                    f"Azure PutBlob on {self.url(key)}: the object already exists ({_code(e) or _status(e)})"
                )
            return None

        return self._upload(key, data, lost, overwrite=False)

    def replace(self, key: str, data: bytes, etag: str) -> str:
        def lost(e: HttpResponseError) -> Exception | None:
            code = _code(e)
            if code == _BLOB_MISSING or (_lost_condition(e) and not self._exists(key)):
                # Azure answers If-Match on a missing blob with 412 (Azurite) or 404
                return PreconditionFailed(
                    f"Azure PutBlob on {self.url(key)}: the object no longer exists (expected ETag {etag})"
                )
            if _lost_condition(e):
                return PreconditionFailed(
                    f"Azure PutBlob on {self.url(key)}: the object changed (expected ETag {etag})"
                )
            return None

        return self._upload(
            key, data, lost, overwrite=True, etag=_quoted(etag), match_condition=MatchConditions.IfNotModified
        )

    def delete(self, key: str, etag: str | None = None) -> None:
        kwargs: dict[str, Any] = {"delete_snapshots": "include"}
        if etag:
            kwargs.update(etag=_quoted(etag), match_condition=MatchConditions.IfNotModified)

        def delete() -> None:
            try:
                self._blob(key).delete_blob(**kwargs)
            except HttpResponseError as e:
                if _code(e) == _BLOB_MISSING:  # already gone
                    return
                if etag and _lost_condition(e):
                    if not self._exists(key):  # If-Match on a missing blob is 412 on Azurite
                        return
                    raise PreconditionFailed(
                        f"Azure DeleteBlob on {self.url(key)}: the object changed (expected ETag {etag})"
                    ) from e
                raise

        self._call("DeleteBlob", key, delete)

    def delete_many(self, keys: Iterable[str]) -> int:
        """Delete in Blob Batch requests of up to 256 blobs (Azurite implements Blob Batch too).
        A blob that is already gone counts as deleted, as S3 counts it."""
        unique = builtins.list(dict.fromkeys(keys))
        deleted = 0
        failed: dict[str, str] = {}  # key -> "Code: Message"
        for i in range(0, len(unique), DELETE_BATCH):
            batch = unique[i : i + DELETE_BATCH]
            n, errors = self._delete_batch(batch)
            deleted += n
            failed.update(errors)
        if failed:
            sample = "; ".join(f"{self.url(k)}: {v}" for k, v in builtins.list(failed.items())[:3])
            raise StoreError(
                f"Azure BlobBatch on {self.url()}: {len(failed)} of {len(unique)} objects could not be deleted "
                f"({deleted} were): {self._redact(sample)}"
            )
        return deleted

    def _delete_batch(self, batch: builtins.list[str]) -> tuple[int, dict[str, str]]:
        """Delete up to 256 blobs in one batch. Blobs refused with a transient status are retried
        under the policy; whatever is still refused at the end is returned as failed."""
        pending = builtins.list(batch)
        failed: dict[str, str] = {}
        deleted = 0
        per_key = False  # did the last attempt fail on some blobs only (not the whole request)?
        what = f"Azure BlobBatch on {self.url(batch[0] if batch else '')}"

        def attempt() -> None:
            nonlocal pending, deleted, per_key
            per_key = False
            parts = builtins.list(
                self._client.delete_blobs(*pending, delete_snapshots="include", raise_on_any_failure=False)
            )
            if len(parts) != len(pending):  # the batch itself was refused
                status = parts[0].status_code if parts else 0
                code = parts[0].headers.get("x-ms-error-code", "") if parts else ""
                if status == 429 or status >= 500 or code in TRANSIENT_CODES:
                    raise TemporaryError(f"{code or status}: the batch request was refused")
                raise StoreError(f"{what}: {code or status}: the batch request was refused")
            transient: builtins.list[str] = []
            for key, part in zip(pending, parts, strict=True):
                status = int(part.status_code)
                code = str(part.headers.get("x-ms-error-code", "") or "")
                if 200 <= status < 300 or code == _BLOB_MISSING:
                    deleted += 1
                elif code == _CONTAINER_MISSING:
                    raise BucketMissing(f"{what}: container {self.container} does not exist ({code})")
                elif status == 429 or status >= 500 or code in TRANSIENT_CODES:
                    transient.append(key)
                else:
                    failed[key] = f"{code or status}: {part.reason or ''}".strip()
            pending = transient
            if transient:
                per_key = True
                raise TemporaryError(f"{len(transient)} blobs refused with a temporary error")

        try:
            self._call("BlobBatch", batch[0] if batch else "", attempt)
        except TemporaryError as e:
            if not per_key:
                raise
            failed.update((k, e.message) for k in pending)
        return deleted, failed

    def abort_uploads(self, prefix: str) -> int:
        """Nothing to do on Azure: an upload cut short leaves uncommitted blocks (Put Block without
        a Put Block List), which are not blobs — they are not listed, do not count in listings and
        are not served — and Azure discards uncommitted blocks by itself after seven days. There is
        no request to list or discard them for a blob that was never committed."""
        return 0


def _session(pool_size: int) -> requests.Session:
    """The HTTP session of a store: a connection pool as large as the parallelism we use (the
    SDK's default holds 10) and, as the SDK's own, no urllib3 retries of its own."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_maxsize=pool_size, max_retries=Retry(total=False, redirect=False, raise_on_status=False))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _lost_condition(e: HttpResponseError) -> bool:
    return _code(e) in PRECONDITION_CODES or _status(e) == 412


class _AzureReader(io.RawIOBase):
    """The raw stream under ``AzureStore.open``: ranged GETs from the current position."""

    def __init__(self, store: AzureStore, key: str) -> None:
        super().__init__()
        self._store = store
        self._key = key

        def head() -> Any:
            try:
                return store._blob(key).get_blob_properties()
            except HttpResponseError as e:
                if _code(e) == _BLOB_MISSING:
                    raise ObjectMissing(f"Azure GetBlob on {store.url(key)}: the object does not exist") from e
                raise

        props = store._call("GetBlobProperties", key, head)
        self._etag = _strip_etag(props.etag)
        self._size = int(props.size or 0)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._pos >= self._size or not len(view):
            return 0
        length = min(len(view), READ_CHUNK, self._size - self._pos)
        blob = self._store._blob(self._key)

        def get() -> bytes:
            downloader = blob.download_blob(
                offset=self._pos,
                length=length,
                etag=_quoted(self._etag),
                match_condition=MatchConditions.IfNotModified,
            )
            return bytes(downloader.readall())

        try:
            data = self._store._call("GetBlob", f"{self._key} at byte {self._pos}", get)
        except PreconditionFailed as e:  # If-Match lost: replaced (or deleted, on Azurite) midway
            raise StoreError(
                f"Azure GetBlob on {self._store.url(self._key)}: the object changed while it was read"
            ) from e
        n = len(data)
        if n == 0:  # the blob shrank under us without an ETag change: should not happen
            raise StoreError(
                f"Azure GetBlob on {self._store.url(self._key)}: the object ended early at byte {self._pos}"
            )
        view[:n] = data
        self._pos += n
        return n
