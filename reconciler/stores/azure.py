"""The Azure Blob Storage store (Azure, and Azurite, Microsoft's emulator), on azure-storage-blob.

The bucket's ``bucket`` is the container. Credentials are a ``connection_string``, or an
``account_name`` + ``account_key`` (the account URL is the bucket's ``endpoint`` when set — for
Azurite ``http://127.0.0.1:PORT/devstoreaccount1`` — else ``https://<account>.blob.core.windows.net``).
There is no ambient-credential chain: azure-identity is not a dependency, so one of the two forms
is required.

One ``ContainerClient`` per store (the SDK's clients are thread-safe). The SDK's own retries are
off (``retry_total=0``): every request goes through the one ``RetryPolicy`` (``reconciler.retry``),
and every SDK error is mapped by ``ERRORS`` below. Messages name ``azure://container/key`` and never
contain the account key, a SAS signature or the connection string.

Server-side copies between two containers of one storage account ("copy from URL"): the source
blob's URL carries a read-only SAS signed with the source's account key (valid for minutes, made
per request), or the SAS of its connection string. Up to ``copy_object_limit`` (256 MiB, Azure's
limit) one Copy Blob From URL (``start_copy_from_url(requires_sync=True)``) copies a blob; above,
Put Block From URL per ``copy_part`` range (``stage_block_from_url``) and one Put Block List, so a
copy cut short is never committed. Put Blob From URL (``upload_blob_from_url``, one request up to
5000 MiB) is not used: Azurite 3.37 answers it ``APINotImplemented``, and what the tests cannot run
is not shipped.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import functools
import io
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import requests
from azure.core import MatchConditions
from azure.core.exceptions import AzureError, HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.storage.blob import (
    BlobBlock,
    BlobPrefix,
    BlobSasPermissions,
    BlobServiceClient,
    ContainerClient,
    generate_blob_sas,
)
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ..errors import BucketMissing, ObjectMissing, PreconditionFailed, ReconcilerError, StoreError, TemporaryError
from ..model import Bucket
from .base import BaseStore, Download, ObjectInfo, Operations, Page, empty_download, first_line
from .errormap import NO_STATUS, SERVER_ERRORS, TOO_MANY_REQUESTS, ErrorTable, Failure, Refused, row

#: what Azure answers, what we raise (the first row that matches; else ``StoreError``)
ERRORS = ErrorTable(
    row(BucketMissing, codes={"ContainerNotFound"}),
    row(ObjectMissing, codes={"BlobNotFound"}),
    row(TemporaryError, codes={"ServerBusy", "InternalError", "OperationTimedOut", "ServiceUnavailable"}),
    row(TemporaryError, codes={"TooManyRequests"}),
    row(TemporaryError, statuses=TOO_MANY_REQUESTS | SERVER_ERRORS),
    # 412 ConditionNotMet; 409 BlobAlreadyExists is how a create that lost is answered
    row(PreconditionFailed, codes={"ConditionNotMet", "BlobAlreadyExists", "TargetConditionNotMet"}),
    row(PreconditionFailed, statuses={412}),
    # connection refused/reset, timeouts, a body cut short (an HttpResponseError without a status)
    row(TemporaryError, exceptions=(ServiceRequestError, ServiceResponseError)),
    row(TemporaryError, exceptions=(HttpResponseError,), statuses={NO_STATUS}),
)

#: a Blob Batch request takes at most this many sub-requests
DELETE_BATCH = 256

#: most blobs a List Blobs page returns (Azure's maximum)
MAX_PAGE = 5000

#: bytes fetched per ranged GET by ``open()``
READ_CHUNK = 4 * 1024 * 1024

#: the largest blob one Copy Blob From URL copies (Azure's limit); larger ones go by blocks
COPY_BLOB_LIMIT = 256 * 1024 * 1024
#: bytes per Put Block From URL of a larger blob
COPY_BLOCK = 100 * 1024 * 1024
#: how long the read-only SAS of a copy's source is valid (one is made per request)
COPY_SAS_LIFETIME = timedelta(minutes=30)

# secrets inside connection strings and SAS tokens, wherever they show up in a message
_CONN_SECRET = re.compile(r"(?P<head>(?:AccountKey|SharedAccessSignature|SharedAccessKey)=)[^;'\"\s]+", re.I)
_SAS_SIGNATURE = re.compile(r"(?P<head>[?&]sig=)[^&'\"\s]+", re.I)
_SECRETS = (_CONN_SECRET, _SAS_SIGNATURE)


def _strip_etag(etag: str | None) -> str:
    return (etag or "").strip('"')


def _quoted(etag: str) -> str:
    return etag if etag.startswith('"') else f'"{etag}"'


def _if_match(etag: str | None) -> dict[str, Any]:
    return {"etag": _quoted(etag), "match_condition": MatchConditions.IfNotModified} if etag else {}


def _code(e: HttpResponseError) -> str:
    """The Azure error code (``x-ms-error-code``) of an SDK error, as a plain string."""
    code: Any = getattr(e, "error_code", None)
    if code is None and e.response is not None:
        code = cast(Any, e.response).headers.get("x-ms-error-code")
    return str(getattr(code, "value", code) or "")


def _first_line(text: str) -> str:
    line = first_line(text)
    # get_blob_properties (a HEAD, no body) words it "Operation returned an invalid status '...'"
    m = re.fullmatch(r"Operation returned an invalid status '(.*)'", line)
    return m.group(1) if m else line


#: (bucket, list, get, head, put, delete, delete_batch): the names in messages and in --stats
OPS = Operations(
    "GetContainerProperties", "ListBlobs", "GetBlob", "GetBlobProperties", "PutBlob", "DeleteBlob", "BlobBatch"
)


class AzureStore(BaseStore):
    """A ``Store`` on one Azure Blob Storage container. Keys are full blob names (prefix included)."""

    provider, scheme, noun, ops = "Azure", "azure", "container", OPS
    error_table, native_errors = ERRORS, (AzureError,)
    secret_patterns = (_SAS_SIGNATURE,)  # connection-string secrets: reconciler.redact knows them
    max_delete_batch, default_page_size, default_read_chunk = DELETE_BATCH, MAX_PAGE, READ_CHUNK

    def _connect(self, bucket: Bucket) -> None:
        conn = bucket.credentials.connection_string
        self._add_secrets([conn, bucket.credentials.account_key])
        if conn:  # the values inside it too, wherever a message quotes one
            self._add_secrets(m.group(0)[len(m.group("head")) :] for p in _SECRETS for m in p.finditer(conn))
        self.container = bucket.bucket
        options: dict[str, Any] = {
            "session": _session(self.max_pool_connections),
            # the one retry policy is ours
            "retry_total": 0,
            "retry_connect": 0,
            "retry_read": 0,
            "retry_status": 0,
            "connection_timeout": self.connect_timeout,
            "read_timeout": self.read_timeout,
        }
        service = self._service(bucket, options)
        self._client: ContainerClient = service.get_container_client(self.container)
        # what a server-side copy needs: the storage account, and a key to sign a source's SAS
        self._account_url = service.primary_endpoint.split("?", 1)[0].rstrip("/")
        credential = service.credential
        key = getattr(credential, "account_key", None)
        self._shared_key = (str(credential.account_name), str(key)) if key else None

    def _service(self, bucket: Bucket, options: dict[str, Any]) -> BlobServiceClient:
        creds, where = bucket.credentials, f"bucket {bucket.name}"
        if creds.connection_string:
            try:
                return BlobServiceClient.from_connection_string(creds.connection_string, **options)
            except (ValueError, TypeError, AzureError) as e:
                raise ReconcilerError(
                    f"the Azure connection string of container {self.container} is not valid: {self._redact(str(e))}",
                    where,
                ) from None
        if creds.account_name and creds.account_key:
            try:
                base64.b64decode(creds.account_key, validate=True)
            except (binascii.Error, ValueError):
                raise ReconcilerError(
                    f"the Azure account_key of account {creds.account_name} is not valid base64", where
                ) from None
            account_url = bucket.endpoint or f"https://{creds.account_name}.blob.core.windows.net"
            try:
                return BlobServiceClient(
                    account_url,
                    credential={"account_name": creds.account_name, "account_key": creds.account_key},
                    **options,
                )
            except (ValueError, TypeError, AzureError) as e:
                raise ReconcilerError(
                    f"cannot use the Azure account URL {account_url}: {self._redact(str(e))}", where
                ) from None
        raise ReconcilerError(
            f"Azure container {self.container} needs credentials: set connection_string, "
            "or account_name and account_key",
            where,
        )

    def _describe(self, e: BaseException) -> Failure:
        if isinstance(e, HttpResponseError) and e.status_code:
            code, status = _code(e), int(e.status_code)
            message = _first_line(str(e.reason or "") if not e.message else e.message)
            return Failure(code, status, f"{code or status}: {message}" if message else (code or str(status)), e)
        return Failure(cause=f"{type(e).__name__}: {_first_line(str(e))}", error=e)

    def _blob(self, key: str) -> Any:
        return self._client.get_blob_client(key)

    # ----------------------------------------------------------------------------------------
    # the primitives
    # ----------------------------------------------------------------------------------------

    def _bucket_exists(self) -> bool:
        try:
            self._client.get_container_properties()
        except HttpResponseError as e:
            if _code(e) == "ContainerNotFound" or (e.status_code == 404 and not _code(e)):
                return False
            raise
        return True

    def _list_page(self, prefix: str, delimiter: str | None, token: str | None) -> Page:
        name, size = prefix or None, self.page_size
        listing: Any
        if delimiter:
            listing = self._client.walk_blobs(name_starts_with=name, delimiter=delimiter, results_per_page=size)
        else:
            listing = self._client.list_blobs(name_starts_with=name, results_per_page=size)
        pages: Any = listing.by_page(continuation_token=token)
        items = builtins.list(next(pages))
        objects = [
            ObjectInfo(key=b.name, size=int(b.size or 0), etag=_strip_etag(b.etag), last_modified=b.last_modified)
            for b in items
            if not isinstance(b, BlobPrefix)
        ]
        folders = [p.name for p in items if isinstance(p, BlobPrefix)]
        return Page(objects, folders, pages.continuation_token or None)

    def _get(self, key: str) -> tuple[bytes, str]:
        downloader = self._blob(key).download_blob()
        return downloader.readall(), _strip_etag(downloader.properties.etag)

    def _head(self, key: str) -> bool:
        self._blob(key).get_blob_properties()
        return True

    def _download(self, key: str, start: int, etag: str | None) -> Download:
        try:
            downloader = self._blob(key).download_blob(offset=start, length=self.read_chunk, **_if_match(etag))
        except HttpResponseError as e:
            if etag is None and e.status_code == 416:  # a range of an empty blob
                return empty_download()
            raise
        data = downloader.readall()
        content_range = str(downloader.properties.content_range or "")  # "bytes 0-99/1234"
        size = int(content_range.rsplit("/", 1)[1]) if "/" in content_range else None
        return Download(io.BytesIO(data), _strip_etag(downloader.properties.etag), size)

    def _put(self, key: str, data: bytes, *, if_absent: bool = False, if_match: str | None = None) -> str:
        # a create is what upload_blob(overwrite=False) sends, If-None-Match: * (the SDK refuses an
        # explicit etag='*' + MatchConditions.IfMissing on uploads)
        blob = self._blob(key)
        resp = blob.upload_blob(data, length=len(data), overwrite=not if_absent, **_if_match(if_match))
        return _strip_etag(resp["etag"])

    def _delete(self, key: str, etag: str | None) -> None:
        self._blob(key).delete_blob(delete_snapshots="include", **_if_match(etag))

    def _delete_keys(self, keys: builtins.list[str]) -> Mapping[str, Failure | None]:
        """One Blob Batch (Azurite implements Blob Batch too)."""
        parts = builtins.list(self._client.delete_blobs(*keys, delete_snapshots="include", raise_on_any_failure=False))
        if len(parts) != len(keys):  # the batch itself was refused
            status = int(parts[0].status_code) if parts else NO_STATUS
            code = str(parts[0].headers.get("x-ms-error-code", "") or "") if parts else ""
            raise Refused(Failure(code, status, f"{code or status}: the batch request was refused"))
        answers: dict[str, Failure | None] = {}
        for key, part in zip(keys, parts, strict=True):
            status = int(part.status_code)
            code = str(part.headers.get("x-ms-error-code", "") or "")
            ok = 200 <= status < 300
            answers[key] = None if ok else Failure(code, status, f"{code or status}: {part.reason or ''}".strip())
        return answers

    def _write_parts(self, key: str, parts: Iterator[bytes], size: int) -> str:
        """Put Block per part, then Put Block List: a blob cut short is never committed."""
        blob = self._blob(key)
        ids: builtins.list[str] = []
        for n, data in enumerate(parts):
            block = base64.b64encode(f"{n:08d}".encode()).decode()
            self._call("PutBlock", key, functools.partial(blob.stage_block, block, data, length=len(data)))
            ids.append(block)
        commit = functools.partial(blob.commit_block_list, [BlobBlock(block_id=i) for i in ids])
        return _strip_etag(self._call("PutBlockList", key, commit)["etag"])

    # ----------------------------------------------------------------------------------------
    # server-side copies: copy from URL within one storage account
    # ----------------------------------------------------------------------------------------

    copy_object_limit: int = COPY_BLOB_LIMIT
    copy_part: int = COPY_BLOCK

    def _can_sign(self) -> bool:
        return self._shared_key is not None or "sig=" in self._client.url

    def can_copy_from(self, source: Any) -> bool:
        """Within one storage account, from a source that can give a read SAS. Across accounts
        Azure copies from URL too, but Azurite only within one instance: not used yet."""
        return isinstance(source, AzureStore) and source._account_url == self._account_url and source._can_sign()

    def _source_url(self, key: str) -> str:
        """The blob's URL with a read-only SAS (the connection string's own SAS, if it has one)."""
        url = str(self._blob(key).url)
        if self._shared_key is None:
            return url
        name, account_key = self._shared_key
        now = datetime.now(UTC)
        sas = generate_blob_sas(
            name,
            self.container,
            key,
            account_key=account_key,
            permission=BlobSasPermissions(read=True),
            start=now - timedelta(minutes=5),  # clock skew between us and the service
            expiry=now + COPY_SAS_LIFETIME,
        )
        return url.split("?", 1)[0] + "?" + sas

    def copy_from(self, source: Any, source_key: str, key: str, size: int) -> str:
        assert isinstance(source, AzureStore)
        blob = self._blob(key)
        if size <= self.copy_object_limit:

            def copy() -> Any:
                return blob.start_copy_from_url(source._source_url(source_key), requires_sync=True)

            answer = self._call("CopyBlobFromURL", key, copy)
            if str(answer.get("copy_status")) != "success":  # a synchronous copy ends before it answers
                raise StoreError(f"{self._what('CopyBlobFromURL', key)}: copy status {answer.get('copy_status')}")
            return _strip_etag(answer["etag"])
        ids: builtins.list[str] = []
        for n, start in enumerate(range(0, size, self.copy_part)):
            block = base64.b64encode(f"{n:08d}".encode()).decode()
            length = min(self.copy_part, size - start)

            def stage(block: str = block, start: int = start, length: int = length) -> Any:
                url = source._source_url(source_key)
                return blob.stage_block_from_url(block, url, source_offset=start, source_length=length)

            self._call("PutBlockFromURL", key, stage)
            ids.append(block)
        commit = functools.partial(blob.commit_block_list, [BlobBlock(block_id=i) for i in ids])
        return _strip_etag(self._call("PutBlockList", key, commit)["etag"])

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
