"""A local stand-in for the ClickHouse Cloud API, for tests.

It follows the official OpenAPI description (see the docstring of ``reconciler/cloud_api.py``
for what was checked where): paths under ``/v1/organizations/{organizationId}``, HTTP basic
auth with a key id and secret, ``{status, requestId, result}`` answers and
``{status, error, requestId}`` errors, the field names of services, backup configurations,
backup buckets and backups, and bucket secrets that are accepted but never returned.

Where the official description is silent, the choices are marked "assumed".

    server = CloudApiServer(); server.start()     # a thread on a free loopback port
    sid = server.add_service("analytics", region="us-east-1")
    server.add_backup(sid)                        # a done Cloud backup
    server.fault(429)                             # the next request answers 429
    server.fault(delay=2.0)                       # the next request answers 2 s late
    server.stop()

State is kept across calls until ``reset()``; ``requests`` logs (method, path, body).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ORG_ID = "7f1c3a52-6a5e-4f0c-9b0e-3d2f8a1b4c5d"
KEY_ID = "testKeyId0123456789"
KEY_SECRET = "4b1dTestKeySecret0123456789abcdefSECRET"

#: what the API reads of a bucket, per provider (no secret)
BUCKET_PUBLIC = {
    "AWS": ("bucketProvider", "bucketPath", "iamRoleArn", "iamRoleSessionName"),
    "GCP": ("bucketProvider", "bucketPath", "accessKeyId"),
    "AZURE": ("bucketProvider", "containerName"),
}
BUCKET_REQUIRED = {
    "AWS": ("bucketPath", "iamRoleArn"),
    "GCP": ("bucketPath", "accessKeyId", "secretAccessKey"),
    "AZURE": ("containerName", "connectionString"),
}
#: PATCH: "The secrets of the specified bucket provider are always required"
BUCKET_SECRETS = {"AWS": (), "GCP": ("secretAccessKey",), "AZURE": ("connectionString",)}
PERIODS = (6, 8, 12, 16, 20, 24, 36, 48)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


@dataclass
class Fault:
    status: int | None = None  # answer this status instead
    delay: float = 0.0  # answer this much later
    path: str | None = None  # only for requests whose path contains this
    error: str = ""


@dataclass
class FakeService:
    id: str
    name: str
    provider: str = "aws"
    region: str = "us-east-1"
    tier: str = "production"
    state: str = "running"
    tde: bool = False
    compliance: str | None = None
    backup_configuration: dict[str, Any] = field(
        default_factory=lambda: {"backupPeriodInHours": 24, "backupRetentionPeriodInHours": 24, "backupStartTime": None}
    )
    backup_bucket: dict[str, Any] | None = None  # as stored: secrets included
    backups: list[dict[str, Any]] = field(default_factory=list)
    polls_to_running: int = 0  # GETs of a provisioning service until it runs
    restored_from: str | None = None

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "provider": self.provider,
            "region": self.region,
            "state": self.state,
            "tier": self.tier,
            "clickhouseVersion": "26.9.1.1",
            "hasTransparentDataEncryption": self.tde,
            "createdAt": _iso(_now()),
            "idleScaling": True,
            "ipAccessList": [],
            "endpoints": [
                {"protocol": "https", "host": f"{self.id[:8]}.{self.region}.aws.clickhouse.cloud", "port": 8443}
            ],
        }
        if self.compliance:
            out["complianceType"] = self.compliance
        return out

    def public_bucket(self) -> dict[str, Any] | None:
        b = self.backup_bucket
        if b is None:
            return None
        keep = BUCKET_PUBLIC.get(b["bucketProvider"], ("bucketProvider",))
        return {"id": b["id"], **{k: b[k] for k in keep if b.get(k) is not None}}


class _HttpError(Exception):
    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


class CloudApiServer:
    def __init__(self, keys: dict[str, str] | None = None, org_id: str = ORG_ID) -> None:
        self.keys = dict(keys or {KEY_ID: KEY_SECRET})
        self.org_id = org_id
        self.lock = threading.RLock()
        self.services: dict[str, FakeService] = {}
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, Any]] = []
        self.provision_polls = 2
        self.passwords: list[str] = []  # every new service's password, to check none leaks
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        server = self

        class Handler(_Handler):
            api = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="cloud-api-server", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def reset(self) -> None:
        with self.lock:
            self.services.clear()
            self.faults.clear()
            self.requests.clear()
            self.passwords.clear()
            self.provision_polls = 2

    # ---------------------------------------------------------------------------- state

    def add_service(self, name: str, **kw: Any) -> str:
        sid = str(uuid.uuid4())
        with self.lock:
            self.services[sid] = FakeService(sid, name, **kw)
        return sid

    def add_backup(
        self,
        service_id: str,
        status: str = "done",
        type: str = "full",
        started_at: datetime | None = None,
        size: int = 123_456_789,
        bucket: dict[str, Any] | None = None,
    ) -> str:
        bid = str(uuid.uuid4())
        started = started_at or _now() - timedelta(hours=1)
        b: dict[str, Any] = {
            "id": bid,
            "status": status,
            "serviceId": service_id,
            "startedAt": _iso(started),
            "sizeInBytes": size,
            "durationInSeconds": 95,
            "type": type,
            "backupName": f"{started:%Y%m%dT%H%M%S}-{bid[:8]}",
        }
        if status != "in_progress":
            b["finishedAt"] = _iso(started + timedelta(seconds=95))
        if bucket is not None:
            keep = BUCKET_PUBLIC.get(bucket.get("bucketProvider", ""), ("bucketProvider",))
            b["bucket"] = {k: bucket[k] for k in keep if k in bucket}
        with self.lock:
            self.services[service_id].backups.append(b)
        return bid

    def fault(
        self, status: int | None = None, *, delay: float = 0.0, times: int = 1, path: str | None = None, error: str = ""
    ) -> None:
        with self.lock:
            self.faults += [Fault(status, delay, path, error) for _ in range(times)]

    def by_name(self, name: str) -> list[FakeService]:
        with self.lock:
            return [s for s in self.services.values() if s.name == name]

    def calls(self, method: str | None = None, contains: str = "") -> list[tuple[str, str, Any]]:
        with self.lock:
            return [r for r in self.requests if (method is None or r[0] == method) and contains in r[1]]

    # --------------------------------------------------------------------------- routing

    def handle(self, method: str, path: str, headers: Any, body: Any) -> tuple[int, Any]:
        with self.lock:
            self.requests.append((method, path, body))
            fault = next((f for f in self.faults if f.path is None or f.path in path), None)
            if fault is not None:
                self.faults.remove(fault)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status is not None:
                default = {429: "Too many requests", 500: "Internal server error", 503: "Service unavailable"}
                raise _HttpError(fault.status, fault.error or default.get(fault.status, "Error"))
        self._auth(headers)
        m = re.fullmatch(r"/v1/organizations/([^/]+)(/.*)?", path)
        if not m:
            raise _HttpError(404, "Not found")
        if m.group(1) != self.org_id:
            raise _HttpError(404, f"Organization {m.group(1)} not found")  # assumed wording
        rest = m.group(2) or ""
        with self.lock:
            return self._route(method, rest, body)

    def _auth(self, headers: Any) -> None:
        value = headers.get("Authorization") or ""
        if value.startswith("Basic "):
            try:
                key_id, _, secret = base64.b64decode(value[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                key_id, secret = "", ""
            if key_id in self.keys and self.keys[key_id] == secret:
                return
        raise _HttpError(401, "Unauthorized")  # assumed: the documented error shape with 401

    def _route(self, method: str, rest: str, body: Any) -> tuple[int, Any]:
        if rest == "/services":
            if method == "GET":
                return 200, [s.to_api() for s in self.services.values()]
            if method == "POST":
                return 200, self._create(body)
        m = re.fullmatch(r"/services/([^/]+)(/[A-Za-z]+)?(/[^/]+)?", rest)
        if not m:
            raise _HttpError(404, "Not found")
        svc = self.services.get(m.group(1))
        if svc is None:
            raise _HttpError(404, f"Service {m.group(1)} not found")
        sub, item = m.group(2) or "", (m.group(3) or "")[1:]
        if sub == "" and method == "GET":
            if svc.state == "provisioning":
                svc.polls_to_running -= 1
                if svc.polls_to_running <= 0:
                    svc.state = "running"
            return 200, svc.to_api()
        if sub == "/backupConfiguration":
            if method == "GET":
                return 200, dict(svc.backup_configuration)
            if method == "PATCH":
                return 200, self._patch_configuration(svc, body)
        if sub == "/backupBucket":
            return self._bucket(svc, method, body)
        if sub == "/backups" and method == "GET":
            ordered = sorted(svc.backups, key=lambda b: b["startedAt"], reverse=True)
            if item:
                found = next((b for b in ordered if b["id"] == item), None)
                if found is None:
                    raise _HttpError(404, f"Backup {item} not found")
                return 200, found
            return 200, ordered
        raise _HttpError(404, "Not found")

    def _patch_configuration(self, svc: FakeService, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _HttpError(400, "Invalid request body")
        allowed = {"backupPeriodInHours", "backupRetentionPeriodInHours", "backupStartTime"}
        unknown = set(body) - allowed
        if unknown:
            raise _HttpError(400, f"Unknown field(s): {', '.join(sorted(unknown))}")
        new = dict(svc.backup_configuration)
        defaults = {"backupPeriodInHours": 24, "backupRetentionPeriodInHours": 24, "backupStartTime": None}
        for k, v in body.items():
            new[k] = defaults[k] if v is None else v  # "null resets the property to its default"
        period, retention = new["backupPeriodInHours"], new["backupRetentionPeriodInHours"]
        start = new["backupStartTime"]
        if period not in PERIODS:
            raise _HttpError(400, f"backupPeriodInHours must be one of {PERIODS}")
        if not (isinstance(retention, int) and 24 <= retention <= 1080 and retention % 24 == 0):
            raise _HttpError(400, "backupRetentionPeriodInHours must be a whole number of days between 24 and 1080")
        if start is not None:
            if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", str(start)):
                raise _HttpError(400, "backupStartTime must be HH:MM")
            new["backupPeriodInHours"] = 24  # "when defined the backup period resets to every 24 hours"
        svc.backup_configuration = new
        return dict(new)

    def _bucket(self, svc: FakeService, method: str, body: Any) -> tuple[int, Any]:
        if method == "GET":
            if svc.backup_bucket is None:
                raise _HttpError(404, "Backup bucket not found")  # assumed
            return 200, svc.public_bucket()
        if method == "DELETE":
            if svc.backup_bucket is None:
                raise _HttpError(404, "Backup bucket not found")  # assumed
            svc.backup_bucket = None
            return 200, None
        if method in ("POST", "PATCH"):
            if not isinstance(body, dict) or body.get("bucketProvider") not in BUCKET_REQUIRED:
                raise _HttpError(400, "bucketProvider must be one of AWS, GCP, AZURE")
            provider = body["bucketProvider"]
            if method == "POST" and svc.backup_bucket is not None:
                raise _HttpError(400, "The service already has a backup bucket")  # assumed
            if method == "PATCH" and svc.backup_bucket is None:
                raise _HttpError(404, "Backup bucket not found")  # assumed
            required = BUCKET_REQUIRED[provider] if method == "POST" else BUCKET_SECRETS[provider]
            missing = [k for k in required if not body.get(k)]
            if missing:
                raise _HttpError(400, f"Missing field(s) for {provider}: {', '.join(missing)}")
            allowed = set(BUCKET_PUBLIC[provider]) | set(BUCKET_REQUIRED[provider]) | {"iamRoleExternalId"}
            unknown = set(body) - allowed
            if unknown:
                raise _HttpError(400, f"Unknown field(s) for {provider}: {', '.join(sorted(unknown))}")
            base = (
                dict(svc.backup_bucket or {})
                if method == "PATCH" and (svc.backup_bucket or {}).get("bucketProvider") == provider
                else {}
            )
            svc.backup_bucket = {**base, **body, "id": (svc.backup_bucket or {}).get("id") or str(uuid.uuid4())}
            return 200, svc.public_bucket()
        raise _HttpError(404, "Not found")

    def _create(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not body.get("name"):
            raise _HttpError(400, "name is required")
        provider, region, tier = body.get("provider"), body.get("region"), body.get("tier") or "production"
        if provider not in ("aws", "gcp", "azure") or not region:
            raise _HttpError(400, "provider and region are required")
        restored_from = None
        backup_id = body.get("backupId")
        if backup_id:
            source = next((s for s in self.services.values() if any(b["id"] == backup_id for b in s.backups)), None)
            if source is None:
                raise _HttpError(400, f"Backup {backup_id} not found")
            backup = next(b for b in source.backups if b["id"] == backup_id)
            if backup["status"] != "done":
                raise _HttpError(400, f"Backup {backup_id} is not done")
            if region != source.region or tier != source.tier:
                # "the region and the tier of the new instance must be the same as the values of the original"
                raise _HttpError(400, "The region and the tier must be the same as those of the backup's service")
            restored_from = backup_id
        sid = str(uuid.uuid4())
        svc = FakeService(
            sid,
            body["name"],
            provider=provider,
            region=region,
            tier=tier,
            state="provisioning",
            polls_to_running=self.provision_polls,
            restored_from=restored_from,
        )
        self.services[sid] = svc
        password = "NewServicePassw0rd-" + uuid.uuid4().hex
        self.passwords.append(password)
        return {"service": svc.to_api(), "password": password}


class _Handler(BaseHTTPRequestHandler):
    api: CloudApiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        request_id = str(uuid.uuid4())
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            try:
                body = json.loads(raw) if raw else None
            except json.JSONDecodeError:
                raise _HttpError(400, "Invalid JSON body") from None
            status, result = self.api.handle(self.command, self.path.split("?")[0], self.headers, body)
            doc: dict[str, Any] = {"status": status, "requestId": request_id}
            if result is not None:
                doc["result"] = result
        except _HttpError as e:
            status = e.status
            doc = {"status": e.status, "error": e.error, "requestId": request_id}
        data = json.dumps(doc).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    do_GET = do_POST = do_PATCH = do_DELETE = _serve


def running_server() -> Iterator[CloudApiServer]:
    server = CloudApiServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
