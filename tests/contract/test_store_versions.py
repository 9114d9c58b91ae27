"""Versions, delete markers and Object Lock through the Store seam: moto's S3 server (a bucket
created with Object Lock, as a compliance user sets it up) and the memory store behave alike;
Azure and GCS say plainly that versions are not supported yet."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reconciler.errors import NotSupported
from reconciler.model import Bucket, Credentials, Provider
from reconciler.stores.base import BaseStore
from reconciler.stores.memory import MemoryStorage, MemoryStore
from reconciler.stores.s3 import S3Store
from reconciler.stores.stats import STATS
from tests.contract.kinds import FAST

#: (versioning, lock mode, lock days) -> a store on a fresh bucket set up that way
Maker = Callable[[bool, str | None, int | None], BaseStore]


def _s3_maker(server: Any) -> Maker:
    def make(versioned: bool, mode: str | None, days: int | None) -> BaseStore:
        name = f"v-{uuid.uuid4().hex[:8]}"
        s3 = server.client()
        if mode is not None or days == 0:
            s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
            if mode is not None:
                rule = {"DefaultRetention": {"Mode": mode.upper(), "Days": days}}
                s3.put_object_lock_configuration(
                    Bucket=name, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled", "Rule": rule}
                )
        else:
            s3.create_bucket(Bucket=name)
            if versioned:
                s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        bucket = Bucket(
            "primary",
            Provider.S3,
            name,
            region=server.region,
            endpoint=server.endpoint,
            credentials=Credentials(access_key_id=server.access_key, secret_access_key=server.secret_key),
        )
        return S3Store(bucket, retry=FAST)

    return make


def _memory_maker() -> Maker:
    storage = MemoryStorage(auto_create=False)

    def make(versioned: bool, mode: str | None, days: int | None) -> BaseStore:
        name = f"v-{uuid.uuid4().hex[:8]}"
        storage.create_bucket(name)
        if mode is not None or days == 0:
            storage.set_object_lock(name, mode, days)
        elif versioned:
            storage.enable_versioning(name)
        return MemoryStore(storage, name, retry=FAST)

    return make


@pytest.fixture(params=["s3", "memory"])
def make(request: pytest.FixtureRequest) -> Maker:
    if request.param == "s3":
        return _s3_maker(request.getfixturevalue("s3_server"))
    return _memory_maker()


def test_lock_configuration_says_versioning_mode_and_days(make: Maker) -> None:
    plain = make(False, None, None).lock_configuration()
    assert (plain.versioning, plain.lock_enabled, plain.mode, plain.days) == (False, False, None, None)
    versioned = make(True, None, None).lock_configuration()
    assert (versioned.versioning, versioned.lock_enabled, versioned.mode) == (True, False, None)
    locked = make(True, "compliance", 30).lock_configuration()
    assert (locked.versioning, locked.lock_enabled, locked.mode, locked.days) == (True, True, "compliance", 30)
    governance = make(True, "governance", 7).lock_configuration()
    assert (governance.mode, governance.days) == ("governance", 7)
    no_default = make(True, None, 0).lock_configuration()
    assert (no_default.lock_enabled, no_default.mode, no_default.days) == (True, None, None)


def test_lock_configuration_is_asked_once_per_store(make: Maker) -> None:
    store = make(True, "compliance", 1)
    store.lock_configuration()
    STATS.reset()
    store.lock_configuration()
    assert not [op for (provider, op) in STATS.requests if provider == store.provider]


def test_a_locked_object_is_hidden_by_a_marker_and_its_version_refused(make: Maker) -> None:
    store = make(True, "compliance", 1)
    before = datetime.now(UTC)
    store.write("p/b/.backup", b"<config/>")
    store.write("p/b/data/x", b"12345")
    retention = store.head_retention("p/b/.backup")
    assert retention is not None and retention.mode == "compliance" and retention.retain_until is not None
    assert before + timedelta(hours=23) < retention.retain_until < datetime.now(UTC) + timedelta(days=1, minutes=5)
    assert store.head_retention("p/b/missing") is None

    store.delete("p/b/.backup")  # a plain delete of a locked object: a delete marker
    assert store.read("p/b/.backup") is None
    versions = [v for v in store.list_versions("p/b/") if v.key == "p/b/.backup"]
    assert [(v.delete_marker, v.is_latest) for v in versions] == [(True, True), (False, False)]
    assert versions[1].size == len(b"<config/>")
    locked = (versions[1].key, versions[1].version_id)
    refused = store.delete_versions([locked])
    assert set(refused) == {locked} and refused[locked].locked and "AccessDenied" in refused[locked].cause
    # the retention of the hidden version is still readable by its id
    hidden = store.head_retention("p/b/.backup", versions[1].version_id)
    assert hidden is not None and hidden.retain_until == retention.retain_until
    # and so is its content (what recover reads the manifest's file list from); a marker has none
    assert store.read_version("p/b/.backup", versions[1].version_id) == b"<config/>"
    assert store.read_version("p/b/.backup", versions[0].version_id) is None

    # removing the marker brings the object back (what recover does)
    marker = (versions[0].key, versions[0].version_id)
    assert store.delete_versions([marker]) == {}
    assert store.read("p/b/.backup") is not None and store.read("p/b/.backup")[0] == b"<config/>"  # type: ignore[index]


def test_versions_and_markers_of_an_unlocked_bucket_are_deleted_for_good(make: Maker) -> None:
    store = make(True, None, None)
    store.write("p/b/a", b"1")
    store.write("p/b/a", b"22")  # a second version
    store.write("p/b/c", b"333")
    store.delete("p/b/c")  # a marker over c
    store.write("p/other/z", b"keep")
    entries = list(store.list_versions("p/b/"))
    assert sorted((v.key, v.delete_marker, v.size) for v in entries) == [
        ("p/b/a", False, 1),
        ("p/b/a", False, 2),
        ("p/b/c", False, 0 + 3),
        ("p/b/c", True, 0),
    ]
    assert [v.is_latest for v in entries if v.key == "p/b/a"] == [True, False]  # newest first
    older = [v for v in entries if v.key == "p/b/a"][1]
    assert store.read_version("p/b/a", older.version_id) == b"1"  # a noncurrent version, by its id
    assert store.delete_versions([(v.key, v.version_id) for v in entries]) == {}
    assert list(store.list_versions("p/b/")) == []
    assert list(store.list("p/")) and [o.key for o in store.list("p/")] == ["p/other/z"]
    assert store.read_version("p/b/a", older.version_id) is None  # gone for good
    # a version already gone counts as deleted
    assert store.delete_versions([(entries[0].key, entries[0].version_id)]) == {}


def test_folders_of_versions_include_a_folder_whose_every_object_is_deleted(make: Maker) -> None:
    store = make(True, "compliance", 1)
    store.write("p/gone/.backup", b"1")
    store.write("p/gone/data/x", b"2")
    store.write("p/kept/.backup", b"3")
    store.write("p/top", b"not a folder")
    store.delete_many(["p/gone/.backup", "p/gone/data/x"])  # every object of gone/: markers only
    assert [o.key for o in store.list("p/")] == ["p/kept/.backup", "p/top"]  # (moto's delimiter listing
    # still names gone/ as a folder, S3's does not: nothing here depends on it)
    assert store.list_version_folders("p/") == ["gone", "kept"]
    assert store.list_version_folders("p/gone") == ["data"]


def test_an_unversioned_bucket_lists_current_objects_as_versions(make: Maker) -> None:
    store = make(False, None, None)
    store.write("p/x", b"1")
    listed = list(store.list_versions("p/"))
    if isinstance(store, MemoryStore):  # the memory store keeps no history without versioning
        assert listed == []
    else:  # S3 lists them with the version id "null"
        assert [(v.key, v.version_id, v.is_latest) for v in listed] == [("p/x", "null", True)]


@pytest.mark.parametrize("provider", ["azure", "gcs"])
def test_azure_and_gcs_say_versions_are_not_supported_yet(provider: str, request: pytest.FixtureRequest) -> None:
    from tests.contract.kinds import kind

    store = kind(request, provider).make()
    assert store.lock_configuration().versioning is False  # no request: nothing is assumed versioned
    with pytest.raises(NotSupported, match="not supported yet"):
        list(store.list_versions("p/"))
    with pytest.raises(NotSupported, match="not supported yet"):
        store.delete_versions([("p/x", "1")])
    with pytest.raises(NotSupported, match="not supported yet"):
        store.head_retention("p/x")
    with pytest.raises(NotSupported, match="not supported yet"):
        store.read_version("p/x", "1")
    with pytest.raises(NotSupported, match="not supported yet"):
        store.list_version_folders("p/")
