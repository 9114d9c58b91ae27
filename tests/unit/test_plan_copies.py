"""Copy decisions of the planner (plan/copies.py), on hand-built observed states: bases first,
after the export's validation, missing_copy drift, never over another source's copy, source
prunes wait for the copies that read them, a copy bucket's own retention."""

from __future__ import annotations

from dataclasses import replace

import pytest

from reconciler.model import Bucket as B
from reconciler.model import (
    BucketState,
    CopyAction,
    CopyTarget,
    DriftType,
    ObservedBackup,
    Provider,
    PruneAction,
    Retention,
    ScheduleInventory,
)
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
