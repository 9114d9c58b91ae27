"""A small client of the ClickHouse Cloud API (``https://api.clickhouse.cloud``), on urllib3.

Only what the reconciler needs: a service's facts, its backup configuration, its external
backup bucket, its backups, the organization's services, and creating a service from a backup.

Protocol: HTTP basic auth with the API key id and secret; JSON bodies; every answer is
``{"status", "requestId", "result"}`` or, on error, ``{"status", "error", "requestId"}``.
429 and 5xx answers, timeouts and failed connections are retried with exponential backoff and
jitter (the shared ``RetryPolicy``); any other answer is a ``CloudApiError`` that names the
request, the HTTP status, the API's own error text and its ``requestId`` -- never the key.

What was checked against the official OpenAPI description, and where
---------------------------------------------------------------------
Sources: the ClickHouse Cloud API reference, generated from ``_specs/cloud-openapi.json``
(https://clickhouse.com/docs/products/cloud/api-reference/backup/get-service-backup-configuration,
.../backup/backup-bucket-get, .../backup/backup-bucket-create, .../backup/backup-bucket-update,
.../backup/list-of-service-backups, .../backup/get-backup-details,
.../service/create-new-service); the same spec as mirrored in the GitHub repository
``api-evangelist/clickhouse`` (``openapi/clickhouse-backup-api-openapi.yml``,
``openapi/clickhouse-service-api-openapi.yml``); ClickHouse's Terraform provider
``ClickHouse/terraform-provider-clickhouse`` (``pkg/internal/api/backup_configuration.go``,
``service.go``, ``models.go``, ``common.go``, ``constants.go``); and "Managing API keys"
(https://clickhouse.com/docs/cloud/manage/openapi).

Confirmed there:
- base URL ``https://api.clickhouse.cloud``, security ``basicAuth`` (key id : key secret);
  success ``{status, requestId, result}``, errors ``{status, error, requestId}`` (documented
  for 400 and 500); success status 200 for every call used here, DELETE included (no result);
- ``GET/PATCH /v1/organizations/{organizationId}/services/{serviceId}/backupConfiguration``,
  fields ``backupPeriodInHours``, ``backupRetentionPeriodInHours`` (numbers),
  ``backupStartTime`` (string, "HH:MM" UTC; "when defined the backup period resets to every
  24 hours"); PATCH "requires ADMIN auth key role"; a ``null`` resets a field to its default;
- ``GET/POST/PATCH/DELETE .../backupBucket`` (beta): ``bucketProvider`` AWS|GCP|AZURE;
  AWS ``bucketPath``, ``iamRoleArn``, ``iamRoleSessionName`` (newer docs also list
  ``iamRoleExternalId`` on create); GCP ``bucketPath``, ``accessKeyId``, ``secretAccessKey``;
  AZURE ``containerName``, ``connectionString``; the read model (AwsBackupBucket,
  GcpBackupBucket, AzureBackupBucket) has an ``id`` and no secret field; POST/PATCH/DELETE
  "require ADMIN auth key role"; PATCH: "the secrets of the specified bucket provider are
  always required";
- ``GET .../backups`` ("the most recent backups comes first"), Backup fields ``id``,
  ``status`` done|error|in_progress, ``serviceId``, ``startedAt``, ``finishedAt``,
  ``sizeInBytes``, ``durationInSeconds``, ``type`` full|incremental, ``backupName``,
  ``bucket`` (the AWS/GCP/AZURE bucket properties);
- ``GET /v1/organizations/{organizationId}/services[/{serviceId}]``: Service fields ``id``,
  ``name``, ``provider`` aws|gcp|azure, ``region``, ``state`` (starting, stopping,
  terminating, softdeleting, awaking, partially_running, provisioning, running, stopped,
  terminated, softdeleted, degraded, failed, idle), ``tier`` (deprecated for the BASIC, SCALE
  and ENTERPRISE organization tiers), ``hasTransparentDataEncryption``, ``complianceType``
  hipaa|pci;
- ``POST /v1/organizations/{organizationId}/services`` (ServicePostRequest: ``name``,
  ``provider``, ``region``, ``tier``, ``backupId`` -- "the region and the tier of the new
  instance must be the same as the values of the original instance"), answering
  ``{service, password}``; "the service is started asynchronously";
- 429 carries ``X-RateLimit-Reset`` (the Terraform provider waits on it); API keys: the
  *developer* role is read-only, *admin* reads and writes.

Not confirmed (no official statement found; handled defensively):
- what ``GET .../backupBucket`` answers when no bucket is set: 404 and an empty/``null``
  ``result`` are both read as "none";
- the 401/403/404/429 bodies (assumed to have the same ``{status, error, requestId}`` shape);
- the exact ``bucketPath`` form the API expects (the backup guides use
  ``https://<bucket>.s3.amazonaws.com/<dir>`` for AWS and
  ``https://storage.googleapis.com/<bucket>/<dir>`` for GCS; the reconciler sends those);
- whether POST on a service that already has a bucket, or PATCH on one that has none, is
  refused (the reconciler never does either: it POSTs only when GET found none).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import urllib3

from ..errors import ReconcilerError, TemporaryError
from ..model import Service
from ..retry import RetryPolicy

DEFAULT_URL = "https://api.clickhouse.cloud"
#: the retry policy of every Cloud API call (tests may swap it for a faster one)
DEFAULT_API_POLICY = RetryPolicy(attempts=5, total=60.0)
#: connect / read timeouts of one request, seconds
DEFAULT_TIMEOUT = (5.0, 30.0)
USER_AGENT = "clickhouse-backup-reconciler"


class CloudApiError(ReconcilerError):
    """The Cloud API refused a request (a 4xx other than 429, or an answer that is not JSON)."""

    def __init__(self, message: str, status: int | None = None, request_id: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.request_id = request_id


@dataclass(frozen=True)
class CreatedService:
    """What ``POST /services`` answers. ``password`` is the new service's default password:
    a secret that must never be printed, logged or stored."""

    service: dict[str, Any]
    password: str | None

    def __repr__(self) -> str:
        return f"CreatedService(id={self.service.get('id')!r}, password={'(set)' if self.password else None})"


class CloudApiClient:
    """One API key on one organization. Thread-safe (urllib3's pool is)."""

    def __init__(
        self,
        url: str,
        organization_id: str,
        key_id: str,
        key_secret: str,
        *,
        retry: RetryPolicy | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        pool: urllib3.PoolManager | None = None,
    ) -> None:
        self.url = (url or DEFAULT_URL).rstrip("/")
        self.organization_id = organization_id
        self.retry = retry or DEFAULT_API_POLICY
        self.timeout = urllib3.Timeout(connect=timeout[0], read=timeout[1])
        self._pool = pool or urllib3.PoolManager(num_pools=4, maxsize=8)
        token = base64.b64encode(f"{key_id}:{key_secret}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}", "Accept": "application/json", "User-Agent": USER_AGENT}
        self._secrets = sorted((s for s in (key_secret, key_id, token) if s and len(s) >= 4), key=len, reverse=True)

    def __repr__(self) -> str:  # the key never reaches a log through a repr
        return f"CloudApiClient(url={self.url!r}, organization_id={self.organization_id!r})"

    # ---------------------------------------------------------------------------------- paths

    def _org(self, rest: str = "") -> str:
        return f"/v1/organizations/{quote(self.organization_id, safe='')}{rest}"

    def _svc(self, service_id: str, rest: str = "") -> str:
        return self._org(f"/services/{quote(service_id, safe='')}{rest}")

    # ----------------------------------------------------------------------------- endpoints

    def get_service(self, service_id: str) -> dict[str, Any]:
        return _mapping(self.request("GET", self._svc(service_id)), "service")

    def list_services(self) -> list[dict[str, Any]]:
        result = self.request("GET", self._org("/services"))
        return [s for s in result if isinstance(s, dict)] if isinstance(result, list) else []

    def get_backup_configuration(self, service_id: str) -> dict[str, Any]:
        return _mapping(self.request("GET", self._svc(service_id, "/backupConfiguration")), "backup configuration")

    def update_backup_configuration(self, service_id: str, body: dict[str, Any]) -> dict[str, Any]:
        result = self.request("PATCH", self._svc(service_id, "/backupConfiguration"), body)
        return result if isinstance(result, dict) else {}

    def get_backup_bucket(self, service_id: str) -> dict[str, Any] | None:
        """The service's external backup bucket, or None when it has none."""
        try:
            result = self.request("GET", self._svc(service_id, "/backupBucket"))
        except CloudApiError as e:
            if e.status == 404:
                return None
            raise
        return result if isinstance(result, dict) and result.get("bucketProvider") else None

    def create_backup_bucket(self, service_id: str, body: dict[str, Any]) -> dict[str, Any]:
        result = self.request("POST", self._svc(service_id, "/backupBucket"), body)
        return result if isinstance(result, dict) else {}

    def update_backup_bucket(self, service_id: str, body: dict[str, Any]) -> dict[str, Any]:
        result = self.request("PATCH", self._svc(service_id, "/backupBucket"), body)
        return result if isinstance(result, dict) else {}

    def delete_backup_bucket(self, service_id: str) -> None:
        self.request("DELETE", self._svc(service_id, "/backupBucket"))

    def list_backups(self, service_id: str) -> list[dict[str, Any]]:
        result = self.request("GET", self._svc(service_id, "/backups"))
        return [b for b in result if isinstance(b, dict)] if isinstance(result, list) else []

    def create_service(self, body: dict[str, Any]) -> CreatedService:
        """Create a service (from a backup with ``backupId``). Not idempotent: only a 429 or a
        refused connection (nothing reached the API) is retried; after a 5xx or a timeout the
        service may exist, which the caller finds by name."""
        result = _mapping(self.request("POST", self._org("/services"), body, idempotent=False), "created service")
        service = result.get("service")
        if not isinstance(service, dict) or not service.get("id"):
            raise CloudApiError("ClickHouse Cloud API POST /services answered without a service id")
        password = result.get("password")
        return CreatedService(service, password if isinstance(password, str) else None)

    # ------------------------------------------------------------------------------ requests

    def request(self, method: str, path: str, body: Any = None, *, idempotent: bool = True) -> Any:
        """``result`` of a successful call; retries what may pass; raises ``CloudApiError`` or,
        when the retries are used up, ``TemporaryError``."""
        what = f"ClickHouse Cloud API {method} {path}"
        return self.retry.run(what, lambda: self._attempt(method, path, body, idempotent))

    def _attempt(self, method: str, path: str, body: Any, idempotent: bool) -> Any:
        headers = dict(self._headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json; charset=utf-8"
        try:
            resp = self._pool.request(
                method,
                self.url + path,
                body=data,
                headers=headers,
                timeout=self.timeout,
                retries=False,
                redirect=False,
                preload_content=True,
            )
        except urllib3.exceptions.NewConnectionError as e:  # nothing reached the API: safe to retry
            raise TemporaryError(self._clean(f"cannot connect to {self.url}: {_reason(e)}")) from None
        except urllib3.exceptions.TimeoutError:
            msg = (
                f"no answer from {self.url} within the timeout (connect {self.timeout.connect_timeout}s, "
                f"read {self.timeout.read_timeout}s)"
            )
            if idempotent:
                raise TemporaryError(msg) from None
            raise CloudApiError(f"{method} {path}: {msg}; it may have been carried out") from None
        except urllib3.exceptions.HTTPError as e:
            msg = self._clean(f"connection to {self.url} failed: {_reason(e)}")
            if idempotent:
                raise TemporaryError(msg) from None
            raise CloudApiError(f"{method} {path}: {msg}; it may have been carried out") from None
        return self._answer(method, path, resp, idempotent)

    def _answer(self, method: str, path: str, resp: Any, idempotent: bool) -> Any:
        status = int(resp.status)
        doc: Any = None
        try:
            doc = json.loads(resp.data.decode("utf-8")) if resp.data else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            doc = None
        request_id = None
        error_text = ""
        if isinstance(doc, dict):
            request_id = doc.get("requestId") if isinstance(doc.get("requestId"), str) else None
            error_text = str(doc.get("error") or "")
        request_id = request_id or resp.headers.get("x-request-id") or resp.headers.get("X-Request-Id")
        if 200 <= status < 300:
            if not isinstance(doc, dict):
                if method == "DELETE":
                    return None
                raise CloudApiError(
                    self._clean(f"ClickHouse Cloud API {method} {path} answered {status} without a JSON body"),
                    status,
                    request_id,
                )
            return doc.get("result")
        rid = f" (requestId {request_id})" if request_id else ""
        head = f"{status} {_REASONS.get(status, resp.reason or '')}".strip()
        cause = self._clean(head + (f": {error_text}" if error_text else ""))
        if status == 429 or (status >= 500 and idempotent):
            raise TemporaryError(cause + rid)
        hint = {
            401: "the API key was refused; check cloud.api.key_id and key_secret (and that the key is enabled)",
            403: "the API key may not do this; reading needs at least the Developer role, changing backup "
            "settings and creating services needs the Admin role",
            404: "not found; check cloud.api.organization_id and service_id",
        }.get(status)
        if status >= 500:
            hint = "the request may have been carried out; the next plan looks again"
        message = f"ClickHouse Cloud API {method} {path}: {cause}{rid}" + (f"; {hint}" if hint else "")
        raise CloudApiError(message, status, request_id)

    def _clean(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, "[HIDDEN]")
        return text


_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def _reason(e: Exception) -> str:
    reason = getattr(e, "reason", None) or e
    # urllib3 prefixes the connection object's repr; keep the OS's words
    return re.sub(r"^(<[^>]*>|\w+\([^)]*\)): ", "", str(reason))


def _mapping(result: Any, what: str) -> dict[str, Any]:
    if not isinstance(result, dict):
        raise CloudApiError(f"ClickHouse Cloud API answered without a {what}")
    return result


CloudApiFactory = Callable[[Service], CloudApiClient]


def connect(service: Service) -> CloudApiClient:
    """The client of a service that declares ``cloud.api``."""
    api = service.cloud.api if service.cloud else None
    if api is None:
        raise ReconcilerError(f"service {service.name} has no cloud.api: the reconciler cannot reach its Cloud API")
    return CloudApiClient(api.url or DEFAULT_URL, api.organization_id, api.key_id, api.key_secret)
