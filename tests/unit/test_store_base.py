"""The plumbing every store shares (``BaseStore``), driven through the memory store with faults
injected as a server would answer them: retries, the retry-by-key batch delete, the ranged reader
resuming a broken stream, the lost-condition wording, redaction and request counting."""

from __future__ import annotations

import os
from typing import Any

import pytest

from reconciler import errors
from reconciler.model import Bucket, Credentials, Provider
from reconciler.redact import HIDDEN
from reconciler.retry import RetryPolicy
from reconciler.stores.memory import MemoryStorage, MemoryStore
from reconciler.stores.stats import STATS

SECRET = "unit-secret-value-0123456789"


@pytest.fixture
def storage() -> MemoryStorage:
    s = MemoryStorage()
    s.create_bucket("bkt")
    return s


def store(storage: MemoryStorage, **options: Any) -> MemoryStore:
    bucket = Bucket("primary", Provider.S3, "bkt", credentials=Credentials(secret_access_key=SECRET))
    return MemoryStore(storage, bucket, **options)


@pytest.fixture(autouse=True)
def fresh_stats() -> None:
    STATS.reset()


# ---------------------------------------------------------------------------------------------
# one request: retried when it may pass, mapped by the table, redacted
# ---------------------------------------------------------------------------------------------


def test_a_passing_fault_is_retried_and_counted(storage: MemoryStorage) -> None:
    st = store(storage)
    storage.fail("PutObject", "SlowDown", times=2)
    st.write("k", b"v")
    assert STATS.count("Memory", "PutObject") == 3  # every attempt is a request
    assert storage.contents("bkt") == {"k": b"v"}


def test_a_lasting_fault_names_the_request_the_attempts_and_the_cause(storage: MemoryStorage) -> None:
    sleeps: list[float] = []
    st = store(storage, retry=RetryPolicy(attempts=4, initial=0.1, max_wait=1, jitter=0, sleep=sleeps.append))
    storage.fail("GetObject", "InternalError", status=500, message=f"boom {SECRET}", times=None)
    with pytest.raises(errors.TemporaryError) as e:
        st.read("k")
    assert e.value.message == f"Memory GetObject on memory://bkt/k failed 4 times: InternalError: boom {HIDDEN}"
    assert sleeps == [0.1, 0.2, 0.4]


def test_a_permanent_fault_is_not_retried(storage: MemoryStorage) -> None:
    st = store(storage)
    storage.fail("PutObject", "AccessDenied", status=403, message=f"no {SECRET}", times=None)
    with pytest.raises(errors.StoreError) as e:
        st.write("k", b"v")
    assert type(e.value) is errors.StoreError
    assert str(e.value) == f"Memory PutObject on memory://bkt/k: AccessDenied: no {HIDDEN}"
    assert STATS.count("Memory", "PutObject") == 1


def test_redaction_also_hides_what_reconciler_redact_hides(storage: MemoryStorage) -> None:
    st = store(storage)
    storage.fail("PutObject", "AccessDenied", status=403, message="via http://u:pw1234@host/ AccountKey=abcd1234;")
    with pytest.raises(errors.StoreError) as e:
        st.write("k", b"v")
    assert "pw1234" not in str(e.value) and "abcd1234" not in str(e.value)
    assert f"http://u:{HIDDEN}@host/" in str(e.value) and f"AccountKey={HIDDEN}" in str(e.value)


# ---------------------------------------------------------------------------------------------
# conditions: what a lost one says
# ---------------------------------------------------------------------------------------------


def test_a_lost_condition_says_whether_the_object_changed_or_is_gone(storage: MemoryStorage) -> None:
    st = store(storage)
    etag = st.write("k", b"v1")
    st.write("k", b"v2")
    with pytest.raises(
        errors.PreconditionFailed, match=rf"on memory://bkt/k: the object changed \(expected ETag {etag}\)"
    ):
        st.replace("k", b"v3", etag)
    st.delete("k")
    with pytest.raises(errors.PreconditionFailed, match="the object no longer exists"):
        st.replace("k", b"v3", etag)
    st.create("j", b"")
    with pytest.raises(
        errors.PreconditionFailed, match=r"memory://bkt/j: the object already exists \(PreconditionFailed: "
    ):
        st.create("j", b"")


def test_a_lost_condition_is_not_retried(storage: MemoryStorage) -> None:
    st = store(storage)
    st.write("k", b"v1")
    STATS.reset()
    with pytest.raises(errors.PreconditionFailed):
        st.create("k", b"v2")
    assert STATS.count("Memory", "PutObject") == 1


# ---------------------------------------------------------------------------------------------
# delete_many: batches, and keys refused one by one
# ---------------------------------------------------------------------------------------------


def test_keys_refused_for_a_passing_reason_are_sent_again_alone(storage: MemoryStorage) -> None:
    st = store(storage, delete_batch=4)
    keys = [f"k{i}" for i in range(8)]
    for k in keys:
        st.write(k, b"")
    storage.fail("DeleteObjects", "SlowDown", key="k1", times=2)
    storage.fail("DeleteObjects", "InternalError", key="k6", times=1)
    STATS.reset()
    assert st.delete_many(keys) == 8
    assert storage.contents("bkt") == {}
    assert STATS.count("Memory", "DeleteObjects") == 3 + 2  # batch 1 thrice (k1 refused twice), batch 2 twice


def test_keys_refused_for_good_are_named_and_the_rest_deleted(storage: MemoryStorage) -> None:
    st = store(storage, delete_batch=3)
    keys = [f"k{i}" for i in range(7)]
    for k in keys:
        st.write(k, b"")
    storage.fail("DeleteObjects", "AccessDenied", status=403, message=f"no {SECRET}", key="k2", times=None)
    storage.fail("DeleteObjects", "SlowDown", key="k5", times=None)
    with pytest.raises(errors.StoreError) as e:
        st.delete_many(keys)
    msg = e.value.message
    assert msg.startswith("Memory DeleteObjects on memory://bkt/: 2 of 7 objects could not be deleted (5 were): ")
    assert f"memory://bkt/k2: AccessDenied: no {HIDDEN}" in msg
    assert "memory://bkt/k5: Memory DeleteObjects on memory://bkt/k3 failed 3 times: 1 deletes refused: SlowDown" in msg
    assert SECRET not in msg
    assert storage.contents("bkt") == {"k2": b"", "k5": b""}


def test_a_batch_refused_as_a_whole_is_retried_then_raised(storage: MemoryStorage) -> None:
    st = store(storage)
    st.write("a", b"")
    storage.fail("DeleteObjects", "SlowDown", times=1)
    assert st.delete_many(["a"]) == 1
    storage.fail("DeleteObjects", "SlowDown", times=None)
    with pytest.raises(errors.TemporaryError, match="Memory DeleteObjects on memory://bkt/b failed 3 times: SlowDown"):
        st.delete_many(["b"])
    storage.clear_faults()
    storage.fail("DeleteObjects", "AccessDenied", status=403, times=None)
    with pytest.raises(errors.StoreError, match="Memory DeleteObjects on memory://bkt/b: AccessDenied"):
        st.delete_many(["b"])


# ---------------------------------------------------------------------------------------------
# the reader
# ---------------------------------------------------------------------------------------------


def test_a_stream_broken_midway_is_resumed_where_it_stopped(storage: MemoryStorage) -> None:
    st = store(storage)  # read_chunk None: one download of the whole object
    data = os.urandom(300_000)
    st.write("big", data)
    storage.break_stream("big", after=100_000)
    STATS.reset()
    with st.open("big") as f:
        assert f.read() == data
    assert STATS.count("Memory", "GetObject") == 2
    assert STATS.bytes_read == len(data)


def test_a_stream_that_keeps_breaking_is_a_temporary_error(storage: MemoryStorage) -> None:
    st = store(storage)
    st.write("big", os.urandom(10_000))
    for _ in range(4):
        storage.break_stream("big", after=0)
    with (
        st.open("big") as f,
        pytest.raises(errors.TemporaryError, match="at byte 0 failed 3 times: ConnectionResetError"),
    ):
        f.read()


def test_ranges_follow_each_other(storage: MemoryStorage) -> None:
    st = store(storage, read_chunk=1000)
    data = os.urandom(4500)
    st.write("o", data)
    STATS.reset()
    with st.open("o") as f:
        assert f.read(10) == data[:10]
        assert f.read() == data[10:]
    assert STATS.count("Memory", "GetObject") == 5


def test_open_of_a_missing_object(storage: MemoryStorage) -> None:
    with pytest.raises(
        errors.ObjectMissing, match=r"Memory GetObject on memory://bkt/no: the object does not exist \(NoSuchKey"
    ):
        store(storage).open("no")


# ---------------------------------------------------------------------------------------------
# listing pages
# ---------------------------------------------------------------------------------------------


def test_folders_and_objects_share_the_pages(storage: MemoryStorage) -> None:
    st = store(storage, page_size=2)
    for key in ["p/a/1", "p/a/2", "p/b", "p/c/1", "p/d/x/y", "p/e"]:
        st.write(key, b"")
    STATS.reset()
    assert st.list_folders("p/") == ["a", "c", "d"]
    assert STATS.count("Memory", "ListObjects") == 3  # a/, b, c/, d/, e in pages of 2
    STATS.reset()
    assert [o.key for o in st.list("p/")] == ["p/a/1", "p/a/2", "p/b", "p/c/1", "p/d/x/y", "p/e"]
    assert STATS.count("Memory", "ListObjects") == 3


def test_a_412_is_told_apart_by_asking_whether_the_object_exists(storage: MemoryStorage) -> None:
    # GCS (and Azurite) answer a lost If-Match with 412 whether the object changed or is gone
    st = store(storage)
    st.write("here", b"")
    for key, said in (("gone", "no longer exists"), ("here", "changed")):
        storage.fail("PutObject", "PreconditionFailed", status=412, key=key)
        STATS.reset()
        with pytest.raises(errors.PreconditionFailed, match=f"memory://bkt/{key}: the object {said}"):
            st.replace(key, b"v", "etag")
        assert STATS.by_kind() == {"Memory PutObject": 1, "Memory HeadObject": 1}
    storage.fail("DeleteObject", "PreconditionFailed", status=412, key="gone")
    st.delete("gone", "etag")  # gone all the same
    storage.fail("DeleteObject", "PreconditionFailed", status=412, key="here")
    with pytest.raises(errors.PreconditionFailed, match="memory://bkt/here: the object changed"):
        st.delete("here", "etag")
