"""``--stats``: requests counted by (provider, operation) as data, printed as they always were."""

from __future__ import annotations

import threading

from reconciler.stores.stats import STATS, RequestStats


def test_the_line_is_as_it_always_was() -> None:
    stats = RequestStats()
    assert stats.line() == "storage requests: 0 (none); bytes read: 0"
    stats.request("S3", "ListObjectsV2")
    stats.request("S3", "GetObject")
    stats.request("S3", "ListObjectsV2")
    stats.request("S3", "HeadBucket")
    stats.read(5000)
    stats.read(84)
    assert stats.line() == "storage requests: 4 (S3 GetObject 1, S3 HeadBucket 1, S3 ListObjectsV2 2); bytes read: 5084"
    assert stats.total() == 4 and stats.bytes_read == 5084


def test_kinds_are_data_and_may_have_spaces() -> None:
    stats = RequestStats()
    stats.request("GCS", "batch objects.delete")
    stats.request("GCS", "objects.list")
    stats.request("Azure", "BlobBatch")
    assert stats.count("GCS", "batch objects.delete") == 1
    assert stats.requests == {("GCS", "batch objects.delete"): 1, ("GCS", "objects.list"): 1, ("Azure", "BlobBatch"): 1}
    assert stats.by_kind() == {"GCS batch objects.delete": 1, "GCS objects.list": 1, "Azure BlobBatch": 1}
    assert stats.line() == (
        "storage requests: 3 (Azure BlobBatch 1, GCS batch objects.delete 1, GCS objects.list 1); bytes read: 0"
    )
    stats.reset()
    assert stats.total() == 0 and stats.line().endswith("(none); bytes read: 0")


def test_counting_is_thread_safe() -> None:
    stats = RequestStats()

    def work() -> None:
        for _ in range(1000):
            stats.request("S3", "GetObject")
            stats.read(1)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stats.count("S3", "GetObject") == 8000 and stats.bytes_read == 8000


def test_the_process_counter() -> None:
    STATS.reset()
    STATS.request("Memory", "GetObject")
    assert STATS.by_kind() == {"Memory GetObject": 1}
    STATS.reset()
    assert STATS.total() == 0
