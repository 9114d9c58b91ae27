"""The memory store: what it keeps (ETags new on every write, buckets shared by the stores of one
``MemoryStorage``, unfinished uploads, a clock), and its use by tests through the ``Connections``
seam: observe runs on it as on a real bucket."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler import errors
from reconciler.config import load_config
from reconciler.connections import Connections
from reconciler.model import Bucket, Config, Credentials, Provider
from reconciler.stores import Store
from reconciler.stores.memory import MemoryStorage, MemoryStore, memory_store_factory
from reconciler.stores.stats import STATS

SECRET = "memory-config-secret-0123456789"
NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


def bucket(name: str = "bkt") -> Bucket:
    return Bucket("primary", Provider.S3, name, prefix="clickhouse", credentials=Credentials(secret_access_key=SECRET))


def test_every_write_makes_a_new_etag() -> None:
    st = MemoryStorage().open_store(bucket())
    first = st.write("k", b"same")
    second = st.write("k", b"same")
    assert first != second and st.read("k") == (b"same", second)
    assert st.replace("k", b"same", second) not in (first, second)


def test_stores_of_one_storage_share_their_buckets() -> None:
    storage = MemoryStorage()
    a, b = storage.open_store(bucket()), storage.open_store(bucket())
    etag = a.write("k", b"v")
    assert b.read("k") == (b"v", etag)
    assert storage.open_store(bucket("other")).read("k") is None
    assert storage.contents("bkt") == {"k": b"v"}
    assert MemoryStorage().open_store(bucket()).read("k") is None  # another storage, other buckets


def test_a_bucket_exists_once_created() -> None:
    storage = MemoryStorage(auto_create=False)
    st = storage.open_store(bucket())
    assert not st.bucket_exists()
    with pytest.raises(errors.BucketMissing, match="Memory PutObject on memory://bkt/k: bucket bkt does not exist"):
        st.write("k", b"")
    storage.create_bucket("bkt")
    assert st.bucket_exists() and st.write("k", b"")
    storage.drop_bucket("bkt")
    assert not st.bucket_exists()


def test_unfinished_uploads_are_aborted() -> None:
    storage = MemoryStorage()
    st = storage.open_store(bucket())
    storage.start_upload("bkt", "svc/b1/data/0")
    storage.start_upload("bkt", "svc/b1/data/1")
    storage.start_upload("bkt", "svc/b2/data/0")
    STATS.reset()
    assert st.abort_uploads("svc/b1/") == 2
    assert STATS.by_kind() == {"Memory ListMultipartUploads": 1, "Memory AbortMultipartUpload": 2}
    assert storage.uploads("bkt") == ["svc/b2/data/0"]
    assert st.abort_uploads("svc/b1/") == 0


def test_last_modified_is_the_storage_clock() -> None:
    st = MemoryStorage(clock=lambda: NOW).open_store(bucket())
    st.write("k", b"v")
    [info] = st.list("")
    assert info.last_modified == NOW and info.size == 1


def test_it_is_a_store() -> None:
    st: Store = MemoryStorage().open_store(bucket())
    assert isinstance(st, MemoryStore)
    assert st.description == "memory://bkt" and repr(st) == "MemoryStore(memory://bkt)"


# ---------------------------------------------------------------------------------------------
# through the Connections seam
# ---------------------------------------------------------------------------------------------


def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv("MEMORY_TEST_SECRET", SECRET)
    path = tmp_path / "config.yaml"
    path.write_text(
        "version: 1\n"
        "services:\n"
        "  analytics: {dsn: 'http://default@127.0.0.1:9'}\n"
        "buckets:\n"
        "  primary:\n"
        "    provider: s3\n"
        "    bucket: acme-backups\n"
        "    prefix: clickhouse\n"
        "    region: us-east-1\n"
        "    credentials: {access_key_id: AKIAEXAMPLE, secret_access_key: '${MEMORY_TEST_SECRET}'}\n"
        "schedules:\n"
        "  daily: {service: analytics, bucket: primary, cron: '0 3 * * *'}\n"
    )
    return load_config(str(path))


def unreachable(service: object) -> object:
    raise errors.ServiceUnreachable("no ClickHouse in a unit test")


def test_connections_open_memory_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config(tmp_path, monkeypatch)
    storage = MemoryStorage()
    conns = Connections(cfg, store_factory=memory_store_factory(storage))
    st = conns.store("primary")
    assert isinstance(st, MemoryStore) and st is conns.store("primary")
    st.write("clickhouse/x", b"1")
    again = Connections(cfg, store_factory=storage.open_store).store("primary")  # a second run, the same bucket
    assert again.read("clickhouse/x") is not None
    storage.fail("GetObject", "AccessDenied", status=403, message=f"denied to {SECRET}")
    with pytest.raises(errors.StoreError) as e:
        again.read("clickhouse/x")
    assert SECRET not in str(e.value)


def test_observe_runs_on_the_memory_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.observe import observe

    cfg = config(tmp_path, monkeypatch)
    storage = MemoryStorage()
    conns = Connections(cfg, store_factory=storage.open_store, clickhouse_factory=unreachable)  # type: ignore[arg-type]
    STATS.reset()
    observed = observe(cfg, conns, NOW)
    assert observed.buckets["primary"].reachable
    assert STATS.count("Memory", "HeadBucket") == 1 and STATS.total() > 1
    assert all(kind.startswith("Memory ") for kind in STATS.by_kind())

    empty = MemoryStorage(auto_create=False)  # no bucket at all
    conns = Connections(cfg, store_factory=empty.open_store, clickhouse_factory=unreachable)  # type: ignore[arg-type]
    assert not observe(cfg, conns, NOW).buckets["primary"].reachable
