"""``recover`` through the whole path on the memory store (versions, delete markers and an Object
Lock like moto's, no server): observe sees the deleted backup and whether it can come back, the
plan recovers and validates it, and the apply removes delete markers only — those over the
manifest, the sidecar and the files the manifest lists, inside the backup's folder — never a
version holding data, never ClickHouse's own ``.lock`` marker."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.apply import ApplyContext, execute
from reconciler.bucket.sidecar import Sidecar, SidecarState
from reconciler.config import load_config
from reconciler.connections import Connections
from reconciler.console import NullConsole
from reconciler.model import BackupState, Config, DriftType, ObserveOptions, OutcomeStatus, Refresh, Scope
from reconciler.observe import observe
from reconciler.plan import build_plan
from reconciler.stores.memory import MemoryStorage
from tests.unit.test_store_memory import unreachable

NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
NAME = "20261125T030000Z"
FOLDER = f"clickhouse/analytics/daily/{NAME}/"
OTHER = "clickhouse/analytics/daily/20261124T030000Z/"
MANIFEST = (
    b"<config><version>1</version><timestamp>2026-11-25 03:00:05</timestamp><contents>"
    b"<file><name>metadata/shop.sql</name><size>4</size><checksum>a</checksum></file>"
    b"<file><name>data/shop/t/all_1_1_0/data.bin</name><size>6</size><checksum>b</checksum></file>"
    # an empty file: ClickHouse lists it and stores no object for it
    b"<file><name>data/shop/t/all_1_1_0/empty.idx</name><size>0</size><checksum>c</checksum></file>"
    b"</contents></config>"
)


def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recover: bool, prune_unmanaged: bool = False) -> Config:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECOVER_TEST_SECRET", "not-a-secret")
    path = tmp_path / "c.yaml"
    path.write_text(
        "version: 1\n"
        "services:\n"
        "  analytics: {dsn: 'http://default@127.0.0.1:9'}\n"
        "buckets:\n"
        "  primary:\n"
        "    provider: s3\n"
        "    bucket: locked\n"
        "    prefix: clickhouse\n"
        "    region: us-east-1\n"
        f"    immutability: {{mode: compliance, days: 1, recover_deleted: {str(recover).lower()}}}\n"
        "    credentials: {access_key_id: AKIAEXAMPLE, secret_access_key: '${RECOVER_TEST_SECRET}'}\n"
        "schedules:\n"
        "  daily: {service: analytics, bucket: primary, cron: '0 3 * * *', validate: {after_export: manifest}, "
        f"prune_unmanaged: {str(prune_unmanaged).lower()}}}\n"
    )
    return load_config(str(path))


def sidecar(name: str) -> bytes:
    slot = datetime.strptime(name, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return Sidecar(
        "analytics", "daily", name, slot, "full", None, Scope(databases=("shop",)), "s3://locked/x", "op",
        state=SidecarState.COMPLETE,
    ).encode()  # fmt: skip


@pytest.fixture
def storage() -> MemoryStorage:
    """A locked bucket with two backups as ClickHouse and the reconciler leave them (ClickHouse's
    .lock deleted: a marker); then, outside an apply, the manifest and one data file of the first
    were deleted, and a file there the manifest does not list; the manifest of the second too."""
    st = MemoryStorage()
    st.set_object_lock("locked", "compliance", 1)
    store = st.open_store(load_bucket())
    for folder, name in ((FOLDER, NAME), (OTHER, "20261124T030000Z")):
        store.write(folder + ".lock", b"lock")
        store.write(folder + "metadata/shop.sql", b"CREA")
        store.write(folder + "data/shop/t/all_1_1_0/data.bin", b"123456")
        store.write(folder + "notes.txt", b"not listed")
        store.write(folder + ".backup", MANIFEST)
        store.write(folder + "reconciler.json", sidecar(name))
        store.delete(folder + ".lock")
    for key in (".backup", "data/shop/t/all_1_1_0/data.bin", "notes.txt"):
        store.delete(FOLDER + key)
    store.write(OTHER + "reconciler.json", sidecar("20261124T030000Z"))  # a second sidecar version
    store.delete(OTHER + ".backup")
    return st


def load_bucket():  # type: ignore[no-untyped-def]
    from reconciler.model import Bucket, Provider

    return Bucket("primary", Provider.S3, "locked", prefix="clickhouse")


def data_versions(st: MemoryStorage) -> list[tuple[str, str]]:
    return [(k, vid) for k, vs in st.versions("locked").items() for vid, marker in vs if not marker]


def test_recover_removes_only_the_markers_the_backup_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, storage: MemoryStorage
) -> None:
    cfg = config(tmp_path, monkeypatch, recover=True)
    conns = Connections(cfg, store_factory=storage.open_store, clickhouse_factory=unreachable)  # type: ignore[arg-type]
    before = data_versions(storage)
    observed = observe(cfg, conns, NOW, options=ObserveOptions(Refresh.FULL))
    found = {b.name: b for b in observed.schedules["daily"].backups}
    assert found[NAME].state == BackupState.DELETED and found[NAME].recoverable is True
    assert "its version survives" in (found[NAME].error or "")
    plan = build_plan(cfg, observed, NOW)
    assert [d.type for d in plan.drift if d.backup == NAME] == [DriftType.DELETED_BACKUP]
    ids = [a.id for a in plan.actions if a.backup == NAME]
    assert ids == [f"validate/analytics/daily/{NAME}", f"recover/analytics/daily/{NAME}"]

    ctx = ApplyContext(cfg, conns, NullConsole(), "run-1")
    result = execute(replace(plan, actions=tuple(a for a in plan.actions if a.backup == NAME)), ctx)
    outcomes = {o.action_id: o for o in result.outcomes}
    recovered = outcomes[f"recover/analytics/daily/{NAME}"]
    assert recovered.status == OutcomeStatus.DONE
    assert "no version left" not in recovered.detail, recovered.detail  # the empty file was never stored
    assert outcomes[f"validate/analytics/daily/{NAME}"].status == OutcomeStatus.DONE
    # no version holding data was deleted (validations, the index and the run record added some)
    assert set(before) - set(data_versions(storage)) == set()
    current = storage.contents("locked")
    assert {FOLDER + ".backup", FOLDER + "reconciler.json", FOLDER + "data/shop/t/all_1_1_0/data.bin"} <= set(current)
    assert FOLDER + ".lock" not in current  # ClickHouse's own lock stays deleted
    assert FOLDER + "notes.txt" not in current  # the manifest does not list it: left as it was
    assert OTHER + ".backup" not in current  # another backup: not this action's

    observed = observe(cfg, conns, NOW, options=ObserveOptions(Refresh.FULL))
    found = {b.name: b for b in observed.schedules["daily"].backups}
    assert found[NAME].state == BackupState.COMPLETE and found[NAME].validated


def test_without_recover_deleted_nothing_is_planned_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, storage: MemoryStorage
) -> None:
    cfg = config(tmp_path, monkeypatch, recover=False)
    conns = Connections(cfg, store_factory=storage.open_store, clickhouse_factory=unreachable)  # type: ignore[arg-type]
    observed = observe(cfg, conns, NOW, options=ObserveOptions(Refresh.FULL))
    other = next(b for b in observed.schedules["daily"].backups if b.name == "20261124T030000Z")
    assert other.state == BackupState.DELETED and other.recoverable is True
    plan = build_plan(cfg, observed, NOW)
    assert not [a for a in plan.actions if a.backup == other.name]
    [drift] = [d for d in plan.drift if d.backup == other.name]
    assert drift.type == DriftType.DELETED_BACKUP and "recover_deleted: true" in drift.detail


def test_a_full_refresh_finds_backups_whose_sidecar_was_deleted_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, storage: MemoryStorage
) -> None:
    cfg = config(tmp_path, monkeypatch, recover=True)
    conns = Connections(cfg, store_factory=storage.open_store, clickhouse_factory=unreachable)  # type: ignore[arg-type]
    store = conns.store("primary")
    store.delete(FOLDER + "reconciler.json")  # the first: its sidecar too (some data files are left)
    store.delete_many(o.key for o in store.list(OTHER))  # the second: every object of it
    fast = {b.name: b for b in observe(cfg, conns, NOW).schedules["daily"].backups}
    assert fast[NAME].state == BackupState.UNMANAGED and "20261124T030000Z" not in fast  # what a fast one sees

    observed = observe(cfg, conns, NOW, options=ObserveOptions(Refresh.FULL))
    found = {b.name: b for b in observed.schedules["daily"].backups}
    assert {n: (b.state, b.recoverable) for n, b in found.items()} == {
        "20261124T030000Z": (BackupState.DELETED, True),
        NAME: (BackupState.DELETED, True),
    }
    plan = build_plan(cfg, observed, NOW)
    assert sorted(a.id for a in plan.actions if a.type.value == "recover") == [
        "recover/analytics/daily/20261124T030000Z",
        f"recover/analytics/daily/{NAME}",
    ]
    result = execute(plan, ApplyContext(cfg, conns, NullConsole(), "run-2"))
    assert {o.status for o in result.outcomes} == {OutcomeStatus.DONE}, result.outcomes
    again = observe(cfg, conns, NOW, options=ObserveOptions(Refresh.FULL))
    assert {(b.name, b.state, b.validated) for b in again.schedules["daily"].backups} == {
        ("20261124T030000Z", BackupState.COMPLETE, True),
        (NAME, BackupState.COMPLETE, True),
    }
    current = storage.contents("locked")
    assert OTHER + ".lock" not in current and OTHER + "notes.txt" not in current  # not listed: left deleted
    assert [d.type for d in build_plan(cfg, again, NOW).drift] == [DriftType.UNREACHABLE_SERVICE]  # no ClickHouse here


def test_a_folder_whose_sidecar_survives_under_a_marker_is_never_pruned_as_unmanaged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, storage: MemoryStorage
) -> None:
    cfg = config(tmp_path, monkeypatch, recover=False, prune_unmanaged=True)
    conns = Connections(cfg, store_factory=storage.open_store, clickhouse_factory=unreachable)  # type: ignore[arg-type]
    conns.store("primary").delete(FOLDER + "reconciler.json")
    observed = observe(cfg, conns, NOW)  # a fast refresh: no sidecar in the listing, so "unmanaged"
    plan = build_plan(cfg, observed, NOW)
    [prune] = [a for a in plan.actions if a.backup == NAME]
    assert prune.type.value == "prune" and prune.state == "unmanaged"  # type: ignore[attr-defined]
    before = storage.versions("locked")
    result = execute(replace(plan, actions=(prune,)), ApplyContext(cfg, conns, NullConsole(), "run-3"))
    [outcome] = result.outcomes
    assert outcome.status == OutcomeStatus.SKIPPED and "it is a deleted backup" in outcome.detail
    after = storage.versions("locked")
    assert {k: v for k, v in after.items() if k.startswith(FOLDER)} == {
        k: v for k, v in before.items() if k.startswith(FOLDER)
    }
