"""The Google Cloud Storage store, on google-cloud-storage (GCS's JSON API).

ClickHouse writes into GCS through the S3-interoperable XML API with HMAC keys (``bucket.endpoint``,
``credentials.hmac_key``/``hmac_secret``, see ``sql.destination_sql``); the reconciler itself reads
and writes with the JSON API and Google credentials: ``credentials.service_account_file``, else
Application Default Credentials. The JSON-API endpoint is, in this order, the bucket's
``gcs_json_endpoint``, the ``STORAGE_EMULATOR_HOST`` environment variable (google-cloud-storage's
own convention for emulators such as fake-gcs-server), else ``https://storage.googleapis.com``.
A plain-``http://`` endpoint, or one from ``STORAGE_EMULATOR_HOST``, is an emulator: requests go
without credentials (a bearer token is never sent in clear text).

The semantics are those of ``S3Store`` with GCS generations as etags: ``ObjectInfo.etag`` is the
object's generation as a string, and every conditional request is an ``ifGenerationMatch``
precondition (0 = "only if absent"). The library's own retries are off (``retry=None`` on every
call): every request goes through the one ``RetryPolicy`` (retry.py), each with a
(connect, read) timeout, and every error is mapped to the errors of ``reconciler.errors``:

- the bucket does not exist (HTTP 404 on the bucket) -> ``BucketMissing``;
- HTTP 408/429/5xx, connection errors, timeouts, a checksum mismatch -> retried, then ``TemporaryError``;
- HTTP 412 on a conditional request -> ``PreconditionFailed``;
- anything else -> ``StoreError`` with the HTTP status, GCS's reason and message.

Messages name ``gs://bucket/key`` and never contain a credential (the HMAC secret, the service
account key).
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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar, cast
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
from .base import ObjectInfo
from .retry import DEFAULT_POLICY, RetryPolicy
from .stats import STATS

T = TypeVar("T")

DEFAULT_JSON_ENDPOINT = "https://storage.googleapis.com"

#: google-cloud-storage's convention: ``host:port`` (or a URL) of an emulator
EMULATOR_ENV = "STORAGE_EMULATOR_HOST"

#: what the reconciler needs: read, write and delete objects
SCOPES = ("https://www.googleapis.com/auth/devstorage.read_write",)

#: the JSON API takes at most this many calls in one batch request
DELETE_BATCH = 100

#: HTTP statuses that may pass when retried
TRANSIENT_STATUS = frozenset({408, 429})

#: the project of emulator requests (fake-gcs-server accepts any)
EMULATOR_PROJECT = "test"

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


def _status(e: BaseException) -> int:
    if isinstance(e, api_exceptions.GoogleAPICallError):
        return int(e.code or 0)
    response = getattr(e, "response", None)
    return int(getattr(response, "status_code", 0) or 0)


def _reason_and_detail(e: api_exceptions.GoogleAPICallError) -> tuple[str, str]:
    """GCS's reason (``conditionNotMet``) and message, without the request line the library prepends."""
    first: dict[str, Any] = e.errors[0] if e.errors and isinstance(e.errors[0], dict) else {}
    reason = str(first.get("reason") or e.reason or "")
    detail = str(first.get("message") or e.message or "")
    detail = _METHOD_URL.sub("", detail.strip().splitlines()[0] if detail.strip() else "")
    if detail.startswith("{"):  # uploads and downloads quote GCS's JSON error body
        try:
            error = json.loads(detail).get("error", {})
        except (ValueError, AttributeError):
            error = None
        if isinstance(error, dict) and error:
            errors = error.get("errors") or [{}]
            inner = errors[0] if isinstance(errors[0], dict) else {}
            reason = reason or str(inner.get("reason", ""))
            detail = str(error.get("message", detail))
    return reason, detail


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


@dataclass(frozen=True)
class _Page:
    blobs: builtins.list[Any]
    prefixes: builtins.list[str]
    token: str | None


class GCSStore:
    """A ``Store`` on one GCS bucket. Keys are full object names (the bucket prefix included).

    ``list_page_size`` sets how many objects one listing request asks for (GCS's default, 1000,
    when None); ``read_chunk_size`` is the size of one ranged download of ``open``;
    ``json_endpoint_override`` comes before the bucket's ``gcs_json_endpoint`` and
    ``STORAGE_EMULATOR_HOST`` (tests, embedders). No request is made until the first call.
    """

    def __init__(
        self,
        bucket: Bucket,
        *,
        retry: RetryPolicy = DEFAULT_POLICY,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_pool_connections: int = 32,
        list_page_size: int | None = None,
        read_chunk_size: int = 8 * 1024 * 1024,
        json_endpoint_override: str | None = None,
    ) -> None:
        self.bucket = bucket.bucket
        self.description = f"gs://{bucket.bucket}"
        self.retry = retry
        self.endpoint, self.emulator = json_endpoint(bucket, json_endpoint_override)
        self.list_page_size = list_page_size
        self.read_chunk_size = read_chunk_size
        self.timeout = (connect_timeout, read_timeout)
        self._pool = max_pool_connections
        self._service_account_file = bucket.credentials.service_account_file
        # every credential value, longest first, so a message can never carry one (the service
        # account file's path is not a secret; the key inside it is added when it is read)
        self._secrets = sorted(
            (v for v in bucket.credentials.secrets() if len(v) >= 4 and v != self._service_account_file),
            key=len,
            reverse=True,
        )
        self._lock = threading.Lock()
        self._client_: storage.Client | None = None
        self._session: AuthorizedSession | None = None
        self._bucket_ref: storage.Bucket | None = None

    def __repr__(self) -> str:
        return f"GCSStore({self.description})"

    # ----------------------------------------------------------------------------------------
    # plumbing
    # ----------------------------------------------------------------------------------------

    def url(self, key: str = "") -> str:
        return f"gs://{self.bucket}/{key}"

    def _redact(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, "***")
        return text

    def _credentials(self) -> tuple[GoogleCredentials, str | None]:
        """Credentials and project: none for an emulator, the service account file, else ADC."""
        if self.emulator:
            return AnonymousCredentials(), EMULATOR_PROJECT
        if self._service_account_file:
            path = self._service_account_file
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
            secrets = builtins.list(self._secrets)
            for k in ("private_key", "private_key_id"):
                v = info.get(k)
                if isinstance(v, str) and len(v) >= 4:
                    secrets.append(v)  # and each line of a PEM key, should a message quote one
                    secrets.extend(line for line in v.splitlines() if len(line) >= 16)
            self._secrets = sorted(secrets, key=len, reverse=True)
            try:
                creds = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
            except (ValueError, KeyError) as e:
                raise StoreError(
                    f"{self.description}: the service account file {path} is not a usable service account key: "
                    f"{self._redact(str(e))}"
                ) from None
            return creds, info.get("project_id")
        try:
            creds, project = google.auth.default(scopes=SCOPES)
        except auth_exceptions.DefaultCredentialsError as e:
            raise StoreError(
                f"{self.description}: no Google credentials: set credentials.service_account_file, or Application "
                "Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud auth application-default login): "
                f"{self._redact(str(e))}"
            ) from None
        return creds, project

    def _client(self) -> storage.Client:
        """The client, made on first use (reading credentials may need the network: it is a request)."""
        if self._client_ is not None:
            return self._client_
        with self._lock:
            if self._client_ is None:
                creds, project = self._credentials()
                session = AuthorizedSession(creds)
                adapter = requests.adapters.HTTPAdapter(pool_maxsize=self._pool, max_retries=0)
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

    def _translate(self, e: BaseException, what: str) -> Exception:
        """The reconciler error for a google/requests error; a ``TemporaryError`` carries the cause only."""
        if isinstance(e, ReconcilerError):
            return e
        if isinstance(e, (api_exceptions.GoogleAPICallError, storage_exceptions.InvalidResponse)):
            status = _status(e)
            if isinstance(e, api_exceptions.GoogleAPICallError):
                reason, detail = _reason_and_detail(e)
            else:
                reason, detail = "", str(e.args[0] if e.args else "")
            reason, detail = self._redact(reason), self._redact(detail)
            cause = f"HTTP {status}" + (f" {reason}" if reason else "") + (f": {detail}" if detail else "")
            if status == 404 and "no such object" not in detail.lower():
                return BucketMissing(f"{what}: bucket {self.bucket} does not exist ({cause})")
            if status in TRANSIENT_STATUS or status >= 500:
                return TemporaryError(cause)
            if status == 412:
                return PreconditionFailed(f"{what}: {cause}")
            return StoreError(f"{what}: {cause}")
        if isinstance(e, storage_exceptions.DataCorruption):  # checksum mismatch: a new download may pass
            return TemporaryError(self._redact(f"DataCorruption: {str(e).splitlines()[0] if str(e) else ''}"))
        if isinstance(e, auth_exceptions.RefreshError):
            if getattr(e, "retryable", False):
                return TemporaryError(self._redact(f"RefreshError: {e}"))
            return StoreError(self._redact(f"{what}: the Google credentials were refused: {e}"))
        if isinstance(e, auth_exceptions.DefaultCredentialsError):
            return StoreError(self._redact(f"{what}: {e}"))
        if isinstance(e, _TRANSPORT_ERRORS):
            return TemporaryError(self._redact(f"{type(e).__name__}: {_root_cause(e)}"))
        return StoreError(self._redact(f"{what}: {type(e).__name__}: {e}"))

    def _guarded(self, what: str, fn: Callable[[], T]) -> Callable[[], T]:
        """``fn`` with errors mapped (one attempt)."""

        def attempt() -> T:
            STATS.request(what)
            try:
                return fn()
            except Exception as e:
                raise self._translate(e, what) from e

        return attempt

    def _call(self, op: str, key: str, fn: Callable[[], T]) -> T:
        """Run one JSON-API request ``op`` on ``key`` under the retry policy, errors mapped."""
        what = f"GCS {op} on {self.url(key)}"
        return self.retry.run(what, self._guarded(what, fn))

    def _list_page(self, prefix: str, delimiter: str | None, token: str | None, size: int | None) -> _Page:
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
            return _Page([], [], None)
        blobs = builtins.list(page)
        return _Page(blobs, builtins.list(getattr(page, "prefixes", ())), it.next_page_token)

    def _bucket_listable(self) -> bool:
        """Does the bucket exist? One objects.list of one name (needs only storage.objects.list)."""
        try:
            self._list_page("", None, None, 1)
        except api_exceptions.NotFound:
            return False
        return True

    def _missing_object(self, e: api_exceptions.NotFound, what: str) -> bool:
        """A 404 of a request on an object: True when the object is missing; ``BucketMissing`` when the
        bucket is. GCS says which in its message; emulators answer a bare "Not Found" for both, and
        then the bucket is asked (this attempt makes one more request)."""
        _, detail = _reason_and_detail(e)
        text = detail.lower()
        if "no such object" in text:
            return True
        if "bucket" not in text and self._bucket_listable():
            return True
        raise BucketMissing(f"{what}: bucket {self.bucket} does not exist (HTTP 404: {self._redact(detail)})")

    def _stat(self, key: str, what: str) -> storage.Blob | None:
        """The object's metadata (objects.get), or None if it does not exist (one attempt)."""
        blob = self._blob(key)
        try:
            blob.reload(projection="noAcl", retry=None, timeout=self.timeout)
        except api_exceptions.NotFound as e:
            if self._missing_object(e, what):
                return None
            raise
        return blob

    # ----------------------------------------------------------------------------------------
    # the Store protocol
    # ----------------------------------------------------------------------------------------

    def bucket_exists(self) -> bool:
        return self._call("objects.list", "", self._bucket_listable)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        token: str | None = None
        while True:
            page = self._call(
                "objects.list", prefix, functools.partial(self._list_page, prefix, None, token, self.list_page_size)
            )
            for b in page.blobs:
                yield ObjectInfo(
                    key=b.name, size=int(b.size or 0), etag=str(b.generation), last_modified=b.updated or b.time_created
                )
            token = page.token
            if not token:
                return

    def list_folders(self, prefix: str) -> builtins.list[str]:
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        names: set[str] = set()
        token: str | None = None
        while True:
            page = self._call(
                "objects.list", prefix, functools.partial(self._list_page, prefix, "/", token, self.list_page_size)
            )
            for p in page.prefixes:
                name = p[len(prefix) :].rstrip("/")
                if name:
                    names.add(name)
            token = page.token
            if not token:
                return sorted(names)

    def read(self, key: str) -> tuple[bytes, str] | None:
        what = f"GCS objects.get on {self.url(key)}"

        def get() -> tuple[bytes, str] | None:
            blob = self._blob(key)
            try:
                # the stored bytes (no decompressive transcoding), checked against GCS's checksum
                data = blob.download_as_bytes(raw_download=True, retry=None, timeout=self.timeout)
            except api_exceptions.NotFound as e:
                if self._missing_object(e, what):
                    return None
                raise
            STATS.read(len(data))
            return data, str(blob.generation)

        return self.retry.run(what, self._guarded(what, get))

    def open(self, key: str) -> BinaryIO:
        """A buffered reader of the object, read in ranged downloads of ``read_chunk_size`` bytes of
        the generation found when it was opened, each under the retry policy. ``ObjectMissing`` if
        absent; ``StoreError`` if the object is replaced or deleted while it is read."""
        return cast(BinaryIO, io.BufferedReader(_GCSReader(self, key), buffer_size=1024 * 1024))

    def _upload(self, key: str, data: bytes, generation: int | None, lost: Callable[[], Exception] | None) -> str:
        """objects.insert (only if the live generation is ``generation`` when given; 0 = absent);
        ``lost`` makes the error to raise when that precondition fails."""

        def put() -> str:
            blob = self._blob(key)
            try:
                blob.upload_from_string(
                    data,
                    content_type="application/octet-stream",
                    if_generation_match=generation,
                    retry=None,
                    timeout=self.timeout,
                )
            except api_exceptions.PreconditionFailed as e:
                if lost is None:
                    raise
                raise lost() from e
            return str(blob.generation)

        return self._call("objects.insert", key, put)

    def write(self, key: str, data: bytes) -> str:
        return self._upload(key, data, None, None)

    def create(self, key: str, data: bytes) -> str:
        """objects.insert with ``ifGenerationMatch=0``. Note: if a first attempt was stored but its
        answer lost, the retry finds the object and raises ``PreconditionFailed``; callers that must
        tell (the lock) read the object back and recognise their own content."""

        def lost() -> Exception:
            return PreconditionFailed(
                f"GCS objects.insert on {self.url(key)}: the object already exists (HTTP 412 conditionNotMet)"
            )

        return self._upload(key, data, 0, lost)

    def replace(self, key: str, data: bytes, etag: str) -> str:
        what = f"GCS objects.insert on {self.url(key)}"

        def lost() -> Exception:
            # GCS answers 412 both when the object changed and when it is gone: ask which
            if self._stat(key, what) is None:
                return PreconditionFailed(f"{what}: the object no longer exists (expected generation {etag})")
            return PreconditionFailed(f"{what}: the object changed (expected generation {etag})")

        generation = _generation(etag)
        if generation is None:  # not a generation (an S3 ETag?): no object can have it

            def refuse() -> str:
                raise lost()

            return self._call("objects.insert", key, refuse)
        return self._upload(key, data, generation, lost)

    def delete(self, key: str, etag: str | None = None) -> None:
        """objects.delete, with ``ifGenerationMatch`` when ``etag`` is given. Missing is not an error.

        With an etag the live generation is looked up first and a different one refused before the
        delete is sent: some emulators (fake-gcs-server up to at least 1.52) ignore preconditions on
        DELETE. On GCS the precondition on the DELETE itself is what makes it atomic."""
        what = f"GCS objects.delete on {self.url(key)}"
        generation = _generation(etag) if etag else None

        def changed() -> PreconditionFailed:
            return PreconditionFailed(f"{what}: the object changed (expected generation {etag})")

        def delete() -> None:
            if etag:
                current = self._stat(key, what)
                if current is None:
                    return
                if generation is None or current.generation != generation:
                    raise changed()
            try:
                self._blob(key).delete(if_generation_match=generation, retry=None, timeout=self.timeout)
            except api_exceptions.NotFound as e:
                if self._missing_object(e, what):  # already gone
                    return
                raise
            except api_exceptions.PreconditionFailed as e:
                raise changed() from e

        self.retry.run(what, self._guarded(what, delete))

    def delete_many(self, keys: Iterable[str]) -> int:
        """Delete in JSON-API batch requests of up to 100 deletes. Returns how many objects were
        deleted; keys that do not exist are not an error and are not counted.

        The batch request is written here rather than with ``client.batch()``: fake-gcs-server
        answers only the parts of a batch that carry a ``Content-ID`` header, which
        google-cloud-storage's ``Batch`` does not send (its answer is then an empty multipart body
        and the library raises "Bad response: not multi-part"). With ids on every part the same
        request works on GCS and on fake-gcs-server, and each answer is matched to its key by id.
        """
        unique = builtins.list(dict.fromkeys(keys))
        deleted = 0
        failed: dict[str, str] = {}  # key -> "HTTP status reason: message"
        unsure: builtins.list[str] = []  # 404 without saying whether the object or the bucket is missing
        for i in range(0, len(unique), DELETE_BATCH):
            n, errors, ambiguous = self._delete_batch(unique[i : i + DELETE_BATCH])
            deleted += n
            failed.update(errors)
            unsure += ambiguous
        if unsure and not self._call("objects.list", "", self._bucket_listable):
            raise BucketMissing(f"GCS batch objects.delete on {self.url()}: bucket {self.bucket} does not exist")
        if failed:
            sample = "; ".join(f"{self.url(k)}: {v}" for k, v in builtins.list(failed.items())[:3])
            raise StoreError(
                f"GCS batch objects.delete on {self.url()}: {len(failed)} of {len(unique)} objects could not be "
                f"deleted ({deleted} were): {self._redact(sample)}"
            )
        return deleted

    def _delete_batch(self, batch: builtins.list[str]) -> tuple[int, dict[str, str], builtins.list[str]]:
        """Delete up to 100 keys in one batch request. Deletes refused with a transient status are
        retried under the policy; whatever is still refused at the end is returned as failed
        (key -> reason), with the keys whose 404 did not say what was missing."""
        pending = builtins.list(batch)
        failed: dict[str, str] = {}
        ambiguous: builtins.list[str] = []
        deleted = 0
        per_key = False  # did the last attempt fail on some keys only (not the whole request)?

        def attempt() -> None:
            nonlocal pending, deleted, per_key
            per_key = False
            answers = self._send_batch(pending)
            transient: builtins.list[str] = []
            last = ""
            for i, key in enumerate(pending):
                status, reason, message = answers.get(i, (0, "", "no answer for this call"))
                if 200 <= status < 300:
                    deleted += 1
                elif status == 404:
                    if "no such object" not in message.lower():
                        ambiguous.append(key)
                elif status == 0 or status in TRANSIENT_STATUS or status >= 500:
                    transient.append(key)
                    last = f"HTTP {status} {reason}: {message}" if status else message
                else:
                    failed[key] = f"HTTP {status} {reason}: {message}"
            pending = transient
            if transient:
                per_key = True
                raise TemporaryError(self._redact(f"{len(transient)} deletes refused: {last}"))

        what = f"GCS batch objects.delete on {self.url(batch[0] if batch else '')}"
        try:
            self.retry.run(what, self._guarded(what, attempt))
        except TemporaryError as e:
            if not per_key:
                raise
            failed.update((k, e.message) for k in pending)
        return deleted, failed, ambiguous

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

    def abort_uploads(self, prefix: str) -> int:
        """0: nothing to abort through the JSON API.

        ClickHouse writes GCS through the S3-interoperable XML API, whose multipart uploads can only
        be listed and aborted through that XML API (with HMAC keys); the JSON API has no call for
        them. The JSON API's own resumable upload sessions (not used by ClickHouse) expire by
        themselves after a week. Parts of an abandoned XML multipart upload stay billed until
        aborted: a lifecycle rule ``AbortIncompleteMultipartUpload`` on the bucket removes them.
        """
        return 0


def _generation(etag: str | None) -> int | None:
    """The generation an etag names, or None if it is not one (generations are positive)."""
    if etag is None or not etag.isdigit():
        return None
    n = int(etag)
    return n if n > 0 else None


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
        reason, text = "", body.decode("utf-8", "replace").strip()
        try:
            error = json.loads(body).get("error", {}) if body.strip() else {}
        except (ValueError, AttributeError):
            error = {}
        if isinstance(error, dict) and error:
            errors = error.get("errors") or [{}]
            reason = str(errors[0].get("reason", "") if isinstance(errors[0], dict) else "")
            text = str(error.get("message", text))
        answers[int(m.group(1))] = (status, reason, text.splitlines()[0] if text else "")
    return answers


class _GCSReader(io.RawIOBase):
    """The raw stream under ``GCSStore.open``: ranged downloads of one generation."""

    def __init__(self, store: GCSStore, key: str) -> None:
        super().__init__()
        self._store = store
        self._key = key
        what = f"GCS objects.get on {store.url(key)}"

        def stat() -> tuple[int, int]:
            blob = store._stat(key, what)
            if blob is None:
                raise ObjectMissing(f"{what}: the object does not exist")
            return int(blob.generation or 0), int(blob.size or 0)

        self._generation, self._size = store.retry.run(what, store._guarded(what, stat))
        self._pos = 0  # of the next byte to download
        self._chunk = b""
        self._offset = 0  # in the chunk

    def readable(self) -> bool:
        return True

    def _fetch(self) -> None:
        store, start = self._store, self._pos
        end = min(start + store.read_chunk_size, self._size) - 1
        what = f"GCS objects.get on {store.url(self._key)} at byte {start}"

        def get() -> bytes:
            blob = store._blob(self._key, generation=self._generation)
            try:
                return bytes(
                    blob.download_as_bytes(
                        start=start, end=end, raw_download=True, checksum=None, retry=None, timeout=store.timeout
                    )
                )
            except api_exceptions.NotFound as e:
                raise StoreError(
                    f"{what}: the object changed while it was read (generation {self._generation} is gone)"
                ) from e

        data = store.retry.run(what, store._guarded(what, get))
        if not data:
            raise StoreError(f"{what}: the object ended before its size ({self._size} bytes)")
        self._chunk, self._offset = data, 0
        self._pos += len(data)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if not len(view):
            return 0
        if self._offset >= len(self._chunk):
            if self._pos >= self._size:
                return 0
            self._fetch()
        n = min(len(view), len(self._chunk) - self._offset)
        view[:n] = self._chunk[self._offset : self._offset + n]
        self._offset += n
        return n

    def close(self) -> None:
        self._chunk = b""
        super().close()
