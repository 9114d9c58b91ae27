"""Copy decisions of the planner (plan/copies.py), on hand-built observed states: bases first,
after the export's validation, missing_copy drift, never over another source's copy, source
prunes wait for the copies that read them, a copy bucket's own retention."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from reconciler.model import (
    BackupState,
    BucketState,
    CopyAction,
    CopyTarget,
    DriftType,
    Drill,
    ObservedBackup,
    Provider,
    PruneAction,
    Retention,
    ScheduleInventory,
    ValidateAction,
    ValidatePolicy,
    Validation,
    ValidationLevel,
    ValidationResult,
)
from reconciler.model import Bucket as B
from reconciler.plan import build_plan
from reconciler.schemas import validate_plan
from tests.unit.test_plan_unit import NOW, backup, make

pytestmark = pytest.mark.clock

SOURCE = "s3://acme-ch-backups/clickhouse/analytics/daily/"


def with_copies(backups, copies, *, retention=None, copy_retention=None, full_every=None):  # type: ignore[no-untyped-def]
    config, observed = make(backups, full_every=full_every)
    s = config.schedules["daily"]
    s = replace(
        s,
        copies=(CopyTarget("dr", retention=copy_retention),),
        retention=retention or s.retention,
    )
    dr = B("dr", Provider.S3, "acme-dr", prefix="clickhouse", endpoint="http://other:9000")
    config = replace(config, schedules={"daily": s}, buckets={**config.buckets, "dr": dr})
    inv = ScheduleInventory("daily", "clickhouse/analytics/daily/", tuple(copies))
    observed = replace(
        observed,
        buckets={**observed.buckets, "dr": BucketState("dr", True)},
        copies={"daily": {"dr": inv}},
    )
    return config, observed


def copy_of(b: ObservedBackup, source: str = SOURCE) -> ObservedBackup:
    return replace(b, source_location=f"{source}{b.name}/", source_operation_id=b.operation_id)


def test_a_chain_is_copied_bases_first_and_past_slots_are_missing_copy() -> None:
    a = backup("20261123T030000Z")
    b = backup("20261124T030000Z", kind="incremental", base=a.name)
    c = backup("20261125T030000Z", kind="incremental", base=b.name)
    config, observed = with_copies([a, b, c], [])
    plan = build_plan(config, observed, NOW)
    validate_plan(plan.to_json())
    copies = [x for x in plan.actions if isinstance(x, CopyAction)]
    assert [x.backup for x in copies] == [a.name, b.name, c.name]
    assert copies[0].depends_on == () and copies[1].depends_on == (copies[0].id,)
    assert copies[2].depends_on == (copies[1].id,) and copies[2].chain == (b.name, a.name)
    assert all(x.method == "streamed" and x.bucket == "dr" for x in copies)  # another endpoint
    missing = [d.backup for d in plan.drift if d.type == DriftType.MISSING_COPY]
    assert missing == [a.name, b.name]  # the latest slot's backup is not late yet


def test_a_new_export_is_copied_after_its_validation() -> None:
    config, observed = with_copies([], [])
    plan = build_plan(config, observed, NOW)
    [copy] = [x for x in plan.actions if isinstance(x, CopyAction)]
    assert copy.depends_on == (
        "export/analytics/daily/20261125T030000Z",
        "validate/analytics/daily/20261125T030000Z",
    )


def test_a_name_taken_by_another_source_is_never_overwritten() -> None:
    a = backup("20261125T030000Z")
    theirs = copy_of(a, "s3://someone-else/clickhouse/analytics/daily/")
    config, observed = with_copies([a], [theirs])
    plan = build_plan(config, observed, NOW)
    assert not [x for x in plan.actions if isinstance(x, CopyAction)]
    [drift] = [d for d in plan.drift if d.type == DriftType.MISSING_COPY]
    assert "taken by a copy of another source backup" in drift.detail and drift.bucket == "dr"


def test_good_copies_need_nothing_and_the_copy_keeps_what_the_source_prunes() -> None:
    old, new = backup("20261124T030000Z"), backup("20261125T030000Z")
    config, observed = with_copies(
        [old, new],
        [copy_of(old), copy_of(new)],
        retention=Retention(keep_last=1),
        copy_retention=Retention(keep_last=5),
    )
    plan = build_plan(config, observed, NOW)
    assert [(a.type.value, a.bucket, a.backup) for a in plan.actions] == [("prune", "primary", old.name)]
    assert not plan.drift


def test_a_source_prune_waits_for_the_copy_that_reads_it() -> None:
    old, new = backup("20261124T030000Z"), backup("20261125T030000Z")
    config, observed = with_copies(
        [old, new], [], retention=Retention(keep_last=1), copy_retention=Retention(keep_last=5)
    )
    plan = build_plan(config, observed, NOW)
    [prune] = [a for a in plan.actions if isinstance(a, PruneAction)]
    assert prune.backup == old.name and f"copy/analytics/daily/{old.name}@dr" in prune.depends_on


def test_the_copy_retention_prunes_in_the_copy_bucket_only() -> None:
    old, new = backup("20261124T030000Z"), backup("20261125T030000Z")
    config, observed = with_copies([new], [copy_of(old), copy_of(new)], copy_retention=Retention(keep_last=1))
    plan = build_plan(config, observed, NOW)
    [prune] = [a for a in plan.actions if isinstance(a, PruneAction)]
    assert (prune.bucket, prune.backup, prune.id) == ("dr", old.name, f"prune/analytics/daily/{old.name}@dr")


# ---------------------------------------------------------------------------------------------
# checksums_every and drill.every cover the newest copy in each copy bucket too
# ---------------------------------------------------------------------------------------------


def validated(b: ObservedBackup, *levels: ValidationLevel, at: datetime = NOW - timedelta(hours=1)) -> ObservedBackup:
    """``b`` with passed validations at ``levels`` (besides its manifest validation)."""
    extra = tuple(Validation(level, at, ValidationResult.OK, "ok") for level in levels)
    return replace(b, validations=(*b.validations, *extra))


def with_periodic(config, *, level: ValidationLevel = ValidationLevel.MANIFEST):  # type: ignore[no-untyped-def]
    """The schedule with checksums_every=7d and a drill every 30d on staging; copies at ``level``."""
    s = config.schedules["daily"]
    policy = ValidatePolicy(checksums_every=timedelta(days=7), drill=Drill("staging", timedelta(days=30)))
    s = replace(s, validate=policy, copies=(replace(s.copies[0], validate=level),))
    return replace(config, schedules={"daily": s})


def source_pair() -> tuple[ObservedBackup, ObservedBackup]:
    """Two source backups whose own periodic validations are fresh (only the copies' may be due)."""
    levels = (ValidationLevel.CHECKSUMS, ValidationLevel.DRILL)
    return (
        validated(backup("20261124T030000Z"), *levels),
        validated(backup("20261125T030000Z"), *levels),
    )


def plain_copy(b: ObservedBackup) -> ObservedBackup:
    """A copy of ``b`` holding only the manifest validation its copy recorded."""
    return copy_of(backup(b.name, kind=b.kind or "full", base=b.base))


def copy_validations(plan) -> list[ValidateAction]:  # type: ignore[no-untyped-def]
    return [a for a in plan.actions if isinstance(a, ValidateAction) and a.bucket == "dr"]


def test_due_checksums_and_drill_run_on_the_newest_copy_in_the_copy_bucket() -> None:
    old, new = source_pair()
    config, observed = with_copies([old, new], [plain_copy(old), plain_copy(new)])
    config = with_periodic(config)
    plan = build_plan(config, observed, NOW)
    validate_plan(plan.to_json())
    assert [a.bucket for a in plan.actions if isinstance(a, ValidateAction)] == ["dr", "dr"]  # the source's are fresh
    checksums, drill = copy_validations(plan)
    assert (checksums.id, checksums.backup, checksums.level) == (
        f"validate/analytics/daily/{new.name}@dr",
        new.name,
        ValidationLevel.CHECKSUMS,
    )
    assert checksums.location == f"s3://acme-dr/clickhouse/analytics/daily/{new.name}/"
    assert "in copy bucket dr" in checksums.reason and checksums.depends_on == ()
    assert drill.id == checksums.id + "/drill" and drill.level == ValidationLevel.DRILL
    assert drill.drill_service == "staging" and drill.bucket == "dr" and drill.backup == new.name
    assert drill.depends_on == (checksums.id,) and "none has passed yet" in drill.reason


def test_copy_validations_are_not_due_while_a_copy_passed_them_within_every() -> None:
    old, new = source_pair()
    recent = NOW - timedelta(days=2)
    copies = [validated(plain_copy(old), ValidationLevel.CHECKSUMS, ValidationLevel.DRILL, at=recent), plain_copy(new)]
    config, observed = with_copies([old, new], copies)
    plan = build_plan(with_periodic(config), observed, NOW)
    assert copy_validations(plan) == []
    # 8 days later the checksums are due again (7d), the drill is not (30d): on the newest copy,
    # which is the copy of that day's export, after it
    later = build_plan(with_periodic(config), observed, NOW + timedelta(days=8))
    [checksums] = copy_validations(later)
    assert checksums.level == ValidationLevel.CHECKSUMS and checksums.backup == "20261203T030000Z"
    assert checksums.depends_on == ("copy/analytics/daily/20261203T030000Z@dr",)


def test_the_newest_copy_this_plan_makes_is_validated_after_its_copy() -> None:
    old, new = source_pair()
    config, observed = with_copies([old, new], [plain_copy(old)])
    plan = build_plan(with_periodic(config), observed, NOW)
    [copy] = [a for a in plan.actions if isinstance(a, CopyAction)]
    checksums, drill = copy_validations(plan)
    assert copy.backup == new.name and checksums.backup == new.name
    assert checksums.depends_on == (copy.id,) and drill.depends_on == (checksums.id,)
    # a copy verified at checksums level as it is written needs no second read: only the drill
    plan = build_plan(with_periodic(config, level=ValidationLevel.CHECKSUMS), observed, NOW)
    [drill] = copy_validations(plan)
    assert drill.level == ValidationLevel.DRILL and drill.depends_on == (copy.id,)


def test_an_older_copy_made_again_does_not_take_the_newest_copys_validations() -> None:
    old, new = source_pair()
    broken_old = replace(plain_copy(old), mismatch="the bucket holds 3 files, 10 bytes where ClickHouse stored 4 files")
    config, observed = with_copies([old, new], [broken_old, plain_copy(new)])
    plan = build_plan(with_periodic(config), observed, NOW)
    assert {a.backup for a in copy_validations(plan)} == {new.name}
    assert all(a.depends_on in ((), (f"validate/analytics/daily/{new.name}@dr",)) for a in copy_validations(plan))


def test_an_unreachable_drill_service_is_a_warning_for_the_copy_drill() -> None:
    old, new = source_pair()
    config, observed = with_copies([old, new], [plain_copy(old), plain_copy(new)])
    staging = replace(observed.services["staging"], reachable=False, error="refused")
    observed = replace(observed, services={**observed.services, "staging": staging})
    plan = build_plan(with_periodic(config), observed, NOW)
    assert [a.level for a in copy_validations(plan)] == [ValidationLevel.CHECKSUMS]
    assert any("drill of the copy in bucket dr is due" in w for w in plan.warnings)


# ---------------------------------------------------------------------------------------------
# a broken copy (what a full refresh sees, or a failed validation of the copy)
# ---------------------------------------------------------------------------------------------


def test_a_broken_copy_is_broken_backup_drift_of_the_copy_bucket_and_is_copied_again() -> None:
    old, new = backup("20261124T030000Z"), backup("20261125T030000Z")
    mismatch = "the bucket holds 3 files, 10 bytes where ClickHouse stored 4 files, 12 bytes"
    failed = Validation(ValidationLevel.CHECKSUMS, NOW, ValidationResult.FAILED, "data.bin: checksum differs")
    copies = [replace(plain_copy(old), mismatch=mismatch), replace(plain_copy(new), validations=(failed,))]
    config, observed = with_copies([old, new], copies)
    plan = build_plan(config, observed, NOW)
    validate_plan(plan.to_json())
    redo = {a.backup: a for a in plan.actions if isinstance(a, CopyAction)}
    assert {n: a.state for n, a in redo.items()} == {old.name: "broken", new.name: "broken"}
    assert "is broken: copy it again" in redo[old.name].reason
    broken = [d for d in plan.drift if d.type == DriftType.BROKEN_BACKUP]
    assert [(d.bucket, d.backup) for d in broken] == [("dr", old.name), ("dr", new.name)]
    assert mismatch in broken[0].detail and "this plan copies it again" in broken[0].detail
    assert "failed validation: data.bin: checksum differs" in broken[1].detail
    assert not [d for d in plan.drift if d.type == DriftType.MISSING_COPY]  # said once, as broken_backup


def test_a_broken_copy_whose_source_is_gone_is_drift_and_nothing_is_planned() -> None:
    new = backup("20261125T030000Z")
    gone = replace(copy_of(backup("20261124T030000Z")), mismatch="a file was deleted")
    config, observed = with_copies([new], [gone, plain_copy(new)], copy_retention=Retention(keep_last=5))
    plan = build_plan(config, observed, NOW)
    assert not [a for a in plan.actions if isinstance(a, CopyAction)]
    [drift] = [d for d in plan.drift if d.type == DriftType.BROKEN_BACKUP]
    assert drift.bucket == "dr" and "its source backup is not there" in drift.detail


def test_azure_copies_are_server_side_within_one_storage_account() -> None:
    from reconciler.model import Credentials
    from reconciler.plan.copies import copy_method

    key = "a2V5"  # base64, not a real key
    emulator = "http://127.0.0.1:10000/devstoreaccount1"
    conn = f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={key};BlobEndpoint={emulator}/;"
    by_key = B(
        "a",
        Provider.AZURE,
        "c1",
        endpoint=emulator,
        credentials=Credentials(account_name="devstoreaccount1", account_key=key),
    )
    by_conn = B("b", Provider.AZURE, "c2", credentials=Credentials(connection_string=conn))
    cloud = B("c", Provider.AZURE, "c3", credentials=Credentials(account_name="acme", account_key=key))
    cloud_conn = B(
        "d", Provider.AZURE, "c4", credentials=Credentials(connection_string="AccountName=acme;AccountKey=k")
    )
    assert copy_method(by_key, by_conn) == copy_method(by_conn, by_key) == "server-side"
    assert copy_method(cloud, cloud_conn) == "server-side"  # https://acme.blob.core.windows.net both
    assert copy_method(by_key, cloud) == "streamed"  # another account: streamed
    sas_only = B("e", Provider.AZURE, "c5", credentials=Credentials(connection_string=f"BlobEndpoint={emulator}"))
    assert copy_method(sas_only, by_key) == "streamed"  # nothing to sign the source's SAS with


def test_the_copy_of_a_new_export_is_counted_in_the_copy_bucket_as_large_as_the_export() -> None:
    old = replace(backup("20261124T030000Z"), total_size=1000)
    config, observed = with_copies([old], [copy_of(old)])
    plan = build_plan(config, observed, NOW)
    assert [a.type.value for a in plan.actions][:2] == ["export", "copy"]
    storage = {e.bucket: e for e in plan.storage}
    # the export is estimated from the previous full backup; its copy in dr is as large
    assert storage["primary"].bytes_after - storage["primary"].bytes_now == 1000
    assert storage["dr"].bytes_after - storage["dr"].bytes_now == 1000


def test_a_copy_whose_manifest_was_deleted_is_broken_backup_drift_and_copied_again() -> None:
    newest = backup("20261125T030000Z")  # the latest slot: a copy not made yet would not be drift
    lost = replace(
        copy_of(newest),
        state=BackupState.FAILED,
        has_manifest=False,
        manifest_lost=True,
        error="the manifest .backup is gone from a backup that was complete",
    )
    config, observed = with_copies([newest], [lost])
    plan = build_plan(config, observed, NOW)
    [drift] = [d for d in plan.drift if d.bucket == "dr"]
    assert drift.type == DriftType.BROKEN_BACKUP and drift.backup == newest.name
    assert "manifest .backup is gone" in drift.detail and "this plan copies it again" in drift.detail
    [copy] = [a for a in plan.actions if isinstance(a, CopyAction)]
    assert copy.backup == newest.name and copy.state == "failed"
