"""The S3 store (AWS S3 and S3-compatible servers such as moto's server mode), on boto3.

One boto3 client per store (boto3 clients are thread-safe), made from a private session so
stores built on several threads do not share boto3's default session. botocore's own retries
are off: every request goes through the one ``RetryPolicy`` (``reconciler.retry``), and every
botocore error is mapped by ``ERRORS`` below. Messages name ``s3://bucket/key`` and never
contain a credential.
"""

from __future__ import annotations

import builtins
import functools
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, IncompleteReadError
from botocore.exceptions import ConnectionError as BotoConnectionError

from ..errors import BucketMissing, ObjectMissing, PreconditionFailed, TemporaryError
from ..model import Bucket
from .base import BaseStore, Download, ObjectInfo, Operations, Page, empty_download
from .errormap import SERVER_ERRORS, TOO_MANY_REQUESTS, ErrorTable, Failure, row

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

    def _connect(self, bucket: Bucket) -> None:
        creds = bucket.credentials
        self._add_secrets([creds.secret_access_key, creds.session_token, creds.access_key_id])
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
        return _strip_etag(self._client.put_object(Bucket=self.bucket, Key=key, Body=data, **cond)["ETag"])

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
