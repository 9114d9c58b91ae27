"""The Google Cloud Storage store, on google-cloud-storage (GCS's JSON API).

ClickHouse writes into GCS through the S3-interoperable XML API with HMAC keys (``bucket.endpoint``,
``credentials.hmac_key``/``hmac_secret``, see ``sql.destination_sql``); the reconciler itself reads
and writes with the JSON API and Google credentials: ``credentials.service_account_file``, else
Application Default Credentials. The JSON-API endpoint is, in this order, the bucket's
``gcs_json_endpoint``, the ``STORAGE_EMULATOR_HOST`` environment variable (google-cloud-storage's
own convention for emulators such as fake-gcs-server), else ``https://storage.googleapis.com``.
A plain-``http://`` endpoint, or one from ``STORAGE_EMULATOR_HOST``, is an emulator: requests go
without credentials (a bearer token is never sent in clear text).

The semantics are those of every store with GCS generations as etags: ``ObjectInfo.etag`` is the
object's generation as a string, and every conditional request is an ``ifGenerationMatch``
precondition (0 = "only if absent"). The library's own retries are off (``retry=None`` on every
call): every request goes through the one ``RetryPolicy`` (``reconciler.retry``), each with a
(connect, read) timeout, and every error is mapped by ``ERRORS`` below. Messages name
``gs://bucket/key`` and never contain a credential (the HMAC secret, the service account key).
"""

from __future__ import annotations

import builtins
import email.parser
import functools
import http.client
import io
import json
import os
import re
import threading
import uuid
from collections.abc import Iterator, Mapping
from typing import Any, cast
from urllib.parse import quote

import google.auth
import requests
import urllib3.exceptions
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import AnonymousCredentials
from google.auth.credentials import Credentials as GoogleCredentials
from google.auth.transport.requests import AuthorizedSession
from google.cloud import storage
from google.cloud.storage import exceptions as storage_exceptions
from google.oauth2 import service_account

from ..errors import BucketMissing, ObjectMissing, PreconditionFailed, ReconcilerError, StoreError, TemporaryError
from ..model import Bucket
from .base import BaseStore, ConditionLost, Download, ObjectInfo, Operations, Page, empty_download, first_line
from .errormap import SERVER_ERRORS, TOO_MANY_REQUESTS, ErrorTable, Failure, row

DEFAULT_JSON_ENDPOINT = "https://storage.googleapis.com"

#: google-cloud-storage's convention: ``host:port`` (or a URL) of an emulator
EMULATOR_ENV = "STORAGE_EMULATOR_HOST"

#: what the reconciler needs: read, write and delete objects
SCOPES = ("https://www.googleapis.com/auth/devstorage.read_write",)

#: the JSON API takes at most this many calls in one batch request
DELETE_BATCH = 100

#: the project of emulator requests (fake-gcs-server accepts any)
EMULATOR_PROJECT = "test"

#: errors of the transport: the request may pass when retried
_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    ConnectionError,
    TimeoutError,
    auth_exceptions.TransportError,
    auth_exceptions.TimeoutError,
)

#: a code of ours: a call of a batch that got no answer
NO_ANSWER = "noAnswer"

#: what GCS answers, what we raise (the first row that matches; else ``StoreError``). GCS says
#: which of the object and the bucket a 404 is about in its message only.
ERRORS = ErrorTable(
    row(ObjectMissing, statuses={404}, says="no such object"),
    row(BucketMissing, statuses={404}),
    row(TemporaryError, statuses={408} | TOO_MANY_REQUESTS | SERVER_ERRORS),
    row(PreconditionFailed, statuses={412}),
    row(TemporaryError, codes={NO_ANSWER}),
    row(TemporaryError, exceptions=(storage_exceptions.DataCorruption,)),  # a checksum mismatch: a new download
    row(TemporaryError, exceptions=(auth_exceptions.RefreshError,), codes={"retryable"}),
    row(TemporaryError, exceptions=_TRANSPORT_ERRORS),
)

_METHOD_URL = re.compile(r"^[A-Z]+ \S+: ")


def json_endpoint(bucket: Bucket, override: str | None = None) -> tuple[str, bool]:
    """(JSON-API endpoint, is it an emulator?) for a bucket, per the rules in the module doc."""
    configured = override or getattr(bucket, "gcs_json_endpoint", None)
    from_env = os.environ.get(EMULATOR_ENV, "").strip()
    endpoint = configured or from_env or DEFAULT_JSON_ENDPOINT
    if "://" not in endpoint:  # STORAGE_EMULATOR_HOST is often just host:port
        endpoint = f"http://{endpoint}"
    endpoint = endpoint.rstrip("/")
    emulator = endpoint.startswith("http://") or (not configured and bool(from_env))
    return endpoint, emulator


def _reason_and_detail(e: api_exceptions.GoogleAPICallError) -> tuple[str, str]:
    """GCS's reason (``conditionNotMet``) and message, without the request line the library prepends."""
    first: dict[str, Any] = e.errors[0] if e.errors and isinstance(e.errors[0], dict) else {}
    reason = str(first.get("reason") or e.reason or "")
    detail = _METHOD_URL.sub("", first_line(str(first.get("message") or e.message or "")))
    if detail.startswith("{"):  # uploads and downloads quote GCS's JSON error body
        quoted_reason, detail = _json_error(detail.encode(), detail)
        reason = reason or quoted_reason
    return reason, detail


def _json_error(body: bytes, text: str) -> tuple[str, str]:
    """(reason, message) of a JSON error body of GCS, else ("", ``text``)."""
    try:
        error = json.loads(body).get("error", {}) if body.strip() else {}
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict) or not error:
        return "", text
    errors = error.get("errors") or [{}]
    reason = str(errors[0].get("reason", "") if isinstance(errors[0], dict) else "")
    return reason, str(error.get("message", text))


def _root_cause(e: BaseException) -> BaseException:
    """The innermost cause of a requests/urllib3 connection error (``MaxRetryError.reason``...)."""
    seen: set[int] = set()
    while id(e) not in seen:
        seen.add(id(e))
        inner = getattr(e, "reason", None)
        if not isinstance(inner, BaseException) and e.args and isinstance(e.args[0], BaseException):
            inner = e.args[0]
        if not isinstance(inner, BaseException):
            break
        e = inner
    return e


def _generation(etag: str | None) -> int | None:
    """The generation an etag names, or None if it is not one (generations are positive)."""
    if etag is None or not etag.isdigit():
        return None
    n = int(etag)
    return n if n > 0 else None


#: (bucket, list, get, head, put, delete, delete_batch): the names in messages and in --stats
OPS = Operations(
    "objects.list",
    "objects.list",
    "objects.get",
    "objects.get",
    "objects.insert",
    "objects.delete",
    "batch objects.delete",
)


class GCSStore(BaseStore):
    """A ``Store`` on one GCS bucket. Keys are full object names (the bucket prefix included).

    ``json_endpoint_override`` comes before the bucket's ``gcs_json_endpoint`` and
    ``STORAGE_EMULATOR_HOST`` (tests, embedders). No request is made until the first call.
    """

    provider, scheme, etag_word, ops = "GCS", "gs", "generation", OPS
    error_table, native_errors = ERRORS, (Exception,)
    max_delete_batch, default_read_chunk = DELETE_BATCH, 8 * 1024 * 1024

    def __init__(self, bucket: Bucket, *, json_endpoint_override: str | None = None, **options: Any) -> None:
        self._json_endpoint_override = json_endpoint_override
        super().__init__(bucket, **options)

    def _connect(self, bucket: Bucket) -> None:
        """No request: the client is made on first use (``_client``)."""
        self._service_account_file = bucket.credentials.service_account_file
        # the service account file's path is not a secret; the key inside it is added when it is read
        self._add_secrets(v for v in bucket.credentials.secrets() if v != self._service_account_file)
        self.endpoint, self.emulator = json_endpoint(bucket, self._json_endpoint_override)
        self.timeout = (self.connect_timeout, self.read_timeout)
        self._lock = threading.Lock()
        self._client_: storage.Client | None = None
        self._session: AuthorizedSession | None = None
        self._bucket_ref: storage.Bucket | None = None

    # ----------------------------------------------------------------------------------------
    # plumbing
    # ----------------------------------------------------------------------------------------

    def _credentials(self) -> tuple[GoogleCredentials, str | None]:
        """Credentials and project: none for an emulator, the service account file, else ADC."""
        if self.emulator:
            return AnonymousCredentials(), EMULATOR_PROJECT
        if self._service_account_file:
            return self._service_account(self._service_account_file)
        try:
            creds, project = google.auth.default(scopes=SCOPES)
        except auth_exceptions.DefaultCredentialsError as e:
            raise StoreError(
                f"{self.description}: no Google credentials: set credentials.service_account_file, or Application "
                "Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud auth application-default login): "
                f"{self._redact(str(e))}"
            ) from None
        return creds, project

    def _service_account(self, path: str) -> tuple[GoogleCredentials, str | None]:
        try:
            with open(path, encoding="utf-8") as f:
                info = json.load(f)
        except OSError as e:
            raise StoreError(
                f"{self.description}: cannot read the service account file {path}: {e.strerror or type(e).__name__}"
            ) from None
        except ValueError:
            raise StoreError(f"{self.description}: the service account file {path} is not JSON") from None
        if not isinstance(info, dict):
            raise StoreError(f"{self.description}: the service account file {path} is not a service account key")
        for k in ("private_key", "private_key_id"):
            v = info.get(k)
            if isinstance(v, str):  # and each line of a PEM key, should a message quote one
                self._add_secrets([v, *(line for line in v.splitlines() if len(line) >= 16)])
        try:
            creds = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
        except (ValueError, KeyError) as e:
            raise StoreError(
                f"{self.description}: the service account file {path} is not a usable service account key: "
                f"{self._redact(str(e))}"
            ) from None
        return creds, info.get("project_id")

    def _client(self) -> storage.Client:
        """The client, made on first use (reading credentials may need the network: it is a request)."""
        if self._client_ is not None:
            return self._client_
        with self._lock:
            if self._client_ is None:
                creds, project = self._credentials()
                session = AuthorizedSession(creds)
                adapter = requests.adapters.HTTPAdapter(pool_maxsize=self.max_pool_connections, max_retries=0)
                session.mount("https://", adapter)
                session.mount("http://", adapter)
                client = storage.Client(
                    project=project,
                    credentials=creds,
                    _http=session,
                    client_options={"api_endpoint": self.endpoint},
                )
                # google-cloud-storage 3.x fetches bucket metadata in a background thread (with its
                # own retries) for tracing attributes; that is an unasked request: off
                if hasattr(client, "_bucket_metadata_cache"):
                    client._bucket_metadata_cache = None
                self._session = session
                self._bucket_ref = client.bucket(self.bucket)
                self._client_ = client
            return self._client_

    def _blob(self, key: str, generation: int | None = None) -> storage.Blob:
        self._client()
        assert self._bucket_ref is not None
        return storage.Blob(key, self._bucket_ref, generation=generation)

    def _describe(self, e: BaseException) -> Failure:
        if isinstance(e, (api_exceptions.GoogleAPICallError, storage_exceptions.InvalidResponse)):
            if isinstance(e, api_exceptions.GoogleAPICallError):
                status = int(e.code or 0)
                reason, detail = _reason_and_detail(e)
            else:
                status = int(getattr(getattr(e, "response", None), "status_code", 0) or 0)
                reason, detail = "", str(e.args[0] if e.args else "")
            cause = f"HTTP {status}" + (f" {reason}" if reason else "") + (f": {detail}" if detail else "")
            return Failure(reason, status, cause, e)
        if isinstance(e, storage_exceptions.DataCorruption):
            return Failure(cause=f"DataCorruption: {first_line(str(e))}", error=e)
        if isinstance(e, auth_exceptions.RefreshError):
            if getattr(e, "retryable", False):
                return Failure("retryable", cause=f"RefreshError: {e}", error=e)
            return Failure(cause=f"the Google credentials were refused: {e}", error=e)
        if isinstance(e, auth_exceptions.DefaultCredentialsError):
            return Failure(cause=str(e), error=e)
        if isinstance(e, _TRANSPORT_ERRORS):
            return Failure(cause=f"{type(e).__name__}: {_root_cause(e)}", error=e)
        return Failure(cause=f"{type(e).__name__}: {e}", error=e)

    def _list_blobs(self, prefix: str, delimiter: str | None, token: str | None, size: int | None) -> Page:
        """One page of objects.list (one request, no retry)."""
        it = self._client().list_blobs(
            self.bucket,
            prefix=prefix or None,
            delimiter=delimiter,
            page_token=token,
            page_size=size,
            retry=None,
            timeout=self.timeout,
        )
        page = next(it.pages, None)
        if page is None:
            return Page([], [], None)
        objects = [
            ObjectInfo(
                key=b.name, size=int(b.size or 0), etag=str(b.generation), last_modified=b.updated or b.time_created
            )
            for b in page
        ]
        return Page(objects, builtins.list(getattr(page, "prefixes", ())), it.next_page_token)

    def _bucket_listable(self) -> bool:
        """Does the bucket exist? One objects.list of one name (needs only storage.objects.list)."""
        try:
            self._list_blobs("", None, None, 1)
        except api_exceptions.NotFound:
            return False
        return True

    def _not_found(self, e: api_exceptions.NotFound, what: str) -> ReconcilerError:
        """A 404 of a request on an object: ``ObjectMissing`` or ``BucketMissing``. GCS says which in
        its message; emulators answer a bare "Not Found" for both, and then the bucket is asked
        (this attempt makes one more request)."""
        _, detail = _reason_and_detail(e)
        text = detail.lower()
        if "no such object" in text or ("bucket" not in text and self._bucket_listable()):
            return self._error(ObjectMissing, what, f"HTTP 404: {self._redact(detail)}")
        return self._error(BucketMissing, what, f"HTTP 404: {self._redact(detail)}")

    def _stat(self, key: str, what: str) -> storage.Blob:
        """The object's metadata (objects.get); ``ObjectMissing`` if it does not exist (one attempt)."""
        blob = self._blob(key)
        try:
            blob.reload(projection="noAcl", retry=None, timeout=self.timeout)
        except api_exceptions.NotFound as e:
            raise self._not_found(e, what) from e
        return blob

    # ----------------------------------------------------------------------------------------
    # the primitives
    # ----------------------------------------------------------------------------------------

    def _bucket_exists(self) -> bool:
        return self._bucket_listable()

    def _list_page(self, prefix: str, delimiter: str | None, token: str | None) -> Page:
        return self._list_blobs(prefix, delimiter, token, self.page_size)

    def _get(self, key: str) -> tuple[bytes, str]:
        blob = self._blob(key)
        try:
            # the stored bytes (no decompressive transcoding), checked against GCS's checksum
            data = blob.download_as_bytes(raw_download=True, retry=None, timeout=self.timeout)
        except api_exceptions.NotFound as e:
            raise self._not_found(e, self._what(self.ops.get, key)) from e
        return data, str(blob.generation)

    def _head(self, key: str) -> bool:
        self._stat(key, self._what(self.ops.head, key))
        return True

    def _download(self, key: str, start: int, etag: str | None) -> Download:
        """Ranges of one generation: the first is looked up (with the size) before it is read."""
        what = self._what(self.ops.get, key)
        size: int | None = None
        if etag is None:
            blob = self._stat(key, what)
            generation, size = int(blob.generation or 0), int(blob.size or 0)
            if not size:
                return empty_download()
        else:
            generation = int(etag)
        end = start + self.read_chunk - 1 if self.read_chunk else None
        if size is not None and end is not None:
            end = min(end, size - 1)
        try:
            data = self._blob(key, generation=generation).download_as_bytes(
                start=start, end=end, raw_download=True, checksum=None, retry=None, timeout=self.timeout
            )
        except api_exceptions.NotFound as e:  # the generation is gone
            raise self._not_found(e, what) from e
        return Download(io.BytesIO(data), str(generation), size)

    def _put(self, key: str, data: bytes, *, if_absent: bool = False, if_match: str | None = None) -> str:
        generation: int | None = None
        if if_absent:
            generation = 0
        elif if_match:
            generation = _generation(if_match)
            if generation is None:  # not a generation (an S3 ETag?): no object can have it
                raise ConditionLost(self._what(self.ops.put, key), f"{if_match} is not a generation")
        blob = self._blob(key)
        blob.upload_from_string(
            data,
            content_type="application/octet-stream",
            if_generation_match=generation,
            retry=None,
            timeout=self.timeout,
        )
        return str(blob.generation)

    def _delete(self, key: str, etag: str | None) -> None:
        """With an etag the live generation is looked up first and a different one refused before
        the delete is sent: some emulators (fake-gcs-server up to at least 1.52) ignore
        preconditions on DELETE. On GCS the precondition on the DELETE itself is what makes it atomic."""
        what = self._what(self.ops.delete, key)
        generation = _generation(etag) if etag else None
        if etag:
            current = self._stat(key, what)
            if generation is None or current.generation != generation:
                raise ConditionLost(what, f"generation {current.generation} is live")
        try:
            self._blob(key).delete(if_generation_match=generation, retry=None, timeout=self.timeout)
        except api_exceptions.NotFound as e:
            raise self._not_found(e, what) from e

    def _delete_keys(self, keys: builtins.list[str]) -> Mapping[str, Failure | None]:
        """One JSON-API batch request of objects.delete calls.

        The batch request is written here rather than with ``client.batch()``: fake-gcs-server
        answers only the parts of a batch that carry a ``Content-ID`` header, which
        google-cloud-storage's ``Batch`` does not send (its answer is then an empty multipart body
        and the library raises "Bad response: not multi-part"). With ids on every part the same
        request works on GCS and on fake-gcs-server, and each answer is matched to its key by id.
        """
        answers = self._send_batch(keys)
        out: dict[str, Failure | None] = {}
        unsure = False  # a 404 that does not say whether the object or the bucket is missing
        for i, key in enumerate(keys):
            status, reason, message = answers.get(i, (0, "", "no answer for this call"))
            if 200 <= status < 300:
                out[key] = None
            elif status == 0:
                out[key] = Failure(NO_ANSWER, cause=message)
            elif status == 404 and "no such object" not in message.lower():
                unsure, out[key] = True, None
            else:
                out[key] = Failure(reason, status, f"HTTP {status} {reason}: {message}")
        if unsure and not self._bucket_listable():
            what = self._what(self.ops.delete_batch, keys[0])
            raise self._error(BucketMissing, what, "HTTP 404: Not Found")
        return out

    def _send_batch(self, keys: builtins.list[str]) -> dict[int, tuple[int, str, str]]:
        """POST one multipart/mixed batch of objects.delete calls; the answers by index: (status,
        reason, message). An error of the batch request itself is raised."""
        self._client()
        assert self._session is not None
        boundary = f"batch_{uuid.uuid4().hex}"
        bucket = quote(self.bucket, safe="")
        parts = [
            f"--{boundary}\r\n"
            "Content-Type: application/http\r\n"
            "Content-Transfer-Encoding: binary\r\n"
            f"Content-ID: <{i}>\r\n"
            "\r\n"
            f"DELETE /storage/v1/b/{bucket}/o/{quote(key, safe='')} HTTP/1.1\r\n"
            "Content-Length: 0\r\n"
            "\r\n"
            "\r\n"
            for i, key in enumerate(keys)
        ]
        body = ("".join(parts) + f"--{boundary}--\r\n").encode()
        resp = self._session.post(
            f"{self.endpoint}/batch/storage/v1",
            data=body,
            headers={"Content-Type": f"multipart/mixed; boundary={boundary}"},
            timeout=self.timeout,
        )
        if not 200 <= resp.status_code < 300:
            raise api_exceptions.from_http_response(resp)
        return _parse_batch_answer(resp.headers.get("Content-Type", ""), resp.content)

    def _write_parts(self, key: str, parts: Iterator[bytes], size: int) -> str:
        """A resumable upload in chunks of ``upload_part`` bytes (a multiple of 256 KiB). One
        attempt: the parts already sent cannot be read again from the stream."""
        blob = self._blob(key)
        blob.chunk_size = self.upload_part
        reader = _PartsReader(parts)

        def upload() -> str:
            blob.upload_from_file(
                reader, size=size, content_type="application/octet-stream", retry=None, timeout=self.timeout
            )
            return str(blob.generation)

        return self._once(self.ops.put, self._what(self.ops.put, key), upload)()

    def can_copy_from(self, source: Any) -> bool:
        return isinstance(source, GCSStore) and source.endpoint == self.endpoint

    def copy_from(self, source: Any, source_key: str, key: str, size: int) -> str:
        """objects.rewrite, repeated with its token until done (GCS copies large objects in steps)."""
        assert isinstance(source, GCSStore)
        dst = self._blob(key)
        src = source._blob(source_key)
        token: str | None = None
        while True:
            step = functools.partial(dst.rewrite, src, token=token, retry=None, timeout=self.timeout)
            token, _, _ = self._call("objects.rewrite", key, step)
            if token is None:
                return str(dst.generation)

    def abort_uploads(self, prefix: str) -> int:
        """0: nothing to abort through the JSON API.

        ClickHouse writes GCS through the S3-interoperable XML API, whose multipart uploads can only
        be listed and aborted through that XML API (with HMAC keys); the JSON API has no call for
        them. The JSON API's own resumable upload sessions (not used by ClickHouse) expire by
        themselves after a week. Parts of an abandoned XML multipart upload stay billed until
        aborted: a lifecycle rule ``AbortIncompleteMultipartUpload`` on the bucket removes them.
        """
        return 0


class _PartsReader(io.RawIOBase):
    """A file over an iterator of parts (what a resumable upload reads)."""

    def __init__(self, parts: Iterator[bytes]) -> None:
        super().__init__()
        self._parts = parts
        self._buf = b""
        self._pos = 0

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            nxt = next(self._parts, None)
            if nxt is None:
                break
            self._buf += nxt
        out, self._buf = (self._buf, b"") if n < 0 else (self._buf[:n], self._buf[n:])
        self._pos += len(out)
        return out


def _parse_batch_answer(content_type: str, content: bytes) -> dict[int, tuple[int, str, str]]:
    """The parts of a batch answer by the index in their Content-ID (``<response-3>`` -> 3)."""
    message = email.parser.BytesParser().parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\nMIME-Version: 1.0\r\n\r\n" + content
    )
    if not message.is_multipart():
        raise StoreError("GCS batch answer is not multipart")
    answers: dict[int, tuple[int, str, str]] = {}
    for part in cast(builtins.list[Any], message.get_payload()):
        m = re.search(r"(\d+)\s*>?\s*$", str(part.get("Content-ID", "")))
        payload = part.get_payload(decode=True) or b""
        if not m or not isinstance(payload, bytes):
            continue
        head, _, body = payload.replace(b"\r\n", b"\n").partition(b"\n\n")
        status_line = head.split(b"\n", 1)[0].decode("latin-1").split()
        status = int(status_line[1]) if len(status_line) > 1 and status_line[1].isdigit() else 0
        reason, text = _json_error(body, body.decode("utf-8", "replace").strip())
        answers[int(m.group(1))] = (status, reason, first_line(text))
    return answers
