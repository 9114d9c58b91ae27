"""The Store contract, run against every store: S3 (moto's server), Azure (Azurite), GCS
(fake-gcs-server) and the memory store. Real server processes, no mocks. What only one provider
has (multipart uploads, generations, connection strings, its exact requests) is in the provider
modules beside this one."""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from reconciler import errors
from reconciler.retry import RetryPolicy
from reconciler.stores.base import BaseStore
from reconciler.stores.stats import STATS
from tests.contract.kinds import KINDS, Kind, kind


@pytest.fixture(params=KINDS)
def k(request: pytest.FixtureRequest) -> Kind:
    return kind(request, request.param)


@pytest.fixture
def store(k: Kind) -> BaseStore:
    return k.make()


def put_many(store: BaseStore, keys: list[str], data: bytes = b"x") -> None:
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: store.write(key, data), keys))


def requests(store: BaseStore) -> Counter[str]:
    """The requests counted since the last ``STATS.reset()``, by operation, of this store's provider."""
    return Counter({op: n for (provider, op), n in STATS.requests.items() if provider == store.provider})


# ---------------------------------------------------------------------------------------------
# naming
# ---------------------------------------------------------------------------------------------


def test_description_url_and_repr_name_the_bucket(store: BaseStore) -> None:
    scheme = {"S3": "s3", "Azure": "azure", "GCS": "gs", "Memory": "memory"}[store.provider]
    assert store.description == f"{scheme}://{store.bucket}"
    assert store.url("a/b") == f"{scheme}://{store.bucket}/a/b"
    assert repr(store) == f"{type(store).__name__}({store.description})"
    assert store.bucket_exists()


# ---------------------------------------------------------------------------------------------
# listing
# ---------------------------------------------------------------------------------------------


def test_list_is_recursive_in_key_order_and_in_pages(k: Kind) -> None:
    store = k.make(page_size=10)
    keys = [f"clickhouse/svc/daily/{i:05d}" for i in range(25)]
    put_many(store, keys)
    store.write("clickhouse/svc/daily/00003/deeper/x", b"yy")
    store.write("clickhouse/other", b"zzz")
    STATS.reset()
    got = list(store.list("clickhouse/svc/"))
    assert [o.key for o in got] == sorted([*keys, "clickhouse/svc/daily/00003/deeper/x"])
    assert requests(store) == {store.ops.list: 3}  # 26 objects in pages of 10
    assert all(o.size == 1 and o.etag and '"' not in o.etag for o in got if o.key in keys)
    assert got[0].last_modified.tzinfo is not None
    assert [o.key for o in store.list("clickhouse/svc/daily/0001")] == keys[10:20]
    assert list(store.list("nothing/")) == []
    assert [o.key for o in store.list("")][-1] == "clickhouse/svc/daily/00024"  # the whole bucket
    [other] = store.list("clickhouse/other")
    assert other.size == 3


def test_list_order_is_byte_order(store: BaseStore) -> None:
    names = ["p/b", "p/a.2/x", "p/a/x", "p/a-1", "p/A", "p/0", "p/a/y/z", "p/~", "p/_"]
    for key in names:
        store.write(key, b"")
    assert [o.key for o in store.list("p/")] == sorted(names)


def test_list_folders(store: BaseStore) -> None:
    for key in ["p/a/x", "p/b/1/y", "p/b/2/z", "p/c.2/.backup", "p/top", "q/d/x"]:
        store.write(key, b"")
    assert store.list_folders("p/") == ["a", "b", "c.2"]
    assert store.list_folders("p") == ["a", "b", "c.2"]  # the slash is added
    assert store.list_folders("p/b/") == ["1", "2"]
    assert store.list_folders("p/a/") == []  # an object, no folder
    assert store.list_folders("none/") == []
    assert store.list_folders("") == ["p", "q"]


def test_list_top(k: Kind) -> None:
    store = k.make(page_size=2)
    for key in ["p/b/.backup", "p/b/reconciler.json", "p/b/data/x/1.bin", "p/b/metadata/m", "p/b2/.backup", "p/c"]:
        store.write(key, b"ab")
    objects, folders = store.list_top("p/b")  # 4 entries in pages of 2: every page is read
    assert [(o.key, o.size) for o in objects] == [("p/b/.backup", 2), ("p/b/reconciler.json", 2)]
    assert folders == ["data", "metadata"]
    assert store.list_top("none/") == ([], [])


def test_list_folders_in_pages_with_objects_beside_them(k: Kind) -> None:
    store = k.make(page_size=3)
    for i in range(8):
        store.write(f"s/{i:02d}/.backup", b"")
        store.write(f"s/{i:02d}/data/x", b"")
        store.write(f"s/{i:02d}.x", b"")  # objects beside the folders share the pages
    STATS.reset()
    assert store.list_folders("s/") == [f"{i:02d}" for i in range(8)]
    assert requests(store)[store.ops.list] >= 3  # 16 entries in pages of 3


# ---------------------------------------------------------------------------------------------
# reading and writing
# ---------------------------------------------------------------------------------------------


def test_read_write_round_trip(store: BaseStore) -> None:
    assert store.read("clickhouse/missing.json") is None
    etag = store.write("clickhouse/a.json", b'{"a": 1}')
    assert etag and '"' not in etag
    assert store.read("clickhouse/a.json") == (b'{"a": 1}', etag)
    etag2 = store.write("clickhouse/a.json", b'{"a": 2}')  # overwrite: a new etag
    assert etag2 != etag
    assert store.read("clickhouse/a.json") == (b'{"a": 2}', etag2)
    [info] = store.list("clickhouse/a.json")
    assert (info.etag, info.size) == (etag2, 8)
    empty = store.write("clickhouse/empty", b"")
    assert store.read("clickhouse/empty") == (b"", empty)


def test_open_streams_in_ranges_of_one_etag(k: Kind) -> None:
    chunk = 256 * 1024
    store = k.make(read_chunk=chunk)
    data = os.urandom(3 * chunk + 17)
    store.write("big", data)
    STATS.reset()
    with store.open("big") as f:
        parts = []
        while part := f.read(100_000):
            parts.append(part)
    assert b"".join(parts) == data
    assert requests(store) == {store.ops.get: math.ceil(len(data) / chunk)}
    assert STATS.bytes_read == len(data)
    with store.open("big") as f:
        assert f.read(10) == data[:10]
    store.write("empty", b"")
    with store.open("empty") as f:
        assert f.read() == b""


def test_open_a_missing_object(store: BaseStore) -> None:
    with pytest.raises(errors.ObjectMissing, match=f"{store.url('absent')}: the object does not exist"):
        store.open("absent")


def test_open_refuses_an_object_replaced_midway(k: Kind) -> None:
    store = k.make(read_chunk=256 * 1024)
    store.write("big", os.urandom(1024 * 1024))
    with store.open("big") as f:
        assert len(f.read(10)) == 10  # the first range is read
        store.write("big", b"other content")
        with pytest.raises(errors.StoreError, match="changed while it was read"):
            f.read()
    store.write("big", os.urandom(1024 * 1024))
    with store.open("big") as f:
        f.read(10)
        store.delete("big")
        with pytest.raises(errors.StoreError, match="changed while it was read"):
            f.read()


# ---------------------------------------------------------------------------------------------
# conditional writes
# ---------------------------------------------------------------------------------------------


def test_create_only_once(store: BaseStore) -> None:
    etag = store.create("clickhouse/.reconciler/lock", b"first")
    with pytest.raises(errors.PreconditionFailed, match="already exists") as e:
        store.create("clickhouse/.reconciler/lock", b"second")
    assert e.value.message.startswith(
        f"{store.provider} {store.ops.put} on {store.url('clickhouse/.reconciler/lock')}: the object already exists ("
    )
    assert store.read("clickhouse/.reconciler/lock") == (b"first", etag)


def test_create_race_has_one_winner(store: BaseStore) -> None:
    def attempt(i: int) -> bool:
        try:
            store.create("lock", str(i).encode())
            return True
        except errors.PreconditionFailed:
            return False

    with ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(attempt, range(8))) == 1


def test_replace_needs_the_current_etag(store: BaseStore) -> None:
    etag = store.write("k", b"v1")
    other = store.write("other", b"o")  # a well-formed etag of another object
    etag2 = store.replace("k", b"v2", etag)
    assert store.read("k") == (b"v2", etag2)
    for stale in (etag, other, "0123456789abcdef"):
        with pytest.raises(errors.PreconditionFailed, match=f"{store.url('k')}: the object changed"):
            store.replace("k", b"v3", stale)
    assert store.read("k") == (b"v2", etag2)
    with pytest.raises(errors.PreconditionFailed, match="the object no longer exists"):
        store.replace("gone", b"v", etag)
    assert store.read("gone") is None


def test_delete_with_and_without_etag(store: BaseStore) -> None:
    etag = store.write("k", b"v1")
    other = store.write("other", b"o")
    with pytest.raises(errors.PreconditionFailed, match=f"{store.url('k')}: the object changed"):
        store.delete("k", other)
    assert store.read("k") is not None
    store.delete("k", etag)
    assert store.read("k") is None
    store.delete("k")  # missing is not an error
    store.delete("k", etag)  # nor with an etag
    store.write("j", b"")
    store.delete("j")
    assert store.read("j") is None
    assert store.read("other") is not None


# ---------------------------------------------------------------------------------------------
# deleting many
# ---------------------------------------------------------------------------------------------


def test_delete_many_in_batches(k: Kind) -> None:
    store = k.make(delete_batch=10)
    keys = [f"clickhouse/svc/daily/{i:05d}" for i in range(35)]
    existing = [key for i, key in enumerate(keys) if i % 7 != 3]  # missing ones in every batch
    put_many(store, existing)
    store.write("clickhouse/other", b"yy")
    STATS.reset()
    assert store.delete_many(iter(keys + keys[:5])) == 35  # a missing key is gone too; duplicates once
    assert requests(store)[store.ops.delete_batch] == 4
    assert list(store.list("clickhouse/svc/")) == []
    assert [o.key for o in store.list("clickhouse/")] == ["clickhouse/other"]
    STATS.reset()
    assert store.delete_many([]) == 0
    assert STATS.total() == 0
    assert store.delete_many(["clickhouse/other", "clickhouse/other"]) == 1
    assert list(store.list("clickhouse/")) == []


def test_abort_uploads_without_uploads(store: BaseStore) -> None:
    store.write("svc/s/b1/data/0", b"x")
    assert store.abort_uploads("svc/s/b1/") == 0
    assert store.read("svc/s/b1/data/0") is not None


# ---------------------------------------------------------------------------------------------
# a bucket that does not exist
# ---------------------------------------------------------------------------------------------


def test_a_missing_bucket(k: Kind) -> None:
    missing = k.missing()
    assert missing.bucket_exists() is False
    operations = {
        "list": lambda: list(missing.list("x/")),
        "list_folders": lambda: missing.list_folders("x/"),
        "read": lambda: missing.read("x"),
        "open": lambda: missing.open("x"),
        "write": lambda: missing.write("x", b""),
        "create": lambda: missing.create("x", b""),
        "replace": lambda: missing.replace("x", b"", "123"),
        "delete": lambda: missing.delete("x"),
        "delete with an etag": lambda: missing.delete("x", "123"),
        "delete_many": lambda: missing.delete_many(["x", "y"]),
    }
    for name, op in operations.items():
        with pytest.raises(errors.BucketMissing) as e:
            op()
        assert f"{missing.url()}" in e.value.message and f"{missing.noun} {missing.bucket} does not exist" in str(
            e.value
        ), name


# ---------------------------------------------------------------------------------------------
# retries, and what a failure says
# ---------------------------------------------------------------------------------------------


def test_an_unreachable_store_is_retried_then_temporary(k: Kind) -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(attempts=3, total=5.0, initial=0.01, max_wait=0.05, jitter=0.0, sleep=sleeps.append)
    st = k.unreachable(policy)
    with pytest.raises(errors.TemporaryError) as e:
        st.write("clickhouse/key", b"data")
    msg = e.value.message
    assert msg.startswith(f"{st.provider} {st.ops.put} on {st.url('clickhouse/key')} failed 3 times: "), msg
    assert len(sleeps) == 2
    for secret in k.secrets:
        assert secret not in msg and secret not in repr(st) and secret not in st.description
    with pytest.raises(errors.TemporaryError, match=f"{st.provider} {st.ops.list} on {st.url('p/')} failed 3 times"):
        list(st.list("p/"))
    batch = f"{st.provider} {st.ops.delete_batch} on {st.url('a')} failed 3 times"
    with pytest.raises(errors.TemporaryError, match=batch):
        st.delete_many(["a", "b"])


def test_retries_are_bounded_in_time(k: Kind) -> None:
    st = k.unreachable(RetryPolicy(attempts=1000, total=0.6, initial=0.05, max_wait=0.1))
    t0 = time.monotonic()
    with pytest.raises(errors.TemporaryError, match=f"{st.provider} {st.ops.bucket} on {st.url()} failed"):
        st.bucket_exists()
    assert time.monotonic() - t0 < 3


def test_requests_are_counted_by_provider_and_operation(store: BaseStore) -> None:
    STATS.reset()
    store.write("k", b"12345")
    store.read("k")
    store.read("absent")
    list(store.list(""))
    store.bucket_exists()
    expected = Counter([store.ops.put, store.ops.get, store.ops.get, store.ops.list, store.ops.bucket])
    assert requests(store) == expected
    assert STATS.bytes_read == 5
    kinds = ", ".join(f"{store.provider} {op} {n}" for op, n in sorted(expected.items()))
    assert STATS.line() == f"storage requests: 5 ({kinds}); bytes read: 5"


# ---------------------------------------------------------------------------------------------
# copies: a streamed upload in parts, and a server-side copy within one provider
# ---------------------------------------------------------------------------------------------

#: S3 takes parts of at least 5 MiB (but the last), GCS chunks of a multiple of 256 KiB
PART = 5 * 1024 * 1024


def test_write_from_streams_in_parts(store: BaseStore) -> None:
    import io

    data = os.urandom(2 * PART + 12345)
    store.upload_part = PART
    etag = store.write_from("big/one", io.BytesIO(data), len(data))
    got = store.read("big/one")
    assert got is not None and got[0] == data and got[1] == etag
    small = store.write_from("big/small", io.BytesIO(b"tiny"), 4)
    assert store.read("big/small") == (b"tiny", small)
    with pytest.raises(errors.StoreError, match="ended after"):
        store.write_from("big/short", io.BytesIO(data[: PART + 10]), len(data))
    assert store.read("big/short") is None  # nothing half written


def test_copy_from_within_the_provider(k: Kind) -> None:
    source, target = k.make(), k.make()
    data = os.urandom(PART + 777)
    source.write("a/file", data)
    if not target.can_copy_from(source):
        pytest.skip(f"{k} copies are streamed")
    etag = target.copy_from(source, "a/file", "b/file", len(data))
    assert target.read("b/file") == (data, etag)
    assert source.read("a/file") is not None  # the source is only read
    # larger than one request may copy: S3 UploadPartCopy, Azure Put Block From URL, in parts
    if source.provider in ("S3", "Azure"):
        target.copy_object_limit, target.copy_part = PART, PART  # type: ignore[attr-defined]
        etag = target.copy_from(source, "a/file", "c/file", len(data))
        assert target.read("c/file") == (data, etag)
