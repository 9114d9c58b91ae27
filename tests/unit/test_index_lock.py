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


def test_a_locked_snapshot_past_keep_until_is_held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg_path = tmp_path / "c.yaml"
    config(tmp_path, monkeypatch, recover=False)  # the environment and the schedule's config
    text = (tmp_path / "c.yaml").read_text()
    cfg_path.write_text(
        text
        + "snapshots:\n"
        + "  pre-upgrade: {service: analytics, bucket: primary, databases: [shop], keep_until: 2026-11-20}\n"
    )
    from reconciler.config import load_config
    from reconciler.plan import build_plan

    cfg = load_config(str(cfg_path))
    storage = MemoryStorage()
    storage.set_object_lock("locked", "compliance", 1)
    store = storage.open_store(load_bucket())
    folder = "clickhouse/analytics/_snapshots/pre-upgrade/"
    store.write(folder + ".backup", MANIFEST)
    data = sidecar(NAME).replace(b'"schedule": "daily"', b'"schedule": "_snapshots"')
    store.write(folder + "reconciler.json", data.replace(NAME.encode(), b"pre-upgrade", 1))
    conns = Connections(cfg, store_factory=storage.open_store, clickhouse_factory=unreachable)  # type: ignore[arg-type]
    observed = observe(cfg, conns, NOW)
    [snap] = [s for s in observed.snapshots if s.name == "pre-upgrade"]
    assert snap.folder is not None and snap.folder.state == BackupState.COMPLETE
    assert snap.folder.locked_until is not None and snap.folder.locked_until > NOW  # the bucket's real lock
    plan = build_plan(cfg, observed, NOW)
    assert not [a for a in plan.actions if a.snapshot == "pre-upgrade"]
    [held] = plan.held
    assert (held.snapshot, held.until, held.reason) == (
        "pre-upgrade",
        snap.folder.locked_until,
        "object lock (compliance)",
    )


def test_a_copy_in_a_locked_copy_bucket_gets_its_lock_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.model import BucketState, ObjectLockState, ScheduleInventory
    from reconciler.observe.immutability import copy_lock_ends
    from tests.unit.test_plan_unit import backup

    cfg = config(tmp_path, monkeypatch, recover=False)  # "primary" stands for the copy bucket here
    storage = MemoryStorage()
    storage.set_object_lock("locked", "compliance", 1)
    store = storage.open_store(load_bucket())
    store.write(FOLDER + ".backup", MANIFEST)
    store.write(FOLDER + "reconciler.json", sidecar(NAME))
    conns = Connections(cfg, store_factory=storage.open_store, clickhouse_factory=unreachable)  # type: ignore[arg-type]
    copies = {"daily": {"primary": ScheduleInventory("daily", "", (backup(NAME), backup("20261124T030000Z")))}}
    unlocked = {"primary": BucketState("primary", True, object_lock=ObjectLockState(True, lock_enabled=False))}
    copy_lock_ends(cfg, conns, unlocked, copies)
    assert [b.locked_until for b in copies["daily"]["primary"].backups] == [None, None]  # no lock: not asked
    locked = {"primary": BucketState("primary", True, object_lock=ObjectLockState(True, lock_enabled=True))}
    copy_lock_ends(cfg, conns, locked, copies)
    ours, absent = copies["daily"]["primary"].backups
    assert ours.locked_until is not None and ours.locked_until > NOW and absent.locked_until is None
