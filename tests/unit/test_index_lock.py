"""On a bucket with Object Lock the schedule's index records when each backup's lock ends (read
once by the apply that wrote its sidecar), so that a fast plan makes no HEAD request per backup."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.apply import ApplyContext, refresh
from reconciler.bucket.index import IndexEntry
from reconciler.connections import Connections
from reconciler.console import NullConsole
from reconciler.model import BackupState
from reconciler.observe import observe
from reconciler.stores.memory import MemoryStorage
from reconciler.stores.stats import STATS
from tests.unit.test_recover_memory import FOLDER, MANIFEST, NAME, NOW, config, load_bucket, sidecar
from tests.unit.test_store_memory import unreachable


def test_an_entry_keeps_its_lock_end_and_refuses_a_tampered_one() -> None:
    entry = IndexEntry("e", {"x": 1}, None, True, "complete", 2, 10, "2026-12-01T03:00:41Z")
    assert IndexEntry.from_json(entry.to_json()) == entry
    assert "locked_until" not in IndexEntry("e", None, None, True, "unmanaged").to_json()
    with pytest.raises(ValueError, match="locked_until"):
        IndexEntry.from_json({**entry.to_json(), "locked_until": 5})


def test_a_fast_plan_reads_the_lock_end_from_the_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config(tmp_path, monkeypatch, recover=False)
    storage = MemoryStorage()
    storage.set_object_lock("locked", "compliance", 1)
    store = storage.open_store(load_bucket())
    store.write(FOLDER + "metadata/shop.sql", b"CREA")
    store.write(FOLDER + "data/shop/t/all_1_1_0/data.bin", b"123456")
    store.write(FOLDER + ".backup", MANIFEST)
    store.write(FOLDER + "reconciler.json", sidecar(NAME))
    conns = Connections(cfg, store_factory=storage.open_store, clickhouse_factory=unreachable)  # type: ignore[arg-type]

    STATS.reset()
    [cold] = observe(cfg, conns, NOW).schedules["daily"].backups  # no index yet: the bucket is asked
    assert cold.state == BackupState.COMPLETE and cold.locked_until is not None
    assert STATS.count("Memory", "HeadObject") == 2

    assert refresh(ApplyContext(cfg, conns, NullConsole(), "run-1"), {"daily"}) == 1  # as an apply ends
    STATS.reset()
    [warm] = observe(cfg, conns, NOW).schedules["daily"].backups
    assert warm.locked_until == cold.locked_until
    assert STATS.count("Memory", "HeadObject") == 0
