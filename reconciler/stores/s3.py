"""The S3 store (AWS S3 and S3-compatible servers such as moto's server mode), on boto3.

One boto3 client per store (boto3 clients are thread-safe), made from a private session so
stores built on several threads do not share boto3's default session. botocore's own retries
are off: every request goes through the one ``RetryPolicy`` (retry.py), and every botocore
error is mapped to the errors of ``reconciler.errors``:

- ``NoSuchBucket`` -> ``BucketMissing``;
- throttling (SlowDown, Throttling, RequestLimitExceeded, HTTP 429...), 5xx, connection errors
  and timeouts -> retried, then ``TemporaryError`` naming the request and the attempts;
- a lost condition (412 PreconditionFailed, 409 ConditionalRequestConflict) -> ``PreconditionFailed``;
- anything else -> ``StoreError`` with the S3 error code and message.

Messages name ``s3://bucket/key`` and never contain a credential.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import io
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO, TypeVar, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, IncompleteReadError
from botocore.exceptions import ConnectionError as BotoConnectionError

from ..errors import BucketMissing, ObjectMissing, PreconditionFailed, StoreError, TemporaryError
from ..model import Bucket
from .base import ObjectInfo
from .retry import DEFAULT_POLICY, RetryPolicy
from .stats import STATS

T = TypeVar("T")

#: S3 error codes that may pass when retried (besides any HTTP 429 and 5xx)
TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "BandwidthLimitExceeded",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "ServiceUnavailable",
        "PriorRequestNotComplete",
    }
)

#: a conditional request lost
PRECONDITION_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})

#: DeleteObjects takes at most this many keys a request
DELETE_BATCH = 1000

_MISSING_KEY_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def _strip_etag(etag: str) -> str:
    return etag.strip('"')


def _code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", "") or "")


def _status(e: ClientError) -> int:
    return int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


class S3Store:
    """A ``Store`` on one S3 bucket. Keys are full object keys (the bucket prefix included)."""

    def __init__(
        self,
        bucket: Bucket,
        *,
        retry: RetryPolicy = DEFAULT_POLICY,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_pool_connections: int = 32,
    ) -> None:
        self.bucket = bucket.bucket
        self.description = f"s3://{bucket.bucket}"
        self.retry = retry
        creds = bucket.credentials
        # every credential value, longest first, so a message can never carry one
        self._secrets = sorted(
            (v for v in (creds.secret_access_key, creds.session_token, creds.access_key_id) if v and len(v) >= 4),
            key=len,
            reverse=True,
        )
        if creds.access_key_id and creds.secret_access_key:
            session = boto3.session.Session(
                aws_access_key_id=creds.access_key_id,
                aws_secret_access_key=creds.secret_access_key,
                aws_session_token=creds.session_token or None,
                region_name=bucket.region or None,
            )
        else:  # boto3's default chain (env, profile, instance role); also when only role_arn is set
            session = boto3.session.Session(region_name=bucket.region or None)
        options: dict[str, Any] = {
            "retries": {"total_max_attempts": 1, "mode": "standard"},  # the one retry policy is ours
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "max_pool_connections": max_pool_connections,
        }
        if bucket.endpoint:
            # S3-compatible servers: path-style addressing, and no checksums they may not know
            options["s3"] = {"addressing_style": "path"}
            options["request_checksum_calculation"] = "when_required"
            options["response_checksum_validation"] = "when_required"
        self._client: Any = session.client("s3", endpoint_url=bucket.endpoint or None, config=Config(**options))

    def __repr__(self) -> str:
        return f"S3Store({self.description})"

    # ----------------------------------------------------------------------------------------
    # plumbing
    # ----------------------------------------------------------------------------------------

    def url(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key}"

    def _redact(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, "***")
        return text

    def _translate(self, e: Exception, what: str) -> Exception:
        """The reconciler error for a botocore error; a ``TemporaryError`` carries the cause only."""
        if isinstance(e, ClientError):
            code, status = _code(e), _status(e)
            message = self._redact(str(e.response.get("Error", {}).get("Message", "") or "").strip())
            cause = f"{code or status}: {message}" if message else (code or str(status))
            if code == "NoSuchBucket":
                return BucketMissing(f"{what}: bucket {self.bucket} does not exist (NoSuchBucket)")
            if code in TRANSIENT_CODES or status == 429 or status >= 500:
                return TemporaryError(cause)
            if code in PRECONDITION_CODES or status == 412:
                return PreconditionFailed(f"{what}: {cause}")
            return StoreError(f"{what}: {cause}")
        if isinstance(e, (BotoConnectionError, HTTPClientError)):
            return TemporaryError(self._redact(f"{type(e).__name__}: {e}"))
        return StoreError(self._redact(f"{what}: {type(e).__name__}: {e}"))

    def _guarded(self, what: str, fn: Callable[[], T]) -> Callable[[], T]:
        """``fn`` with botocore errors mapped (one attempt)."""

        def attempt() -> T:
            STATS.request(what)
            try:
                return fn()
            except (ClientError, BotoCoreError) as e:
                raise self._translate(e, what) from e

        return attempt

    def _call(self, op: str, key: str, fn: Callable[[], T]) -> T:
        """Run one S3 request ``op`` on ``key`` under the retry policy, errors mapped."""
        what = f"S3 {op} on {self.url(key)}"
        return self.retry.run(what, self._guarded(what, fn))

    # ----------------------------------------------------------------------------------------
    # the Store protocol
    # ----------------------------------------------------------------------------------------

    def bucket_exists(self) -> bool:
        def head() -> bool:
            try:
                self._client.head_bucket(Bucket=self.bucket)
            except ClientError as e:
                if _code(e) in ("404", "NoSuchBucket", "NotFound"):
                    return False
                raise
            return True

        return self._call("HeadBucket", "", head)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call("ListObjectsV2", prefix, functools.partial(self._client.list_objects_v2, **kwargs))
            for o in page.get("Contents", ()):
                yield ObjectInfo(
                    key=o["Key"], size=int(o["Size"]), etag=_strip_etag(o["ETag"]), last_modified=o["LastModified"]
                )
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    def list_folders(self, prefix: str) -> builtins.list[str]:
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        names: builtins.list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "Delimiter": "/"}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call("ListObjectsV2", prefix, functools.partial(self._client.list_objects_v2, **kwargs))
            for p in page.get("CommonPrefixes", ()):
                name = p["Prefix"][len(prefix) :].rstrip("/")
                if name:
                    names.append(name)
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return sorted(names)

    def read(self, key: str) -> tuple[bytes, str] | None:
        def get() -> tuple[bytes, str] | None:
            try:
                resp = self._client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as e:
                if _code(e) in _MISSING_KEY_CODES:
                    return None
                raise
            with resp["Body"] as body:  # reading inside the attempt: a broken stream is retried
                data = body.read()
            STATS.read(len(data))
            return data, _strip_etag(resp["ETag"])

        return self._call("GetObject", key, get)

    def open(self, key: str) -> BinaryIO:
        """A buffered reader of the object; a stream broken midway is resumed where it stopped
        (a ranged GET on the same ETag), under the retry policy. ``ObjectMissing`` if absent."""
        return cast(BinaryIO, io.BufferedReader(_S3Reader(self, key), buffer_size=1024 * 1024))

    def _get(self, key: str, *, start: int = 0, etag: str | None = None) -> dict[str, Any]:
        """GetObject from byte ``start`` (only if the ETag is still ``etag`` when given), retried."""
        return self._call("GetObject", key, self._get_once(key, start=start, etag=etag))

    def _get_once(self, key: str, *, start: int = 0, etag: str | None = None) -> Callable[[], dict[str, Any]]:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if start:
            kwargs["Range"] = f"bytes={start}-"
        if etag:
            kwargs["IfMatch"] = _quoted(etag)

        def get() -> dict[str, Any]:
            try:
                return cast(dict[str, Any], self._client.get_object(**kwargs))
            except ClientError as e:
                if _code(e) in _MISSING_KEY_CODES:
                    raise ObjectMissing(f"S3 GetObject on {self.url(key)}: the object does not exist") from e
                raise

        return get

    def _put(
        self, key: str, data: bytes, lost: Callable[[ClientError], Exception | None] | None = None, **cond: str
    ) -> str:
        """PutObject (with conditions); ``lost`` maps a refused condition to the error to raise."""

        def put() -> str:
            try:
                resp = self._client.put_object(Bucket=self.bucket, Key=key, Body=data, **cond)
            except ClientError as e:
                mapped = lost(e) if lost else None
                if mapped is not None:
                    raise mapped from e
                raise
            return _strip_etag(resp["ETag"])

        return self._call("PutObject", key, put)

    def write(self, key: str, data: bytes) -> str:
        return self._put(key, data)

    def create(self, key: str, data: bytes) -> str:
        """PutObject with ``If-None-Match: *``. Note: if a first attempt was stored but its answer
        lost, the retry finds the object and raises ``PreconditionFailed``; callers that must tell
        (the lock) read the object back and recognise their own content."""

        def lost(e: ClientError) -> Exception | None:
            if _lost_condition(e):
                return PreconditionFailed(f"S3 PutObject on {self.url(key)}: the object already exists ({_code(e)})")
            return None

        return self._put(key, data, lost, IfNoneMatch="*")

    def replace(self, key: str, data: bytes, etag: str) -> str:
        def lost(e: ClientError) -> Exception | None:
            if _code(e) in _MISSING_KEY_CODES:
                return PreconditionFailed(
                    f"S3 PutObject on {self.url(key)}: the object no longer exists (expected ETag {etag})"
                )
            if _lost_condition(e):
                return PreconditionFailed(f"S3 PutObject on {self.url(key)}: the object changed (expected ETag {etag})")
            return None

        return self._put(key, data, lost, IfMatch=_quoted(etag))

    def delete(self, key: str, etag: str | None = None) -> None:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if etag:
            kwargs["IfMatch"] = _quoted(etag)

        def delete() -> None:
            try:
                self._client.delete_object(**kwargs)
            except ClientError as e:
                if _code(e) in _MISSING_KEY_CODES:  # already gone (If-Match on a missing key)
                    return
                if etag and _lost_condition(e):
                    raise PreconditionFailed(
                        f"S3 DeleteObject on {self.url(key)}: the object changed (expected ETag {etag})"
                    ) from e
                raise

        self._call("DeleteObject", key, delete)

    def delete_many(self, keys: Iterable[str]) -> int:
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
                f"S3 DeleteObjects on {self.url()}: {len(failed)} of {len(unique)} objects could not be deleted "
                f"({deleted} were): {self._redact(sample)}"
            )
        return deleted

    def _delete_batch(self, batch: builtins.list[str]) -> tuple[int, dict[str, str]]:
        """Delete up to 1000 keys. Keys refused with a transient code are retried under the
        policy; whatever is still refused at the end is returned as failed (key -> reason)."""
        pending = builtins.list(batch)
        failed: dict[str, str] = {}
        deleted = 0
        per_key = False  # did the last attempt fail on some keys only (not the whole request)?

        def attempt() -> None:
            nonlocal pending, deleted, per_key
            per_key = False
            resp = self._client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in pending], "Quiet": True}
            )
            errors = {e["Key"]: (str(e.get("Code", "")), str(e.get("Message", ""))) for e in resp.get("Errors", ())}
            deleted += len(pending) - len(errors)
            transient = [k for k, (code, _) in errors.items() if code in TRANSIENT_CODES]
            for k, (code, message) in errors.items():
                if code not in TRANSIENT_CODES:
                    failed[k] = f"{code}: {message}"
            pending = transient
            if transient:
                per_key = True
                code, message = errors[transient[0]]
                raise TemporaryError(f"{len(transient)} keys refused: {code}: {message}")

        try:
            self._call("DeleteObjects", batch[0] if batch else "", attempt)
        except TemporaryError as e:
            if not per_key:
                raise
            failed.update((k, e.message) for k in pending)
        return deleted, failed

    def abort_uploads(self, prefix: str) -> int:
        aborted = 0
        key_marker: str | None = None
        upload_marker: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if key_marker:
                kwargs["KeyMarker"] = key_marker
            if upload_marker:
                kwargs["UploadIdMarker"] = upload_marker
            page = self._call(
                "ListMultipartUploads", prefix, functools.partial(self._client.list_multipart_uploads, **kwargs)
            )
            for u in page.get("Uploads", ()):
                if self._abort(u["Key"], u["UploadId"]):
                    aborted += 1
            key_marker, upload_marker = page.get("NextKeyMarker"), page.get("NextUploadIdMarker")
            if not page.get("IsTruncated") or not (key_marker or upload_marker):
                return aborted

    def _abort(self, key: str, upload_id: str) -> bool:
        def abort() -> bool:
            try:
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except ClientError as e:
                if _code(e) in ("NoSuchUpload", "404"):  # completed or aborted meanwhile
                    return False
                raise
            return True

        return self._call("AbortMultipartUpload", key, abort)


def _lost_condition(e: ClientError) -> bool:
    return _code(e) in PRECONDITION_CODES or _status(e) == 412


def _quoted(etag: str) -> str:
    return etag if etag.startswith('"') else f'"{etag}"'


class _S3Reader(io.RawIOBase):
    """The raw stream under ``S3Store.open``: reads the body, resumes after a broken stream."""

    def __init__(self, store: S3Store, key: str) -> None:
        super().__init__()
        self._store = store
        self._key = key
        resp = store._get(key)
        self._body: Any = resp["Body"]
        self._etag = _strip_etag(resp["ETag"])
        self._size = int(resp.get("ContentLength", 0))
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._pos >= self._size or not len(view):
            return 0
        what = f"S3 GetObject on {self._store.url(self._key)} at byte {self._pos}"

        def attempt() -> bytes:
            if self._body is None:
                get = self._store._get_once(self._key, start=self._pos, etag=self._etag)
                self._body = self._store._guarded(what, get)()["Body"]
            try:
                return bytes(self._body.read(len(view)))
            except (BotoConnectionError, HTTPClientError, IncompleteReadError) as e:
                self._close_body()
                raise TemporaryError(self._store._redact(f"{type(e).__name__}: {e}")) from e

        try:
            data = self._store.retry.run(what, attempt)
        except PreconditionFailed as e:
            raise StoreError(f"{what}: the object changed while it was read") from e
        n = len(data)
        view[:n] = data
        self._pos += n
        STATS.read(n)
        return n

    def _close_body(self) -> None:
        body, self._body = self._body, None
        if body is not None:
            with contextlib.suppress(Exception):  # a broken stream may fail to close too
                body.close()

    def close(self) -> None:
        self._close_body()
        super().close()
