"""S3Store against a real moto server process (no mocks): every method of the Store protocol,
the error mapping and the retry policy."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from reconciler import errors
from reconciler.model import Bucket, Credentials, Provider
from reconciler.stores import Store, open_store
from reconciler.stores.retry import RetryPolicy
from reconciler.stores.s3 import S3Store
from tests.servers import MotoServer, free_port

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYzzSECRET"
TOKEN = "FwoGZXIvYXdzEXAMPLEsessionTOKEN0123456789"

#: a retry policy that gives up quickly
FAST = RetryPolicy(attempts=3, total=5.0, initial=0.01, max_wait=0.05, jitter=0.0)


@pytest.fixture
def store(s3_bucket: Bucket) -> S3Store:
    return S3Store(s3_bucket, retry=FAST)


def count_calls(store: S3Store, operation: str) -> list[dict[str, Any]]:
    """Every request ``operation`` the store's client sends from now on (its parameters)."""
    calls: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(params)

    store._client.meta.events.register(f"provide-client-params.s3.{operation}", record)
    return calls


def put_many(store: S3Store, keys: list[str]) -> None:
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: store.write(k, b"x"), keys))


# ---------------------------------------------------------------------------------------------
# the protocol
# ---------------------------------------------------------------------------------------------


def test_open_store_gives_an_s3_store(s3_bucket: Bucket) -> None:
    st: Store = open_store(s3_bucket)
    assert isinstance(st, S3Store)
    assert st.description == f"s3://{s3_bucket.bucket}"


def test_list_paginates_and_delete_many_batches(store: S3Store) -> None:
    # 2500 keys for delete_many (3 batches), of which 1112 exist (2 pages of listing), spread over
    # every batch; the server is the bottleneck when creating objects, so not all of them exist
    keys = [f"clickhouse/svc/daily/{i:05d}" for i in range(2500)]
    existing = [k for i, k in enumerate(keys) if i % 9 < 4]
    assert len(existing) > 1000 and existing[-1] > keys[2000]
    put_many(store, existing)
    store.write("clickhouse/other", b"yy")

    lists = count_calls(store, "ListObjectsV2")
    got = list(store.list("clickhouse/svc/"))
    assert [o.key for o in got] == existing  # in key order, across 2 pages
    assert len(lists) == 2 and "ContinuationToken" in lists[1]
    assert all(o.size == 1 and o.etag and '"' not in o.etag for o in got)
    assert got[0].last_modified.tzinfo is not None
    sub = "clickhouse/svc/daily/0240"
    assert [o.key for o in store.list(sub)] == [k for k in existing if k.startswith(sub)] != []
    assert list(store.list("nothing/")) == []

    deletes = count_calls(store, "DeleteObjects")
    assert store.delete_many(iter(keys)) == 2500  # S3 counts a missing key as deleted
    assert [len(c["Delete"]["Objects"]) for c in deletes] == [1000, 1000, 500]
    assert list(store.list("clickhouse/svc/")) == []
    assert [o.key for o in store.list("clickhouse/")] == ["clickhouse/other"]
    assert store.delete_many([]) == 0
    assert store.delete_many(["clickhouse/other", "clickhouse/other"]) == 1  # duplicates once
    assert list(store.list("clickhouse/")) == []


def test_list_folders(store: S3Store) -> None:
    for key in ["p/a/x", "p/b/1/y", "p/b/2/z", "p/c.2/.backup", "p/top", "q/d/x"]:
        store.write(key, b"")
    assert store.list_folders("p/") == ["a", "b", "c.2"]
    assert store.list_folders("p") == ["a", "b", "c.2"]  # the slash is added
    assert store.list_folders("p/b/") == ["1", "2"]
    assert store.list_folders("none/") == []


def test_read_write_round_trip(store: S3Store) -> None:
    assert store.read("clickhouse/missing.json") is None
    etag = store.write("clickhouse/a.json", b'{"a": 1}')
    assert etag and '"' not in etag
    assert store.read("clickhouse/a.json") == (b'{"a": 1}', etag)
    etag2 = store.write("clickhouse/a.json", b'{"a": 2}')  # overwrite
    assert etag2 != etag
    assert store.read("clickhouse/a.json") == (b'{"a": 2}', etag2)
    [info] = store.list("clickhouse/a.json")
    assert (info.etag, info.size) == (etag2, 8)


def test_open_streams_and_missing(store: S3Store) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    store.write("big", data)
    with store.open("big") as f:
        parts = []
        while chunk := f.read(2048 * 100):
            parts.append(chunk)
    assert b"".join(parts) == data
    with pytest.raises(errors.ObjectMissing, match="does not exist"):
        store.open("absent")


def test_create_only_once(store: S3Store) -> None:
    etag = store.create("clickhouse/.reconciler/lock", b"first")
    with pytest.raises(errors.PreconditionFailed, match="already exists") as e:
        store.create("clickhouse/.reconciler/lock", b"second")
    assert f"s3://{store.bucket}/clickhouse/.reconciler/lock" in e.value.message
    assert store.read("clickhouse/.reconciler/lock") == (b"first", etag)


def test_create_race_has_one_winner(store: S3Store) -> None:
    def attempt(i: int) -> bool:
        try:
            store.create("lock", str(i).encode())
            return True
        except errors.PreconditionFailed:
            return False

    with ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(attempt, range(8))) == 1


def test_replace_needs_the_current_etag(store: S3Store) -> None:
    etag = store.write("k", b"v1")
    etag2 = store.replace("k", b"v2", etag)
    assert store.read("k") == (b"v2", etag2)
    with pytest.raises(errors.PreconditionFailed, match="changed"):
        store.replace("k", b"v3", etag)  # stale
    assert store.read("k") == (b"v2", etag2)
    with pytest.raises(errors.PreconditionFailed, match="no longer exists"):
        store.replace("gone", b"v", etag)


def test_delete_with_and_without_etag(store: S3Store) -> None:
    etag = store.write("k", b"v1")
    with pytest.raises(errors.PreconditionFailed, match="changed"):
        store.delete("k", "0123456789abcdef0123456789abcdef")
    assert store.read("k") is not None
    store.delete("k", etag)
    assert store.read("k") is None
    store.delete("k")  # missing is not an error
    store.delete("k", etag)  # nor with an etag
    store.write("j", b"")
    store.delete("j")
    assert store.read("j") is None


def test_abort_uploads(store: S3Store, s3_server: MotoServer) -> None:
    client = s3_server.client()
    inside = [client.create_multipart_upload(Bucket=store.bucket, Key=f"svc/s/b1/data/{i}") for i in range(3)]
    outside = client.create_multipart_upload(Bucket=store.bucket, Key="svc/s/b2/data/0")
    client.upload_part(
        Bucket=store.bucket, Key=inside[0]["Key"], UploadId=inside[0]["UploadId"], PartNumber=1, Body=b"p" * 10
    )
    assert store.abort_uploads("svc/s/b1/") == 3
    left = client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])
    assert [u["UploadId"] for u in left] == [outside["UploadId"]]
    assert store.abort_uploads("svc/s/b1/") == 0


def test_bucket_exists_and_missing_bucket(s3_bucket: Bucket) -> None:
    assert S3Store(s3_bucket, retry=FAST).bucket_exists()
    missing = S3Store(replace(s3_bucket, bucket="no-such-bucket-here"), retry=FAST)
    assert missing.bucket_exists() is False
    operations = [
        lambda: list(missing.list("x/")),
        lambda: missing.list_folders("x/"),
        lambda: missing.read("x"),
        lambda: missing.open("x"),
        lambda: missing.write("x", b""),
        lambda: missing.create("x", b""),
        lambda: missing.replace("x", b"", "abc"),
        lambda: missing.delete_many(["x", "y"]),
        lambda: missing.abort_uploads("x/"),
    ]
    for op in operations:
        with pytest.raises(errors.BucketMissing, match="s3://no-such-bucket-here/.*NoSuchBucket"):
            op()


def test_default_chain_when_only_a_role_is_given(s3_bucket: Bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    st = S3Store(replace(s3_bucket, credentials=Credentials(role_arn="arn:aws:iam::1:role/ch")), retry=FAST)
    st.write("k", b"v")
    assert st.read("k") is not None


# ---------------------------------------------------------------------------------------------
# errors and retries
# ---------------------------------------------------------------------------------------------


def closed_port_bucket() -> Bucket:
    return Bucket(
        name="primary",
        provider=Provider.S3,
        bucket="bkt",
        region="us-east-1",
        endpoint=f"http://127.0.0.1:{free_port()}",
        credentials=Credentials(access_key_id="AKIAEXAMPLEKEY", secret_access_key=SECRET, session_token=TOKEN),
    )


def test_unreachable_server_is_retried_then_temporary() -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(attempts=3, total=5.0, initial=0.01, max_wait=0.05, jitter=0.0, sleep=sleeps.append)
    st = S3Store(closed_port_bucket(), retry=policy)
    with pytest.raises(errors.TemporaryError) as e:
        st.write("clickhouse/key", b"data")
    msg = e.value.message
    assert msg.startswith("S3 PutObject on s3://bkt/clickhouse/key failed 3 times: EndpointConnectionError")
    assert len(sleeps) == 2
    for secret in (SECRET, TOKEN):
        assert secret not in msg and secret not in repr(st) and secret not in st.description
    with pytest.raises(errors.TemporaryError, match="S3 ListObjectsV2 on s3://bkt/p/ failed 3 times"):
        list(st.list("p/"))


def test_retry_is_bounded_in_time() -> None:
    st = S3Store(closed_port_bucket(), retry=RetryPolicy(attempts=1000, total=0.6, initial=0.05, max_wait=0.1))
    t0 = time.monotonic()
    with pytest.raises(errors.TemporaryError, match="S3 HeadBucket on s3://bkt/ failed"):
        st.bucket_exists()
    assert time.monotonic() - t0 < 3


def test_retry_policy_retries_only_temporary_errors() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise errors.TemporaryError("SlowDown: Please reduce your request rate")
        return "ok"

    assert FAST.run("S3 PutObject on s3://b/k", flaky) == "ok"
    assert len(calls) == 3

    def broken() -> None:
        calls.append(1)
        raise errors.StoreError("AccessDenied")

    calls.clear()
    with pytest.raises(errors.StoreError, match="AccessDenied"):
        FAST.run("x", broken)
    assert len(calls) == 1

    @RetryPolicy(attempts=2, initial=0, jitter=0)("S3 GetObject on s3://b/k")
    def always() -> None:
        raise errors.TemporaryError("InternalError: boom")

    with pytest.raises(errors.TemporaryError, match=r"^S3 GetObject on s3://b/k failed 2 times: InternalError: boom$"):
        always()


@pytest.fixture(scope="module")
def offline_store() -> S3Store:
    return S3Store(closed_port_bucket(), retry=FAST)


def client_error(code: str, status: int, message: str = "msg") -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "PutObject")


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("SlowDown", 503, errors.TemporaryError),
        ("Throttling", 400, errors.TemporaryError),
        ("RequestLimitExceeded", 400, errors.TemporaryError),
        ("TooManyRequests", 429, errors.TemporaryError),
        ("InternalError", 500, errors.TemporaryError),
        ("NoSuchBucket", 404, errors.BucketMissing),
        ("PreconditionFailed", 412, errors.PreconditionFailed),
        ("ConditionalRequestConflict", 409, errors.PreconditionFailed),
        ("AccessDenied", 403, errors.StoreError),
        ("InvalidAccessKeyId", 403, errors.StoreError),
    ],
)
def test_error_mapping(code: str, status: int, kind: type[Exception], offline_store: S3Store) -> None:
    e = offline_store._translate(client_error(code, status, f"refused {SECRET}"), "S3 PutObject on s3://bkt/k")
    assert type(e) is kind
    assert SECRET not in str(e)
    if kind is errors.StoreError:
        assert str(e) == f"S3 PutObject on s3://bkt/k: {code}: refused ***"


# ---------------------------------------------------------------------------------------------
# an outage: the server stops and comes back on the same port
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def own_server() -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_server_restart_on_the_same_port(own_server: MotoServer) -> None:
    own_server.create_bucket("outage")
    bucket = Bucket(
        name="primary",
        provider=Provider.S3,
        bucket="outage",
        region="us-east-1",
        endpoint=own_server.endpoint,
        credentials=Credentials(access_key_id=own_server.access_key, secret_access_key=own_server.secret_key),
    )
    st = S3Store(bucket, retry=FAST)
    st.write("k", b"v")
    port = own_server.port

    own_server.stop()
    assert not own_server.running
    with pytest.raises(errors.TemporaryError, match="S3 GetObject on s3://outage/k failed 3 times"):
        st.read("k")

    own_server.start()
    assert own_server.port == port and own_server.endpoint.endswith(f":{port}")
    assert st.bucket_exists() is False  # moto keeps its state in memory: a restart forgets it
    own_server.create_bucket("outage")
    assert st.write("k", b"again")  # the same store (and its connection pool) works again

    # an outage shorter than the retry budget is ridden out
    patient = S3Store(bucket, retry=RetryPolicy(attempts=50, total=15.0, initial=0.1, max_wait=0.3, jitter=0.0))
    own_server.stop()

    def come_back() -> None:
        time.sleep(0.5)
        own_server.start()

    t = threading.Thread(target=come_back)
    t0 = time.monotonic()
    t.start()
    try:
        assert patient.bucket_exists() is False  # answered by the server that came back (empty)
    finally:
        t.join()
    assert time.monotonic() - t0 >= 0.5
    own_server.create_bucket("outage")
    etag = patient.write("k", b"after")
    assert patient.read("k") == (b"after", etag)
    own_server.reset()
    assert patient.bucket_exists() is False
