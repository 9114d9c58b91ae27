"""Held prunes beyond a schedule's own bucket (docs/compliance.md, "Held prunes"): a copy that the
copy's retention no longer keeps, and a snapshot past keep_until, are held while their object
lock has not ended at ``now``, like a schedule's backup, and pruned once it has."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from reconciler.model import Immutability, LockMode, Plan, PruneAction, Retention
from reconciler.model.snapshots import ObservedSnapshot
from reconciler.plan import build_plan
from reconciler.render.markdown import plan_markdown
from reconciler.render.text import plan_text
from reconciler.schemas import validate_plan
from tests.unit.test_plan_copies import copy_of, with_copies
from tests.unit.test_plan_unit import NOW, backup
from tests.unit.test_snapshots_asof_adopt import folder, made, with_snapshot

pytestmark = pytest.mark.clock  # the pure planner, as of NOW

UNTIL = NOW + timedelta(days=2)


def prunes(plan: Plan) -> list[str]:
    return [a.id for a in plan.actions if isinstance(a, PruneAction)]


def test_a_locked_copy_the_copy_retention_drops_is_held_until_its_lock_ends() -> None:
    old, new = backup("20261124T030000Z"), backup("20261125T030000Z")
    config, observed = with_copies([new], [replace(copy_of(old), locked_until=UNTIL), copy_of(new)])
    config = replace(
        config,
        schedules={
            "daily": replace(
                config.schedules["daily"],
                copies=(replace(config.schedules["daily"].copies[0], retention=Retention(keep_last=1)),),
            )
        },
        buckets={
            **config.buckets,
            "dr": replace(config.buckets["dr"], immutability=Immutability(LockMode.GOVERNANCE, 7)),
        },
    )
    plan = build_plan(config, observed, NOW)
    assert prunes(plan) == []
    [held] = plan.held
    assert (held.schedule, held.bucket, held.backup, held.until) == ("daily", "dr", old.name, UNTIL)
    assert held.reason == "object lock (governance)"
    validate_plan(plan.to_json())
    assert f"daily/{old.name} in dr until" in plan_text(plan)
    # once the lock has ended, the prune is planned
    later = build_plan(config, observed, UNTIL)
    assert prunes(later) == [f"prune/analytics/daily/{old.name}@dr"] and later.held == ()


def test_a_locked_snapshot_past_keep_until_is_held_until_its_lock_ends() -> None:
    snap = ObservedSnapshot("pre-upgrade", "analytics", "primary", True, replace(folder(), locked_until=UNTIL), made())
    config, observed = with_snapshot(date(2026, 11, 24), snap)
    end = datetime(2026, 11, 25, tzinfo=UTC)
    plan = build_plan(config, observed, end)
    assert "prune/analytics/_snapshots/pre-upgrade" not in prunes(plan)
    [held] = plan.held
    assert (held.snapshot, held.schedule, held.bucket, held.backup, held.until) == (
        "pre-upgrade",
        None,
        "primary",
        "pre-upgrade",
        UNTIL,
    )
    doc = plan.to_json()
    validate_plan(doc)
    assert doc["held"][0]["snapshot"] == "pre-upgrade" and "schedule" not in doc["held"][0]
    assert Plan.from_json(doc).held == plan.held
    assert "_snapshots/pre-upgrade in primary until" in plan_text(plan)
    assert "`_snapshots/pre-upgrade`" in plan_markdown(plan)
    assert "prune/analytics/_snapshots/pre-upgrade" in prunes(build_plan(config, observed, UNTIL))
