"""GCSStore against a real fake-gcs-server process (no mocks): every method of the Store protocol,
the error mapping, the retry policy, an outage, a real ClickHouse backup's files, and the SQL
ClickHouse is given for a GCS bucket. Requests are checked in the server's own request log."""

from __future__ import annotations

import json
import os
import threading
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

from reconciler import errors, layout, sql
from reconciler.clickhouse import ClickHouse
from reconciler.model import Bucket, Credentials, Provider, Scope
from reconciler.stores import Store, open_store
from reconciler.stores.gcs import DEFAULT_JSON_ENDPOINT, GCSStore, json_endpoint
from reconciler.stores.retry import RetryPolicy
from reconciler.stores.s3 import S3Store
from tests.fixtures_gcs import HMAC_KEY, HMAC_SECRET, gcs_bucket_on
from tests.servers import free_port
from tests.servers_gcs import FakeGcsServer

#: a retry policy that gives up quickly
FAST = RetryPolicy(attempts=3, total=5.0, initial=0.01, max_wait=0.05, jitter=0.0)


@pytest.fixture
def store(gcs_bucket: Bucket) -> GCSStore:
    return GCSStore(gcs_bucket, retry=FAST)


def put_many(store: GCSStore, keys: list[str]) -> None:
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: store.write(k, b"x"), keys))


# ---------------------------------------------------------------------------------------------
# the protocol
# ---------------------------------------------------------------------------------------------


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


def test_list_paginates_and_delete_many_batches(gcs_bucket: Bucket, gcs_server: FakeGcsServer) -> None:
    store = GCSStore(gcs_bucket, retry=FAST, list_page_size=100)  # small pages: a test-only setting
    # 350 keys for delete_many (4 batches of at most 100), of which 300 exist, spread over every batch
    keys = [f"clickhouse/svc/daily/{i:05d}" for i in range(350)]
    existing = [k for i, k in enumerate(keys) if i % 7 != 3]
    assert len(existing) == 300 and existing[-1] > keys[300]
    put_many(store, existing)
    store.write("clickhouse/other", b"yy")

    mark = gcs_server.log_size()
    got = list(store.list("clickhouse/svc/"))
    assert [o.key for o in got] == existing  # in key order, across 3 pages
    lists = gcs_server.requests_logged(f"/b/{store.bucket}/o?", since=mark, expect=3)
    assert len(lists) == 3 and "maxResults=100" in lists[0]
    assert "pageToken=" not in lists[0] and all("pageToken=" in r for r in lists[1:])
    assert all(o.size == 1 and o.etag.isdigit() for o in got)
    assert got[0].last_modified.tzinfo is not None
    sub = "clickhouse/svc/daily/0024"
    assert [o.key for o in store.list(sub)] == [k for k in existing if k.startswith(sub)] != []
    assert list(store.list("nothing/")) == []

    mark = gcs_server.log_size()
    t0 = time.monotonic()
    assert store.delete_many(iter(keys)) == 300  # the 50 missing keys are not errors, not counted
    took = time.monotonic() - t0
    assert len(gcs_server.requests_logged("POST /batch/storage/v1", since=mark, expect=4)) == 4
    deletes = gcs_server.requests_logged(f"DELETE /storage/v1/b/{store.bucket}/o/", since=mark, expect=350)
    assert len(deletes) == 350  # the batches' calls, one by one in the server's log
    assert list(store.list("clickhouse/svc/")) == []
    assert [o.key for o in store.list("clickhouse/")] == ["clickhouse/other"]
    assert store.delete_many([]) == 0
    assert store.delete_many(["clickhouse/other", "clickhouse/other"]) == 1  # duplicates once
    assert list(store.list("clickhouse/")) == []
    assert took < 5, f"deleting 350 keys in 4 batch requests took {took:.1f} s"


def test_list_folders(store: GCSStore) -> None:
    for key in ["p/a/x", "p/b/1/y", "p/b/2/z", "p/c.2/.backup", "p/top", "q/d/x"]:
        store.write(key, b"")
    assert store.list_folders("p/") == ["a", "b", "c.2"]
    assert store.list_folders("p") == ["a", "b", "c.2"]  # the slash is added
    assert store.list_folders("p/b/") == ["1", "2"]
    assert store.list_folders("none/") == []


def test_list_folders_across_pages(gcs_bucket: Bucket) -> None:
    store = GCSStore(gcs_bucket, retry=FAST, list_page_size=2)
    for key in ["s/a/1", "s/a/2", "s/b/1", "s/c/1", "s/d/1", "s/e", "s/f/1"]:
        store.write(key, b"")
    assert store.list_folders("s/") == ["a", "b", "c", "d", "f"]


def test_read_write_round_trip(store: GCSStore) -> None:
    assert store.read("clickhouse/missing.json") is None
    etag = store.write("clickhouse/a.json", b'{"a": 1}')
    assert etag.isdigit()  # the generation
    assert store.read("clickhouse/a.json") == (b'{"a": 1}', etag)
    etag2 = store.write("clickhouse/a.json", b'{"a": 2}')  # overwrite: a new generation
    assert etag2 != etag
    assert store.read("clickhouse/a.json") == (b'{"a": 2}', etag2)
    [info] = store.list("clickhouse/a.json")
    assert (info.etag, info.size) == (etag2, 8)


def test_open_streams_and_missing(gcs_bucket: Bucket, gcs_server: FakeGcsServer) -> None:
    store = GCSStore(gcs_bucket, retry=FAST, read_chunk_size=1024 * 1024)
    data = os.urandom(3 * 1024 * 1024 + 17)
    etag = store.write("big", data)
    mark = gcs_server.log_size()
    with store.open("big") as f:
        parts = []
        while chunk := f.read(2048 * 100):
            parts.append(chunk)
    assert b"".join(parts) == data
    downloads = gcs_server.requests_logged("/download/storage/v1/", since=mark, expect=4)
    assert len(downloads) == 4 and all(f"generation={etag}" in r for r in downloads)  # pinned
    with store.open("big") as f:
        assert f.read(10) == data[:10]
    store.write("empty", b"")
    with store.open("empty") as f:
        assert f.read() == b""
    with pytest.raises(errors.ObjectMissing, match="does not exist"):
        store.open("absent")


def test_open_notices_a_replaced_object(gcs_bucket: Bucket) -> None:
    store = GCSStore(gcs_bucket, retry=FAST, read_chunk_size=256 * 1024)
    store.write("obj", os.urandom(1024 * 1024))
    f = store.open("obj")
    f.read(1000)  # the first chunk is here
    store.write("obj", b"new content")
    with pytest.raises(errors.StoreError, match="changed while it was read"):
        f.read()
    f.close()


def test_create_only_once(store: GCSStore) -> None:
    etag = store.create("clickhouse/.reconciler/lock", b"first")
    with pytest.raises(errors.PreconditionFailed, match="already exists") as e:
        store.create("clickhouse/.reconciler/lock", b"second")
    assert f"gs://{store.bucket}/clickhouse/.reconciler/lock" in e.value.message
    assert store.read("clickhouse/.reconciler/lock") == (b"first", etag)


def test_create_race_has_one_winner(store: GCSStore) -> None:
    def attempt(i: int) -> bool:
        try:
            store.create("lock", str(i).encode())
            return True
        except errors.PreconditionFailed:
            return False

    with ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(attempt, range(8))) == 1


def test_replace_needs_the_current_generation(store: GCSStore) -> None:
    etag = store.write("k", b"v1")
    etag2 = store.replace("k", b"v2", etag)
    assert store.read("k") == (b"v2", etag2)
    with pytest.raises(errors.PreconditionFailed, match="changed"):
        store.replace("k", b"v3", etag)  # stale
    with pytest.raises(errors.PreconditionFailed, match="changed"):
        store.replace("k", b"v3", "0123456789abcdef")  # not a generation at all
    assert store.read("k") == (b"v2", etag2)
    with pytest.raises(errors.PreconditionFailed, match="no longer exists"):
        store.replace("gone", b"v", etag)
    assert store.read("gone") is None


def test_delete_with_and_without_generation(store: GCSStore, gcs_server: FakeGcsServer) -> None:
    etag = store.write("k", b"v1")
    with pytest.raises(errors.PreconditionFailed, match="changed"):
        store.delete("k", str(int(etag) + 1))
    assert store.read("k") is not None
    mark = gcs_server.log_size()
    store.delete("k", etag)
    # the DELETE itself carries the precondition (what makes it atomic on GCS)
    [sent] = gcs_server.requests_logged(f"DELETE /storage/v1/b/{store.bucket}/o/k", since=mark, expect=1)
    assert f"ifGenerationMatch={etag}" in sent
    assert store.read("k") is None
    store.delete("k")  # missing is not an error
    store.delete("k", etag)  # nor with a generation
    store.write("j", b"")
    store.delete("j")
    assert store.read("j") is None


def test_abort_uploads_is_zero(store: GCSStore) -> None:
    store.write("svc/s/b1/data/0", b"x")
    assert store.abort_uploads("svc/s/b1/") == 0  # XML multipart uploads are not in the JSON API
    assert store.read("svc/s/b1/data/0") is not None


def test_bucket_exists_and_missing_bucket(gcs_bucket: Bucket) -> None:
    assert GCSStore(gcs_bucket, retry=FAST).bucket_exists()
    missing = GCSStore(replace(gcs_bucket, bucket="no-such-bucket-here"), retry=FAST)
    assert missing.bucket_exists() is False
    operations = [
        lambda: list(missing.list("x/")),
        lambda: missing.list_folders("x/"),
        lambda: missing.read("x"),
        lambda: missing.open("x"),
        lambda: missing.write("x", b""),
        lambda: missing.create("x", b""),
        lambda: missing.replace("x", b"", "123"),
        lambda: missing.delete("x"),
        lambda: missing.delete("x", "123"),
        lambda: missing.delete_many(["x", "y"]),
    ]
    for op in operations:
        with pytest.raises(errors.BucketMissing, match="gs://no-such-bucket-here/.*does not exist"):
            op()
    assert missing.abort_uploads("x/") == 0


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


def closed_port_bucket() -> tuple[Bucket, str]:
    bucket = Bucket(
        name="primary",
        provider=Provider.GCS,
        bucket="bkt",
        credentials=Credentials(hmac_key=HMAC_KEY, hmac_secret=HMAC_SECRET),
    )
    return bucket, f"http://127.0.0.1:{free_port()}"


def test_unreachable_server_is_retried_then_temporary() -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(attempts=3, total=5.0, initial=0.01, max_wait=0.05, jitter=0.0, sleep=sleeps.append)
    bucket, endpoint = closed_port_bucket()
    st = GCSStore(bucket, retry=policy, json_endpoint_override=endpoint)
    with pytest.raises(errors.TemporaryError) as e:
        st.write("clickhouse/key", b"data")
    msg = e.value.message
    assert msg.startswith("GCS objects.insert on gs://bkt/clickhouse/key failed 3 times: ConnectionError: ")
    assert "Connection refused" in msg
    assert len(sleeps) == 2
    for secret in (HMAC_SECRET, HMAC_KEY):
        assert secret not in msg and secret not in repr(st) and secret not in st.description
    with pytest.raises(errors.TemporaryError, match="GCS objects.list on gs://bkt/p/ failed 3 times"):
        list(st.list("p/"))
    with pytest.raises(errors.TemporaryError, match="GCS batch objects.delete on gs://bkt/a failed 3 times"):
        st.delete_many(["a", "b"])


def test_retry_is_bounded_in_time() -> None:
    bucket, endpoint = closed_port_bucket()
    policy = RetryPolicy(attempts=1000, total=0.6, initial=0.05, max_wait=0.1)
    st = GCSStore(bucket, retry=policy, json_endpoint_override=endpoint)
    t0 = time.monotonic()
    with pytest.raises(errors.TemporaryError, match="GCS objects.list on gs://bkt/ failed"):
        st.bucket_exists()
    assert time.monotonic() - t0 < 3


@pytest.fixture(scope="module")
def offline_store() -> GCSStore:
    bucket, endpoint = closed_port_bucket()
    return GCSStore(bucket, retry=FAST, json_endpoint_override=endpoint)


@pytest.mark.parametrize(
    ("status", "reason", "kind"),
    [
        (503, "backendError", errors.TemporaryError),
        (500, "internalError", errors.TemporaryError),
        (429, "rateLimitExceeded", errors.TemporaryError),
        (408, "requestTimeout", errors.TemporaryError),
        (412, "conditionNotMet", errors.PreconditionFailed),
        (404, "notFound", errors.BucketMissing),
        (403, "forbidden", errors.StoreError),
        (401, "required", errors.StoreError),
        (400, "invalid", errors.StoreError),
    ],
)
def test_error_mapping(status: int, reason: str, kind: type[Exception], offline_store: GCSStore) -> None:
    message = f"refused {HMAC_SECRET}"
    e = api_exceptions.from_http_status(status, message, errors=[{"reason": reason, "message": message}])
    mapped = offline_store._translate(e, "GCS objects.insert on gs://bkt/k")
    assert type(mapped) is kind
    assert HMAC_SECRET not in str(mapped)
    if kind is errors.StoreError:
        assert str(mapped) == f"GCS objects.insert on gs://bkt/k: HTTP {status} {reason}: refused ***"


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (requests.exceptions.ConnectionError("reset"), errors.TemporaryError),
        (requests.exceptions.ReadTimeout("read timed out"), errors.TemporaryError),
        (requests.exceptions.ChunkedEncodingError("broken"), errors.TemporaryError),
        (auth_exceptions.TransportError("token endpoint unreachable"), errors.TemporaryError),
        (storage_exceptions.DataCorruption(None, "Checksum mismatch while downloading"), errors.TemporaryError),
        (auth_exceptions.RefreshError("invalid_grant: account disabled"), errors.StoreError),
        (ValueError("odd"), errors.StoreError),
    ],
)
def test_transport_error_mapping(error: Exception, kind: type[Exception], offline_store: GCSStore) -> None:
    assert type(offline_store._translate(error, "GCS objects.get on gs://bkt/k")) is kind


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
    patient = GCSStore(
        bucket,
        retry=RetryPolicy(attempts=50, total=15.0, initial=0.1, max_wait=0.3, jitter=0.0),
        json_endpoint_override=own_server.endpoint,
    )
    own_server.stop()

    def come_back() -> None:
        time.sleep(0.5)
        own_server.start()

    t = threading.Thread(target=come_back)
    t0 = time.monotonic()
    t.start()
    try:
        assert patient.bucket_exists() is True  # answered by the server that came back
    finally:
        t.join()
    assert time.monotonic() - t0 >= 0.5
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
