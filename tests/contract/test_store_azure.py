"""What only AzureStore has, against a real Azurite process (no mocks): its exact requests (Blob
Batch of 256, List Blobs pages), uncommitted blocks, both credential forms and their secrets, the
table of Azure error codes, an outage — and ClickHouse (the session's chdb engine) really backing
up into Azurite and restoring from it. The contract every store keeps is in test_store_contract.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, IncompleteReadError, ServiceRequestError, ServiceResponseError

from reconciler import errors
from reconciler.clickhouse import ClickHouse, sql
from reconciler.clickhouse.manifest import check_files, parse_manifest
from reconciler.model import Bucket, Credentials, Provider
from reconciler.retry import RetryPolicy
from reconciler.stores import Store, open_store
from reconciler.stores.azure import DELETE_BATCH, AzureStore
from tests.contract.kinds import FAST, PATIENT, answered_after_an_outage, azure_closed_port_bucket, kind_of
from tests.support.fixtures_azure import azure_bucket_for, new_container
from tests.support.servers_azure import ACCOUNT_KEY, AzuriteServer


@pytest.fixture
def store(azure_bucket: Bucket) -> AzureStore:
    return AzureStore(azure_bucket, retry=FAST)


def count_calls(monkeypatch: pytest.MonkeyPatch, store: AzureStore, method: str) -> list[tuple[Any, ...]]:
    """The positional arguments of every ``ContainerClient.<method>`` call the store makes from now on."""
    calls: list[tuple[Any, ...]] = []
    real = getattr(store._client, method)

    def record(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(store._client, method, record)
    return calls


def test_open_store_gives_an_azure_store(azure_bucket: Bucket) -> None:
    st: Store = open_store(azure_bucket)
    assert isinstance(st, AzureStore)
    assert st.description == f"azure://{azure_bucket.bucket}"
    assert repr(st) == f"AzureStore(azure://{azure_bucket.bucket})"


def test_azure_limits_blob_batches_of_256_and_list_pages(azure_bucket: Bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    # Azurite pages at 5000; a small page size (test only) shows paging without 5000 objects.
    # 700 keys for delete_many (3 batches of at most 256), of which 600 exist (6 pages of 100)
    store = AzureStore(azure_bucket, retry=FAST, page_size=100)
    assert store.delete_batch == DELETE_BATCH == 256
    keys = [f"clickhouse/svc/daily/{i:05d}" for i in range(700)]
    existing = [k for i, k in enumerate(keys) if i % 7]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: store.write(k, b"x"), existing))

    lists = count_calls(monkeypatch, store, "list_blobs")
    assert [o.key for o in store.list("clickhouse/svc/")] == existing
    assert len(lists) == 6

    deletes = count_calls(monkeypatch, store, "delete_blobs")
    assert store.delete_many(keys) == 700  # a blob already gone counts as deleted, as on S3
    assert [len(c) for c in deletes] == [256, 256, 188]


def test_abort_uploads_is_nothing_to_do(azure_bucket: Bucket, azurite_server: AzuriteServer) -> None:
    # an upload cut short: blocks staged, never committed; not a blob, not listed
    store = AzureStore(azure_bucket, retry=FAST)
    blob = azurite_server.client().get_blob_client(store.container, "svc/s/b1/data/0")
    blob.stage_block("AAAA", b"p" * 10)
    assert list(store.list("svc/")) == []
    assert store.abort_uploads("svc/s/b1/") == 0
    missing = AzureStore(replace(azure_bucket, bucket="no-such-container"), retry=FAST)
    assert missing.abort_uploads("x/") == 0  # no request at all


def test_a_missing_container_is_container_not_found(azure_bucket: Bucket) -> None:
    missing = AzureStore(replace(azure_bucket, bucket="no-such-container"), retry=FAST)
    said = "azure://no-such-container/x: container no-such-container does not exist .ContainerNotFound"
    with pytest.raises(errors.BucketMissing, match=said):
        missing.write("x", b"")


# ---------------------------------------------------------------------------------------------
# credentials
# ---------------------------------------------------------------------------------------------


def test_both_credential_forms(azure_bucket_any: Bucket) -> None:
    st = AzureStore(azure_bucket_any, retry=FAST)
    assert st.bucket_exists()
    etag = st.create("clickhouse/x", b"v")
    assert st.read("clickhouse/x") == (b"v", etag)
    assert [o.key for o in st.list("clickhouse/")] == ["clickhouse/x"]
    assert st.delete_many(["clickhouse/x"]) == 1


def test_credentials_are_required(azure_bucket: Bucket) -> None:
    with pytest.raises(errors.ReconcilerError, match="needs credentials: set connection_string, or account_name"):
        AzureStore(replace(azure_bucket, credentials=Credentials()))
    with pytest.raises(errors.ReconcilerError, match="needs credentials"):
        AzureStore(replace(azure_bucket, credentials=Credentials(account_name="devstoreaccount1")))
    with pytest.raises(errors.ReconcilerError, match="not valid base64") as e:
        AzureStore(replace(azure_bucket, credentials=Credentials(account_name="a", account_key="not base64!!")))
    assert "not base64!!" not in str(e.value)
    broken = f"AccountName=a;AccountKey={ACCOUNT_KEY};garbage"
    with pytest.raises(errors.ReconcilerError, match="connection string .* is not valid") as e:
        AzureStore(replace(azure_bucket, credentials=Credentials(connection_string=broken)))
    assert ACCOUNT_KEY not in str(e.value) and "garbage" not in str(e.value)


def test_wrong_key_is_a_store_error_without_the_key(azure_bucket: Bucket) -> None:
    wrong = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk="
    for creds in (
        Credentials(account_name="devstoreaccount1", account_key=wrong),
        Credentials(
            connection_string=f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={wrong};"
            f"BlobEndpoint={azure_bucket.endpoint};"
        ),
    ):
        st = AzureStore(replace(azure_bucket, credentials=creds), retry=FAST)
        with pytest.raises(errors.StoreError, match="AuthorizationFailure|AuthenticationFailed|403") as e:
            st.read("k")
        assert type(e.value) is errors.StoreError  # permanent: not retried
        assert wrong not in str(e.value)


# ---------------------------------------------------------------------------------------------
# errors and retries
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["account_key", "connection_string"])
def test_unreachable_server_is_retried_then_temporary(form: str) -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(attempts=3, total=5.0, initial=0.01, max_wait=0.05, jitter=0.0, sleep=sleeps.append)
    bucket = azure_closed_port_bucket(form)
    st = AzureStore(bucket, retry=policy)
    with pytest.raises(errors.TemporaryError) as e:
        st.write("clickhouse/key", b"data")
    msg = e.value.message
    assert msg.startswith("Azure PutBlob on azure://bkt/clickhouse/key failed 3 times: ServiceRequestError"), msg
    assert len(sleeps) == 2
    for secret in (ACCOUNT_KEY, bucket.credentials.connection_string or ACCOUNT_KEY):
        assert secret not in msg and secret not in repr(st) and secret not in st.description
        assert secret not in str(e.value)
    with pytest.raises(errors.TemporaryError, match="Azure ListBlobs on azure://bkt/p/ failed 3 times"):
        list(st.list("p/"))


def http_error(code: str | None, status: int, message: str = "msg") -> HttpResponseError:
    e = HttpResponseError(message=f"{message}\nRequestId:1\nTime:now\nErrorCode:{code}")
    e.status_code = status
    e.error_code = code  # type: ignore[attr-defined]  # set by azure-storage-blob on its errors
    return e


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("ServerBusy", 503, errors.TemporaryError),
        ("OperationTimedOut", 500, errors.TemporaryError),
        ("InternalError", 500, errors.TemporaryError),
        (None, 429, errors.TemporaryError),
        (None, 502, errors.TemporaryError),
        ("ContainerNotFound", 404, errors.BucketMissing),
        ("BlobNotFound", 404, errors.ObjectMissing),
        ("ConditionNotMet", 412, errors.PreconditionFailed),
        ("BlobAlreadyExists", 409, errors.PreconditionFailed),
        ("AuthorizationFailure", 403, errors.StoreError),
        ("InvalidResourceName", 400, errors.StoreError),
    ],
)
def test_error_table(code: str | None, status: int, kind: type[Exception], azure_bucket: Bucket) -> None:
    st = AzureStore(azure_bucket_for_secrets(azure_bucket), retry=FAST)
    e = st._translate(http_error(code, status, f"refused AccountKey={ACCOUNT_KEY}"), "Azure PutBlob on x")
    assert kind_of(e) is kind
    assert ACCOUNT_KEY not in str(e) and "refused AccountKey=[HIDDEN]" in str(e)
    if kind is errors.StoreError:
        assert str(e) == f"Azure PutBlob on x: {code}: refused AccountKey=[HIDDEN]"


def azure_bucket_for_secrets(bucket: Bucket) -> Bucket:
    return replace(bucket, credentials=Credentials(account_name="devstoreaccount1", account_key=ACCOUNT_KEY))


def test_connection_errors_are_temporary_and_redacted(azure_bucket: Bucket) -> None:
    st = AzureStore(azure_bucket, retry=FAST)
    sas = "https://a.blob.core.windows.net/c/k?sv=2024&sig=SECRETSIG%3D"
    cut_short = IncompleteReadError(f"body cut short {sas}")  # an HttpResponseError without a status
    for err in (ServiceRequestError(f"refused {sas}"), ServiceResponseError(f"reset {ACCOUNT_KEY}"), cut_short):
        e = st._translate(err, "Azure GetBlob on x")
        assert type(e) is errors.TemporaryError
        assert "SECRETSIG" not in str(e) and ACCOUNT_KEY not in str(e) and "[HIDDEN]" in str(e)


# ---------------------------------------------------------------------------------------------
# an outage: the server stops and comes back on the same port, with its data
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def own_server() -> Iterator[AzuriteServer]:
    server = AzuriteServer()
    try:
        server.start()  # a server that does not come up fails with the tail of its log
        yield server
    finally:
        server.cleanup()


def test_server_restart_on_the_same_port(own_server: AzuriteServer) -> None:
    own_server.create_container("outage")
    bucket = azure_bucket_for(own_server, "outage", "account_key")
    st = AzureStore(bucket, retry=FAST)
    etag = st.write("k", b"v")
    port = own_server.port

    own_server.stop()
    assert not own_server.running
    with pytest.raises(errors.TemporaryError, match="Azure GetBlob on azure://outage/k failed 3 times") as e:
        st.read("k")
    assert ACCOUNT_KEY not in str(e.value)

    # an outage shorter than the retry budget is ridden out; Azurite keeps its data on disk
    patient = AzureStore(bucket, retry=PATIENT)
    assert answered_after_an_outage(own_server, lambda: patient.read("k")) == (b"v", etag)
    assert own_server.port == port
    assert st.write("k", b"again")  # the first store (and its connection pool) works again


# ---------------------------------------------------------------------------------------------
# ClickHouse writes into Azurite through AzureBlobStorage(...) and restores from it
# ---------------------------------------------------------------------------------------------


def test_clickhouse_backup_and_restore_through_azurite(azure_bucket_any: Bucket, ch: ClickHouse) -> None:
    db = f"az_{uuid.uuid4().hex[:6]}"
    ch.command(f"CREATE DATABASE {db}")
    ch.command(f"CREATE TABLE {db}.orders (id UInt64, amount Float64, note String) ENGINE = MergeTree ORDER BY id")
    ch.command(f"CREATE TABLE {db}.customers (id UInt32, name String) ENGINE = MergeTree ORDER BY id")
    ch.command(f"INSERT INTO {db}.orders SELECT number, number / 7, toString(cityHash64(number)) FROM numbers(3000)")
    ch.command(f"INSERT INTO {db}.customers SELECT number, concat('c', toString(number)) FROM numbers(100)")
    key = f"clickhouse/analytics/daily/{uuid.uuid4().hex[:8]}"
    destination = sql.destination_sql(azure_bucket_any, key)
    restored = f"{db}_restored"
    try:
        rows = ch.query(f"BACKUP DATABASE {db} TO {destination}")
        assert rows[0][1] == "BACKUP_CREATED"

        store = AzureStore(azure_bucket_any, retry=FAST)
        found = store.read(f"{key}/.backup")
        assert found is not None
        manifest = parse_manifest(found[0])
        listed = {o.key[len(key) + 1 :]: o.size for o in store.list(f"{key}/")}
        assert check_files(manifest, listed) == []
        stored = {f.stored_name for f in manifest.files if f.stored_size}
        assert stored and stored | {".backup"} == set(listed)  # every file, and nothing else

        ch.command(f"RESTORE DATABASE {db} AS {restored} FROM {destination}")
        for table in ("orders", "customers"):
            a = ch.query(f"SELECT count(), sum(cityHash64(*)) FROM {db}.{table}")
            b = ch.query(f"SELECT count(), sum(cityHash64(*)) FROM {restored}.{table}")
            assert a == b and a[0][0] in (3000, 100)
    finally:
        ch.command(f"DROP DATABASE IF EXISTS {restored} SYNC")
        ch.command(f"DROP DATABASE IF EXISTS {db} SYNC")


def test_destination_sql_hides_the_secret(azure_bucket_any: Bucket) -> None:
    hidden = sql.destination_sql(azure_bucket_any, "k", hide=True)
    assert hidden.startswith("AzureBlobStorage(") and ACCOUNT_KEY not in hidden and "[HIDDEN]" in hidden


def test_new_container_helper(azurite_server: AzuriteServer) -> None:
    name = new_container(azurite_server)
    bucket = azure_bucket_for(azurite_server, name)
    assert bucket.provider == Provider.AZURE and bucket.endpoint == azurite_server.endpoint
    assert AzureStore(bucket, retry=FAST).bucket_exists()


def test_missing_azurite_fails_saying_how_to_fix_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    import tests.support.servers_azure as servers_azure

    monkeypatch.setattr(servers_azure, "AZURITE_BLOB", tmp_path / "node_modules" / ".bin" / "azurite-blob")
    why = servers_azure.azurite_missing()
    assert why is not None and "run scripts/setup.sh" in why and "npm ci --prefix tests/azurite" in why
    server = AzuriteServer()
    try:
        with pytest.raises(RuntimeError, match="run scripts/setup.sh"):
            server.start()
    finally:
        server.cleanup()


def test_server_side_copy_within_one_account_needs_a_source_that_can_sign(
    azurite_server: AzuriteServer, azure_bucket: Bucket
) -> None:
    """Copy from URL: one Copy Blob From URL up to the limit, else Put Block From URL per part and
    one Put Block List; the source's SAS never shows in a message; a source of another account,
    or one without a key to sign with, is streamed instead."""
    from reconciler.stores.stats import STATS

    source = AzureStore(
        replace(azure_bucket, credentials=Credentials(connection_string=azurite_server.connection_string))
    )
    target = AzureStore(azure_bucket_for(azurite_server, new_container(azurite_server)), retry=FAST)
    assert target.can_copy_from(source) and source.can_copy_from(target)  # both credential forms sign
    source.write("a/one", b"0123456789" * 1000)
    STATS.reset()
    target.copy_from(source, "a/one", "b/one", 10000)
    target.copy_part = target.copy_object_limit = 4096
    target.copy_from(source, "a/one", "b/parts", 10000)
    assert {op: n for (p, op), n in STATS.requests.items() if p == "Azure"} == {
        "CopyBlobFromURL": 1,
        "PutBlockFromURL": 3,
        "PutBlockList": 1,
    }
    one, parts = target.read("b/one"), target.read("b/parts")
    assert one is not None and parts is not None and one[0] == parts[0] == b"0123456789" * 1000
    with pytest.raises(errors.ReconcilerError) as e:
        target.copy_from(source, "a/missing", "b/missing", 10)
    assert "sig=" not in str(e.value) and ACCOUNT_KEY not in str(e.value) and "b/missing" in str(e.value)
    assert target.read("b/missing") is None
    other = replace(azure_bucket, endpoint=azure_bucket.endpoint.replace("127.0.0.1", "localhost"))  # type: ignore[union-attr]
    assert not target.can_copy_from(AzureStore(other))  # another account URL: streamed
