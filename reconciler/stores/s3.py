"""The S3 store (AWS S3 and S3-compatible servers such as moto's server mode), on boto3.

One boto3 client per store (boto3 clients are thread-safe), made from a private session so
stores built on several threads do not share boto3's default session; the sessions share one
botocore loader, so that botocore's S3 model is parsed once a process, not once a store. botocore's own retries
are off: every request goes through the one ``RetryPolicy`` (``reconciler.retry``), and every
botocore error is mapped by ``ERRORS`` below. Messages name ``s3://bucket/key`` and never
contain a credential.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import functools
import hashlib
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, IncompleteReadError
from botocore.exceptions import ConnectionError as BotoConnectionError

from ..errors import BucketMissing, ObjectMissing, PreconditionFailed, StoreError, TemporaryError
from ..model import Bucket
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
    empty_download,
)
from .errormap import SERVER_ERRORS, TOO_MANY_REQUESTS, ErrorTable, Failure, row
from .stats import STATS

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

#: what S3 answers, what we raise (the first row that matches; else ``StoreError``)
ERRORS = ErrorTable(
    row(BucketMissing, codes={"NoSuchBucket"}),
    row(ObjectMissing, codes={"NoSuchKey", "NotFound", "404"}),  # "404": a HEAD has no body
    row(TemporaryError, codes=TRANSIENT_CODES),
    row(TemporaryError, statuses=TOO_MANY_REQUESTS | SERVER_ERRORS),
    row(PreconditionFailed, codes={"PreconditionFailed", "ConditionalRequestConflict"}),
    row(PreconditionFailed, statuses={412}),
    row(TemporaryError, exceptions=(BotoConnectionError, HTTPClientError, IncompleteReadError)),
)

#: DeleteObjects takes at most this many keys a request
DELETE_BATCH = 1000


def _strip_etag(etag: str) -> str:
    return etag.strip('"')


def _quoted(etag: str) -> str:
    return etag if etag.startswith('"') else f'"{etag}"'


_loader_lock = threading.Lock()
_loader: Any = None


def _session(**options: Any) -> boto3.session.Session:
    """A private session (its own credentials and configuration) on the loader every store of
    the process shares: botocore's service model, megabytes of JSON, then costs one parse a process
    (about 60 ms here) instead of one a store."""
    global _loader
    core = botocore.session.get_session()
    with _loader_lock:
        if _loader is None:
            _loader = core.get_component("data_loader")
        else:
            core.register_component("data_loader", _loader)
        session = boto3.session.Session(botocore_session=core, **options)
        paths = _loader.search_paths  # boto3 adds its data folder once a session: once is enough
        paths[:] = list(dict.fromkeys(paths))
    return session


def _code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", "") or "")


#: (bucket, list, get, head, put, delete, delete_batch): the names in messages and in --stats
OPS = Operations("HeadBucket", "ListObjectsV2", "GetObject", "HeadObject", "PutObject", "DeleteObject", "DeleteObjects")


class S3Store(BaseStore):
    """A ``Store`` on one S3 bucket (``read_chunk`` None: ``open`` reads with one GET, resumed
    with a ranged GET on the same ETag where the stream broke)."""

    provider, scheme, ops, error_table = "S3", "s3", OPS, ERRORS
    native_errors = (ClientError, BotoCoreError)
    max_delete_batch = DELETE_BATCH

    #: a CopyObject copies at most 5 GiB; larger objects are copied in parts (UploadPartCopy)
    copy_object_limit: int = 5 * 1024**3
    copy_part: int = 512 * 1024**2

    def _connect(self, bucket: Bucket) -> None:
        creds = bucket.credentials
        self._place = (bucket.endpoint or "", creds.access_key_id or "")
        self._add_secrets([creds.secret_access_key, creds.session_token, creds.access_key_id])
        if creds.access_key_id and creds.secret_access_key:
            session = _session(
                aws_access_key_id=creds.access_key_id,
                aws_secret_access_key=creds.secret_access_key,
                aws_session_token=creds.session_token or None,
                region_name=bucket.region or None,
            )
        else:  # boto3's default chain (env, profile, instance role); also when only role_arn is set
            session = _session(region_name=bucket.region or None)
        options: dict[str, Any] = {
            "retries": {"total_max_attempts": 1, "mode": "standard"},  # the one retry policy is ours
            "connect_timeout": self.connect_timeout,
            "read_timeout": self.read_timeout,
            "max_pool_connections": self.max_pool_connections,
        }
        if bucket.endpoint:
            # S3-compatible servers: path-style addressing, and no checksums they may not know
            options["s3"] = {"addressing_style": "path"}
            options["request_checksum_calculation"] = "when_required"
            options["response_checksum_validation"] = "when_required"
        self._client: Any = session.client("s3", endpoint_url=bucket.endpoint or None, config=Config(**options))

    def _describe(self, e: BaseException) -> Failure:
        if not isinstance(e, ClientError):
            return super()._describe(e)
        code = _code(e)
        status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = str(e.response.get("Error", {}).get("Message", "") or "").strip()
        return Failure(code, status, f"{code or status}: {message}" if message else (code or str(status)), e)

    # ----------------------------------------------------------------------------------------
    # the primitives
    # ----------------------------------------------------------------------------------------

    def _bucket_exists(self) -> bool:
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as e:
            if _code(e) in ("404", "NoSuchBucket", "NotFound"):
                return False
            raise
        return True

    def _list_page(self, prefix: str, delimiter: str | None, token: str | None) -> Page:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        if token:
            kwargs["ContinuationToken"] = token
        if self.page_size:
            kwargs["MaxKeys"] = self.page_size
        page = self._client.list_objects_v2(**kwargs)
        objects = [
            ObjectInfo(key=o["Key"], size=int(o["Size"]), etag=_strip_etag(o["ETag"]), last_modified=o["LastModified"])
            for o in page.get("Contents", ())
        ]
        folders = [p["Prefix"] for p in page.get("CommonPrefixes", ())]
        return Page(objects, folders, page.get("NextContinuationToken") if page.get("IsTruncated") else None)

    def _get(self, key: str) -> tuple[bytes, str]:
        resp = self._client.get_object(Bucket=self.bucket, Key=key)
        with resp["Body"] as body:
            return body.read(), _strip_etag(resp["ETag"])

    def _head(self, key: str) -> bool:
        self._client.head_object(Bucket=self.bucket, Key=key)
        return True

    def _download(self, key: str, start: int, etag: str | None) -> Download:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if self.read_chunk:
            kwargs["Range"] = f"bytes={start}-{start + self.read_chunk - 1}"
        elif start:
            kwargs["Range"] = f"bytes={start}-"
        if etag:
            kwargs["IfMatch"] = _quoted(etag)
        try:
            resp = self._client.get_object(**kwargs)
        except ClientError as e:
            if etag is None and _code(e) == "InvalidRange":  # a range of an empty object
                return empty_download()
            raise
        content_range = str(resp.get("ContentRange") or "")
        size = int(content_range.rsplit("/", 1)[1]) if "/" in content_range else int(resp.get("ContentLength", 0))
        return Download(resp["Body"], _strip_etag(resp["ETag"]), size)

    def _put(self, key: str, data: bytes, *, if_absent: bool = False, if_match: str | None = None) -> str:
        cond: dict[str, str] = {}
        if if_absent:
            cond["IfNoneMatch"] = "*"
        elif if_match:
            cond["IfMatch"] = _quoted(if_match)
        # Content-MD5 always: a bucket with an Object Lock default retention refuses a PUT without
        # a checksum (MissingUploadObjectWithObjectLockHeaders), and S3-compatible endpoints are
        # configured to send no other checksum
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
        return _strip_etag(
            self._client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentMD5=md5, **cond)["ETag"]
        )

    def _delete(self, key: str, etag: str | None) -> None:
        cond = {"IfMatch": _quoted(etag)} if etag else {}
        self._client.delete_object(Bucket=self.bucket, Key=key, **cond)

    def _delete_keys(self, keys: builtins.list[str]) -> Mapping[str, Failure | None]:
        resp = self._client.delete_objects(
            Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
        )
        answers: dict[str, Failure | None] = dict.fromkeys(keys)
        for e in resp.get("Errors", ()):
            code, message = str(e.get("Code", "")), str(e.get("Message", ""))
            answers[e["Key"]] = Failure(code, cause=f"{code}: {message}")
        return answers

    # ----------------------------------------------------------------------------------------
    # copies: multipart uploads of a stream, CopyObject and UploadPartCopy
    # ----------------------------------------------------------------------------------------

    def _write_parts(self, key: str, parts: Iterator[bytes], size: int) -> str:
        create = functools.partial(self._client.create_multipart_upload, Bucket=self.bucket, Key=key)
        upload_id = self._call("CreateMultipartUpload", key, create)["UploadId"]
        try:
            done = []
            for n, data in enumerate(parts, start=1):
                put = functools.partial(
                    self._client.upload_part, Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=data
                )
                done.append({"PartNumber": n, "ETag": self._call("UploadPart", key, put)["ETag"]})
            return self._complete(key, upload_id, done)
        except BaseException:
            with contextlib.suppress(Exception):  # the failure that matters is the one raised
                self._abort(key, upload_id)
            raise

    def _complete(self, key: str, upload_id: str, parts: builtins.list[dict[str, Any]]) -> str:
        complete = functools.partial(
            self._client.complete_multipart_upload,
            Bucket=self.bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
        )
        return _strip_etag(self._call("CompleteMultipartUpload", key, complete)["ETag"])

    def can_copy_from(self, source: Any) -> bool:
        return isinstance(source, S3Store) and source._place == self._place

    def copy_from(self, source: Any, source_key: str, key: str, size: int) -> str:
        assert isinstance(source, S3Store)
        src = {"Bucket": source.bucket, "Key": source_key}
        if size <= self.copy_object_limit:
            copy = functools.partial(self._client.copy_object, Bucket=self.bucket, Key=key, CopySource=src)
            return _strip_etag(self._call("CopyObject", key, copy)["CopyObjectResult"]["ETag"])
        create = functools.partial(self._client.create_multipart_upload, Bucket=self.bucket, Key=key)
        upload_id = self._call("CreateMultipartUpload", key, create)["UploadId"]
        try:
            done = []
            for n, start in enumerate(range(0, size, self.copy_part), start=1):
                end = min(start + self.copy_part, size) - 1
                part = functools.partial(
                    self._client.upload_part_copy,
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=n,
                    CopySource=src,
                    CopySourceRange=f"bytes={start}-{end}",
                )
                etag = self._call("UploadPartCopy", key, part)["CopyPartResult"]["ETag"]
                done.append({"PartNumber": n, "ETag": etag})
            return self._complete(key, upload_id, done)
        except BaseException:
            with contextlib.suppress(Exception):  # the failure that matters is the one raised
                self._abort(key, upload_id)
            raise

    # ----------------------------------------------------------------------------------------
    # multipart uploads: S3's own
    # ----------------------------------------------------------------------------------------

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

    # ----------------------------------------------------------------------------------------
    # versions and Object Lock
    # ----------------------------------------------------------------------------------------

    def _lock_configuration(self) -> LockConfiguration:
        def versioning() -> bool:
            status = self._client.get_bucket_versioning(Bucket=self.bucket).get("Status")
            return status in ("Enabled", "Suspended")  # a suspended bucket keeps its old versions

        def lock() -> dict[str, Any]:
            try:
                got = self._client.get_object_lock_configuration(Bucket=self.bucket)
            except ClientError as e:
                if _code(e) == "ObjectLockConfigurationNotFoundError":
                    return {}
                raise
            return dict(got.get("ObjectLockConfiguration") or {})

        versioned = self._call("GetBucketVersioning", "", versioning)
        config = self._call("GetObjectLockConfiguration", "", lock)
        enabled = config.get("ObjectLockEnabled") == "Enabled"
        default = (config.get("Rule") or {}).get("DefaultRetention") or {}
        mode = str(default["Mode"]).lower() if default.get("Mode") else None
        days = int(default.get("Days") or 0) or (int(default.get("Years") or 0) * 365) or None
        return LockConfiguration(versioning=versioned or enabled, lock_enabled=enabled, mode=mode, days=days)

    def list_versions(self, prefix: str) -> Iterator[ObjectVersion]:
        key_marker: str | None = None
        version_marker: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if key_marker:
                kwargs["KeyMarker"] = key_marker
            if version_marker:
                kwargs["VersionIdMarker"] = version_marker
            if self.page_size:
                kwargs["MaxKeys"] = self.page_size
            page = self._call(
                "ListObjectVersions", prefix, functools.partial(self._client.list_object_versions, **kwargs)
            )
            entries = [
                ObjectVersion(
                    v["Key"], str(v["VersionId"]), int(v.get("Size", 0)), bool(v["IsLatest"]), False, v["LastModified"]
                )
                for v in page.get("Versions", ())
            ] + [
                ObjectVersion(m["Key"], str(m["VersionId"]), 0, bool(m["IsLatest"]), True, m["LastModified"])
                for m in page.get("DeleteMarkers", ())
            ]
            entries.sort(key=lambda v: (v.key, not v.is_latest, -v.last_modified.timestamp()))
            yield from entries
            key_marker, version_marker = page.get("NextKeyMarker"), page.get("NextVersionIdMarker")
            if not page.get("IsTruncated") or not (key_marker or version_marker):
                return

    def delete_versions(self, versions: Iterable[tuple[str, str]]) -> dict[tuple[str, str], VersionRefusal]:
        unique = builtins.list(dict.fromkeys(versions))
        refused: dict[tuple[str, str], VersionRefusal] = {}
        for i in range(0, len(unique), self.delete_batch):
            refused.update(self._delete_version_batch(unique[i : i + self.delete_batch]))
        return refused

    def _delete_version_batch(self, batch: builtins.list[tuple[str, str]]) -> dict[tuple[str, str], VersionRefusal]:
        pending = builtins.list(batch)
        refused: dict[tuple[str, str], VersionRefusal] = {}

        def attempt() -> None:
            nonlocal pending
            resp = self._client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k, "VersionId": v} for k, v in pending], "Quiet": True},
            )
            again: builtins.list[tuple[str, str]] = []
            for e in resp.get("Errors", ()):
                code, message = str(e.get("Code", "")), str(e.get("Message", ""))
                failure = Failure(code, cause=f"{code}: {message}")
                # some servers (moto) leave VersionId out of an error: it then stands for every
                # version of that key in the batch
                hit = [(k, v) for k, v in pending if k == e.get("Key") and v == e.get("VersionId", v)]
                outcome = self.error_table.classify(failure)
                for kv in hit:
                    if outcome is ObjectMissing or code == "NoSuchVersion":
                        continue
                    if outcome is TemporaryError:
                        again.append(kv)
                    else:
                        refused[kv] = VersionRefusal(code, self._redact(failure.cause))
            pending = again
            if again:
                raise TemporaryError(f"{len(again)} version deletes refused for a passing reason")

        try:
            self._call("DeleteObjects", batch[0][0] if batch else "", attempt)
        except TemporaryError as e:
            if not pending:
                raise
            refused.update((kv, VersionRefusal("TemporaryError", e.message)) for kv in pending)
        return refused

    def head_retention(self, key: str, version_id: str | None = None) -> ObjectRetention | None:
        # moto answers GetObjectRetention with a 500; HEAD carries the same two fields
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        try:
            resp = self._call(self.ops.head, key, functools.partial(self._client.head_object, **kwargs))
        except ObjectMissing:
            return None
        except StoreError as e:
            if "405" in e.message or "MethodNotAllowed" in e.message:  # the version is a delete marker
                return None
            raise
        mode = resp.get("ObjectLockMode")
        return ObjectRetention(str(mode).lower() if mode else None, resp.get("ObjectLockRetainUntilDate"))

    def read_version(self, key: str, version_id: str) -> bytes | None:
        def get() -> bytes:
            resp = self._client.get_object(Bucket=self.bucket, Key=key, VersionId=version_id)
            with resp["Body"] as body:
                data: bytes = body.read()
            STATS.read(len(data))
            return data

        try:
            return self._call(self.ops.get, key, get)
        except ObjectMissing:
            return None
        except StoreError as e:  # a delete marker answers 405, a version that is not there NoSuchVersion
            if any(w in e.message for w in ("405", "MethodNotAllowed", "NoSuchVersion")):
                return None
            raise

    def list_version_folders(self, prefix: str) -> builtins.list[str]:
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        names: set[str] = set()
        key_marker: str | None = None
        version_marker: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "Delimiter": "/"}
            if key_marker:
                kwargs["KeyMarker"] = key_marker
            if version_marker:
                kwargs["VersionIdMarker"] = version_marker
            page = self._call(
                "ListObjectVersions", prefix, functools.partial(self._client.list_object_versions, **kwargs)
            )
            names.update(n for p in page.get("CommonPrefixes", ()) if (n := p["Prefix"][len(prefix) :].rstrip("/")))
            key_marker, version_marker = page.get("NextKeyMarker"), page.get("NextVersionIdMarker")
            if not page.get("IsTruncated") or not (key_marker or version_marker):
                return sorted(names)
