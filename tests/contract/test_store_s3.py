"""What only S3Store has, against a real moto server process (no mocks): S3's own limits and its
exact requests (1000 keys a DeleteObjects, pages of 1000, one GET per object read whole and a
ranged one on the same ETag where a stream broke), multipart uploads, the default credential
chain, the table of S3 error codes, and an outage. The contract every store keeps is in
test_store_contract.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError, ResponseStreamingError

from reconciler import errors
from reconciler.model import Bucket, Credentials, Provider
from reconciler.retry import RetryPolicy
from reconciler.stores import Store, open_store
from reconciler.stores.s3 import S3Store
from tests.contract.kinds import (
    FAST,
    PATIENT,
    S3_SECRET,
    S3_TOKEN,
    answered_after_an_outage,
    kind_of,
    s3_closed_port_bucket,
)
from tests.support.servers import MotoServer
from tests.support.tcp_proxy import TcpProxy


@pytest.fixture
def store(s3_bucket: Bucket) -> S3Store:
    return S3Store(s3_bucket, retry=FAST)


def count_calls(store: S3Store, operation: str) -> list[dict[str, Any]]:
    """Every request ``operation`` the store's client sends from now on (its parameters)."""
    calls: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(dict(params))

    store._client.meta.events.register(f"provide-client-params.s3.{operation}", record)
    return calls


def test_open_store_gives_an_s3_store(s3_bucket: Bucket) -> None:
    st: Store = open_store(s3_bucket)
    assert isinstance(st, S3Store)
    assert st.description == f"s3://{s3_bucket.bucket}"


def test_s3_limits_pages_of_1000_and_deletes_of_1000(store: S3Store) -> None:
    # 2500 keys for delete_many (3 batches), of which 1112 exist (2 pages of listing), spread over
    # every batch; the server is the bottleneck when creating objects, so not all of them exist
    keys = [f"clickhouse/svc/daily/{i:05d}" for i in range(2500)]
    existing = [k for i, k in enumerate(keys) if i % 9 < 4]
    assert len(existing) > 1000 and existing[-1] > keys[2000]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: store.write(k, b"x"), existing))

    lists = count_calls(store, "ListObjectsV2")
    assert [o.key for o in store.list("clickhouse/svc/")] == existing
    assert len(lists) == 2 and "ContinuationToken" in lists[1] and "MaxKeys" not in lists[0]

    deletes = count_calls(store, "DeleteObjects")
    assert store.delete_many(keys) == 2500  # S3 counts a missing key as deleted
    assert [len(c["Delete"]["Objects"]) for c in deletes] == [1000, 1000, 500]
    assert all(c["Delete"]["Quiet"] for c in deletes)


def test_open_reads_with_one_get_and_resumes_a_broken_stream(s3_server: MotoServer, s3_bucket: Bucket) -> None:
    proxy = TcpProxy(s3_server.port).start()
    try:
        st = S3Store(replace(s3_bucket, endpoint=proxy.endpoint), retry=FAST)
        data = os.urandom(32 * 1024 * 1024 + 5)
        etag = st.write("big", data)
        gets = count_calls(st, "GetObject")
        with st.open("big") as f:
            head = f.read(1024 * 1024)
            assert len(gets) == 1 and "Range" not in gets[0] and "IfMatch" not in gets[0]  # one GET, whole
            proxy.cut()  # the stream breaks midway
            proxy.restore()
            rest = f.read()
        assert head + rest == data
        assert len(gets) == 2
        assert gets[1]["Range"].startswith("bytes=") and gets[1]["Range"].endswith("-")  # from where it stopped
        assert int(gets[1]["Range"][len("bytes=") : -1]) >= len(head)
        assert gets[1]["IfMatch"] == f'"{etag}"'  # of the same object
    finally:
        proxy.stop()


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


def test_abort_uploads_of_a_missing_bucket(s3_bucket: Bucket) -> None:
    missing = S3Store(replace(s3_bucket, bucket="no-such-bucket-here"), retry=FAST)
    with pytest.raises(
        errors.BucketMissing, match="S3 ListMultipartUploads on s3://no-such-bucket-here/x/.*NoSuchBucket"
    ):
        missing.abort_uploads("x/")


def test_default_chain_when_only_a_role_is_given(s3_bucket: Bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    st = S3Store(replace(s3_bucket, credentials=Credentials(role_arn="arn:aws:iam::1:role/ch")), retry=FAST)
    st.write("k", b"v")
    assert st.read("k") is not None


# ---------------------------------------------------------------------------------------------
# the error table
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def offline_store() -> S3Store:
    return S3Store(s3_closed_port_bucket(), retry=FAST)


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
        ("503", 503, errors.TemporaryError),  # a HEAD has no body: the status is the code
        ("NoSuchBucket", 404, errors.BucketMissing),
        ("NoSuchKey", 404, errors.ObjectMissing),
        ("404", 404, errors.ObjectMissing),
        ("PreconditionFailed", 412, errors.PreconditionFailed),
        ("ConditionalRequestConflict", 409, errors.PreconditionFailed),
        ("AccessDenied", 403, errors.StoreError),
        ("InvalidAccessKeyId", 403, errors.StoreError),
    ],
)
def test_error_table(code: str, status: int, kind: type[Exception], offline_store: S3Store) -> None:
    e = offline_store._translate(client_error(code, status, f"refused {S3_SECRET}"), "S3 PutObject on s3://bkt/k")
    assert kind_of(e) is kind
    assert S3_SECRET not in str(e) and "refused [HIDDEN]" in str(e)
    if kind is errors.StoreError:
        assert str(e) == f"S3 PutObject on s3://bkt/k: {code}: refused [HIDDEN]"
    if kind is errors.TemporaryError:
        assert str(e) == f"{code}: refused [HIDDEN]"  # the cause only: the policy names the request


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
        ReadTimeoutError(endpoint_url="http://127.0.0.1:1"),
        ResponseStreamingError(error="Connection broken: reset"),
    ],
)
def test_transport_errors_are_temporary(error: Exception, offline_store: S3Store) -> None:
    assert kind_of(offline_store._translate(error, "S3 GetObject on s3://bkt/k")) is errors.TemporaryError


def test_secrets_are_never_in_messages() -> None:
    st = S3Store(s3_closed_port_bucket(), retry=RetryPolicy(attempts=1))
    with pytest.raises(errors.TemporaryError) as e:
        st.read("k")
    assert e.value.message.startswith("S3 GetObject on s3://bkt/k failed once: EndpointConnectionError")
    leaked = st._translate(client_error("AccessDenied", 403, f"{S3_TOKEN} / {S3_SECRET}"), "S3 GetObject on x")
    for text in (e.value.message, str(leaked), repr(st), st.description):
        assert S3_SECRET not in text and S3_TOKEN not in text


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
    patient = S3Store(bucket, retry=PATIENT)
    assert answered_after_an_outage(own_server, patient.bucket_exists) is False  # the server that came back: empty
    own_server.create_bucket("outage")
    etag = patient.write("k", b"after")
    assert patient.read("k") == (b"after", etag)
    own_server.reset()
    assert patient.bucket_exists() is False
