"""What only GCSStore has, against a real fake-gcs-server process (no mocks): its JSON-API endpoint
rules, its exact requests in the server's own request log (pages, batches of 100, downloads pinned
to a generation, preconditions on the DELETE), Google credentials and their secrets, the table of
GCS errors, an outage, a real ClickHouse backup's files, and the SQL ClickHouse is given for a GCS
bucket. The contract every store keeps is in test_store_contract.py."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
import requests
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.cloud.storage import exceptions as storage_exceptions

from reconciler import errors
from reconciler.bucket import layout
from reconciler.clickhouse import ClickHouse, sql
from reconciler.model import Bucket, Credentials, Provider, Scope
from reconciler.stores import Store, open_store
from reconciler.stores.gcs import DEFAULT_JSON_ENDPOINT, GCSStore, json_endpoint
from reconciler.stores.s3 import S3Store
from tests.contract.kinds import FAST, PATIENT, answered_after_an_outage, gcs_closed_port_bucket, kind_of
from tests.support.fixtures_gcs import HMAC_KEY, HMAC_SECRET, gcs_bucket_on
from tests.support.servers import free_port
from tests.support.servers_gcs import FakeGcsServer


@pytest.fixture
def store(gcs_bucket: Bucket) -> GCSStore:
    return GCSStore(gcs_bucket, retry=FAST)


def put_many(store: GCSStore, keys: list[str]) -> None:
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: store.write(k, b"x"), keys))


def test_open_store_gives_a_gcs_store(gcs_bucket: Bucket, gcs_server: FakeGcsServer) -> None:
    st: Store = open_store(gcs_bucket)
    assert isinstance(st, GCSStore)
    assert st.description == f"gs://{gcs_bucket.bucket}" == repr(st)[len("GCSStore(") : -1]
    assert (st.endpoint, st.emulator) == (gcs_server.endpoint, True)  # from STORAGE_EMULATOR_HOST
    assert st.bucket_exists()


def test_json_endpoint_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    plain = Bucket(name="b", provider=Provider.GCS, bucket="bkt", endpoint="https://s3-interop.example")
    # bucket.endpoint is ClickHouse's S3-interop endpoint, never the JSON API's
    assert json_endpoint(plain) == (DEFAULT_JSON_ENDPOINT, False)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "localhost:4443")  # google's convention: host:port
    assert json_endpoint(plain) == ("http://localhost:4443", True)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "https://emu.internal:4443/")
    assert json_endpoint(plain) == ("https://emu.internal:4443", True)
    # the configured gcs_json_endpoint wins (read with getattr until model.Bucket has the field)
    configured = cast(Bucket, SimpleNamespace(gcs_json_endpoint="https://private.googleapis.example"))
    assert json_endpoint(configured) == ("https://private.googleapis.example", False)
    configured = cast(Bucket, SimpleNamespace(gcs_json_endpoint="http://fake-gcs:4443"))
    assert json_endpoint(configured) == ("http://fake-gcs:4443", True)  # plain http: no credentials sent
    assert json_endpoint(plain, "http://127.0.0.1:1") == ("http://127.0.0.1:1", True)


def test_gcs_requests_pages_and_batches_of_100(gcs_bucket: Bucket, gcs_server: FakeGcsServer) -> None:
    store = GCSStore(gcs_bucket, retry=FAST, page_size=100)  # small pages: a test-only setting
    # 350 keys for delete_many (4 batches of at most 100), of which 300 exist, spread over every batch
    keys = [f"clickhouse/svc/daily/{i:05d}" for i in range(350)]
    existing = [k for i, k in enumerate(keys) if i % 7 != 3]
    put_many(store, existing)

    mark = gcs_server.log_size()
    assert [o.key for o in store.list("clickhouse/svc/")] == existing
    lists = gcs_server.requests_logged(f"/b/{store.bucket}/o?", since=mark, expect=3)
    assert len(lists) == 3 and "maxResults=100" in lists[0]
    assert "pageToken=" not in lists[0] and all("pageToken=" in r for r in lists[1:])

    mark = gcs_server.log_size()
    t0 = time.monotonic()
    assert store.delete_many(iter(keys)) == 350  # the 50 missing keys are gone too
    took = time.monotonic() - t0
    assert len(gcs_server.requests_logged("POST /batch/storage/v1", since=mark, expect=4)) == 4
    deletes = gcs_server.requests_logged(f"DELETE /storage/v1/b/{store.bucket}/o/", since=mark, expect=350)
    assert len(deletes) == 350  # the batches' calls, one by one in the server's log
    assert list(store.list("clickhouse/svc/")) == []
    assert took < 5, f"deleting 350 keys in 4 batch requests took {took:.1f} s"


def test_open_downloads_ranges_of_one_generation(gcs_bucket: Bucket, gcs_server: FakeGcsServer) -> None:
    store = GCSStore(gcs_bucket, retry=FAST, read_chunk=1024 * 1024)
    data = os.urandom(3 * 1024 * 1024 + 17)
    etag = store.write("big", data)
    mark = gcs_server.log_size()
    with store.open("big") as f:
        assert f.read() == data
    downloads = gcs_server.requests_logged("/download/storage/v1/", since=mark, expect=4)
    assert len(downloads) == 4 and all(f"generation={etag}" in r for r in downloads)  # pinned


def test_the_delete_carries_the_generation(store: GCSStore, gcs_server: FakeGcsServer) -> None:
    etag = store.write("k", b"v1")
    with pytest.raises(errors.PreconditionFailed, match="the object changed .expected generation"):
        store.delete("k", str(int(etag) + 1))
    mark = gcs_server.log_size()
    store.delete("k", etag)
    # the DELETE itself carries the precondition (what makes it atomic on GCS)
    [sent] = gcs_server.requests_logged(f"DELETE /storage/v1/b/{store.bucket}/o/k", since=mark, expect=1)
    assert f"ifGenerationMatch={etag}" in sent
    assert store.read("k") is None


# ---------------------------------------------------------------------------------------------
# credentials
# ---------------------------------------------------------------------------------------------


def service_account_file(tmp_path: Path, token_uri: str) -> tuple[Path, str]:
    """A service account key file (a real RSA key, generated) whose token endpoint is ``token_uri``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path = tmp_path / "sa.json"
    info = {
        "type": "service_account",
        "project_id": "proj",
        "private_key_id": "0123456789abcdef0123456789abcdef01234567",
        "private_key": pem,
        "client_email": "reconciler@proj.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }
    path.write_text(json.dumps(info))
    return path, pem


def test_service_account_file_is_used_and_never_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    token_port = free_port()
    path, pem = service_account_file(tmp_path, f"http://127.0.0.1:{token_port}/token")
    bucket = Bucket(
        name="primary",
        provider=Provider.GCS,
        bucket="bkt",
        credentials=Credentials(hmac_key=HMAC_KEY, hmac_secret=HMAC_SECRET, service_account_file=str(path)),
    )
    # an https endpoint is not an emulator: the store signs in with the key (its token endpoint is down)
    st = GCSStore(bucket, retry=FAST, json_endpoint_override=f"https://127.0.0.1:{free_port()}")
    assert not st.emulator
    with pytest.raises(errors.TemporaryError, match=r"^GCS objects.get on gs://bkt/k failed 3 times: ") as e:
        st.read("k")
    assert f"port={token_port}" in e.value.message  # it asked the key's token endpoint for a token
    shown = [e.value.message, str(e.value), repr(st), st.description]
    lines = [line for line in pem.splitlines() if len(line) > 20]
    for text in shown:
        assert HMAC_SECRET not in text and "0123456789abcdef0123456789abcdef01234567" not in text
        assert not any(line in text for line in lines)

    unreadable = GCSStore(
        replace(bucket, credentials=Credentials(service_account_file=str(tmp_path / "none.json"))),
        retry=FAST,
        json_endpoint_override="https://127.0.0.1:1",
    )
    with pytest.raises(errors.StoreError, match="cannot read the service account file .*none.json") as e2:
        unreadable.read("k")
    assert not isinstance(e2.value, errors.TemporaryError)
    (tmp_path / "bad.json").write_text("not json " + pem)
    bad = GCSStore(
        replace(bucket, credentials=Credentials(service_account_file=str(tmp_path / "bad.json"))),
        retry=FAST,
        json_endpoint_override="https://127.0.0.1:1",
    )
    with pytest.raises(errors.StoreError, match="is not JSON") as e3:
        bad.write("k", b"")
    assert not any(line in str(e3.value) for line in lines)


def test_no_application_default_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "adc-missing.json"))
    st = GCSStore(Bucket(name="b", provider=Provider.GCS, bucket="bkt"), retry=FAST)
    assert st.endpoint == DEFAULT_JSON_ENDPOINT and not st.emulator
    with pytest.raises(errors.StoreError, match="no Google credentials") as e:
        st.bucket_exists()
    assert not isinstance(e.value, errors.TemporaryError)


# ---------------------------------------------------------------------------------------------
# errors and retries
# ---------------------------------------------------------------------------------------------


def test_a_refused_connection_names_its_root_cause() -> None:
    bucket, endpoint = gcs_closed_port_bucket()
    st = GCSStore(bucket, retry=FAST, json_endpoint_override=endpoint)
    with pytest.raises(errors.TemporaryError) as e:
        st.write("clickhouse/key", b"data")
    msg = e.value.message
    assert msg.startswith("GCS objects.insert on gs://bkt/clickhouse/key failed 3 times: ConnectionError: ")
    assert "Connection refused" in msg


@pytest.fixture(scope="module")
def offline_store() -> GCSStore:
    bucket, endpoint = gcs_closed_port_bucket()
    return GCSStore(bucket, retry=FAST, json_endpoint_override=endpoint)


@pytest.mark.parametrize(
    ("status", "reason", "kind"),
    [
        (503, "backendError", errors.TemporaryError),
        (500, "internalError", errors.TemporaryError),
        (429, "rateLimitExceeded", errors.TemporaryError),
        (408, "requestTimeout", errors.TemporaryError),
        (412, "conditionNotMet", errors.PreconditionFailed),
        (404, "notFound", errors.BucketMissing),  # GCS says "No such object" when it is the object
        (403, "forbidden", errors.StoreError),
        (401, "required", errors.StoreError),
        (400, "invalid", errors.StoreError),
    ],
)
def test_error_table(status: int, reason: str, kind: type[Exception], offline_store: GCSStore) -> None:
    message = f"refused {HMAC_SECRET}"
    e = api_exceptions.from_http_status(status, message, errors=[{"reason": reason, "message": message}])
    mapped = offline_store._translate(e, "GCS objects.insert on gs://bkt/k")
    assert kind_of(mapped) is kind
    assert HMAC_SECRET not in str(mapped) and "refused [HIDDEN]" in str(mapped)
    if kind is errors.StoreError:
        assert str(mapped) == f"GCS objects.insert on gs://bkt/k: HTTP {status} {reason}: refused [HIDDEN]"


def test_a_404_of_an_object_says_so(offline_store: GCSStore) -> None:
    e = api_exceptions.NotFound(
        "No such object: bkt/k", errors=[{"reason": "notFound", "message": "No such object: bkt/k"}]
    )
    assert kind_of(offline_store._translate(e, "GCS objects.get on gs://bkt/k")) is errors.ObjectMissing


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (requests.exceptions.ConnectionError("reset"), errors.TemporaryError),
        (requests.exceptions.ReadTimeout("read timed out"), errors.TemporaryError),
        (requests.exceptions.ChunkedEncodingError("broken"), errors.TemporaryError),
        (auth_exceptions.TransportError("token endpoint unreachable"), errors.TemporaryError),
        (storage_exceptions.DataCorruption(None, "Checksum mismatch while downloading"), errors.TemporaryError),
        (auth_exceptions.RefreshError("invalid_grant: account disabled"), errors.StoreError),
        (auth_exceptions.RefreshError("token endpoint busy", retryable=True), errors.TemporaryError),
        (ValueError("odd"), errors.StoreError),
    ],
)
def test_transport_errors(error: Exception, kind: type[Exception], offline_store: GCSStore) -> None:
    assert kind_of(offline_store._translate(error, "GCS objects.get on gs://bkt/k")) is kind


def test_retried_request_passes(store: GCSStore) -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise api_exceptions.ServiceUnavailable("backend error")
        return store.write("k", b"v")

    assert store._call("objects.insert", "k", flaky).isdigit()
    assert len(calls) == 3


# ---------------------------------------------------------------------------------------------
# an outage: the server stops and comes back on the same port
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def own_server() -> Iterator[FakeGcsServer]:
    server = FakeGcsServer(backend="filesystem")  # objects outlive a restart
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_server_restart_on_the_same_port(own_server: FakeGcsServer) -> None:
    own_server.create_bucket("outage")
    bucket = gcs_bucket_on(own_server, "outage")
    st = GCSStore(bucket, retry=FAST, json_endpoint_override=own_server.endpoint)
    etag = st.write("k", b"v")
    port = own_server.port

    own_server.stop()
    assert not own_server.running
    with pytest.raises(errors.TemporaryError, match="GCS objects.get on gs://outage/k failed 3 times") as e:
        st.read("k")
    assert HMAC_SECRET not in e.value.message and HMAC_KEY not in e.value.message

    own_server.start()
    assert own_server.port == port and own_server.endpoint.endswith(f":{port}")
    assert st.read("k") == (b"v", etag)  # the filesystem backend keeps objects through a restart
    assert st.write("k", b"again")  # the same store (and its connection pool) works again

    # an outage shorter than the retry budget is ridden out
    patient = GCSStore(bucket, retry=PATIENT, json_endpoint_override=own_server.endpoint)
    assert answered_after_an_outage(own_server, patient.bucket_exists) is True  # the filesystem backend kept it
    etag = patient.write("k", b"after")
    assert patient.read("k") == (b"after", etag)


# ---------------------------------------------------------------------------------------------
# a real ClickHouse backup's files, and the SQL ClickHouse is given for GCS
# ---------------------------------------------------------------------------------------------


def test_a_clickhouse_backup_in_gcs(ch: ClickHouse, s3_bucket: Bucket, store: GCSStore, gcs_bucket: Bucket) -> None:
    """ClickHouse cannot write into fake-gcs-server (it has no S3-XML API: checked on ClickHouse
    26.9, chdb 4.4), so the backup is made to S3 (moto) and its objects copied under the same keys:
    GCSStore must see them as S3Store does."""
    db = f"gcs_{uuid.uuid4().hex[:8]}"
    ch.command(f"CREATE DATABASE {db}")
    ch.command(f"CREATE TABLE {db}.t (id UInt64, s String) ENGINE = MergeTree ORDER BY id")
    ch.command(f"INSERT INTO {db}.t SELECT number, toString(number * 7) FROM numbers(5000)")
    key = layout.backup_prefix(s3_bucket, "analytics", "daily", "20261125T030000Z")
    op_id = f"gcs-test-{uuid.uuid4().hex}"
    ch.start(sql.backup_sql(Scope(databases=(db,)), sql.destination_sql(s3_bucket, key), op_id))
    op = ch.wait(op_id, timeout=60)
    assert op.succeeded, op.error

    s3 = S3Store(s3_bucket, retry=FAST)
    objects = {o.key: o.size for o in s3.list(key)}
    assert key + layout.MANIFEST in objects and len(objects) >= 5
    for k in objects:
        got = s3.read(k)
        assert got is not None
        store.write(k, got[0])

    listed = list(store.list(key))
    assert [o.key for o in listed] == sorted(objects)
    assert {o.key: o.size for o in listed} == objects
    assert store.list_folders(layout.schedule_prefix(gcs_bucket, "analytics", "daily")) == ["20261125T030000Z"]
    for o in listed:
        data = store.read(o.key)
        s3_data = s3.read(o.key)
        assert data is not None and s3_data is not None
        assert data == (s3_data[0], o.etag)
    manifest = store.read(key + layout.MANIFEST)
    assert manifest is not None and b"<contents>" in manifest[0]
    ch.command(f"DROP DATABASE {db} SYNC")


def test_destination_sql_for_gcs() -> None:
    bucket = Bucket(
        name="primary",
        provider=Provider.GCS,
        bucket="acme-ch-backups",
        prefix="clickhouse",
        credentials=Credentials(hmac_key="GOOG1EKEY", hmac_secret="s3cr'et"),
    )
    key = "clickhouse/analytics/daily/20261125T030000Z/"
    assert sql.destination_sql(bucket, key) == (
        "S3('https://storage.googleapis.com/acme-ch-backups/clickhouse/analytics/daily/20261125T030000Z', "
        "'GOOG1EKEY', 's3cr\\'et')"
    )
    assert sql.destination_sql(bucket, key, hide=True) == (
        "S3('https://storage.googleapis.com/acme-ch-backups/clickhouse/analytics/daily/20261125T030000Z', "
        "'GOOG1EKEY', '[HIDDEN]')"
    )
    other = replace(bucket, endpoint="http://127.0.0.1:9000/")
    assert sql.destination_sql(other, key) == (
        "S3('http://127.0.0.1:9000/acme-ch-backups/clickhouse/analytics/daily/20261125T030000Z', "
        "'GOOG1EKEY', 's3cr\\'et')"
    )
    assert sql.destination_sql(other, key, hide=True) == (
        "S3('http://127.0.0.1:9000/acme-ch-backups/clickhouse/analytics/daily/20261125T030000Z', "
        "'GOOG1EKEY', '[HIDDEN]')"
    )
    # without HMAC keys ClickHouse uses its own (e.g. the Cloud service's) credentials
    bare = replace(bucket, credentials=Credentials(service_account_file="/etc/sa.json"))
    assert sql.destination_sql(bare, key, hide=True) == (
        "S3('https://storage.googleapis.com/acme-ch-backups/clickhouse/analytics/daily/20261125T030000Z')"
    )
