"""The planner's work grows linearly with the number of backups (docs/scale.md, "CPU per backup").

No clock is read: the work is counted. Two counts, made while the same plan, its renderings, the
status document and the state digest are built for N and for 4N backups (with prunes, copies,
copy prunes and incremental chains, so that every per-action lookup is exercised):

- how many times an inventory's backups are walked: a fixed number whatever N (a lookup per
  action or per backup that scans the inventory walks it N times);
- how many Python functions are called: about 4 times as many for 4N (a scan per backup of a
  generator over the backups, or any O(N^2) loop of calls, makes it about 16 times as many).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

from reconciler.model import Observed, ObservedBackup, Retention, ScheduleInventory
from reconciler.model.slots import slot_name
from reconciler.observe import state_digest
from reconciler.plan import build_plan
from reconciler.render import plan_view
from reconciler.render.status import status_report
from tests.unit.test_plan_copies import copy_of, with_copies
from tests.unit.test_plan_unit import NOW, backup

N = 60


class Walked(tuple):  # type: ignore[type-arg]
    """A tuple of backups that counts how often it is walked."""

    walks = 0

    def __iter__(self) -> Iterator[Any]:
        Walked.walks += 1
        return super().__iter__()


def history(n: int) -> list[ObservedBackup]:
    """``n`` daily backups, oldest first, in chains of a full and three incrementals, validated."""
    out: list[ObservedBackup] = []
    for i in range(n):
        name = slot_name(NOW.replace(hour=3) - timedelta(days=n - 1 - i))
        incremental = i % 4 != 0
        out.append(
            backup(name, kind="incremental" if incremental else "full", base=out[-1].name if incremental else None)
        )
    return out


def counted(observed: Observed) -> Observed:
    def walked(inv: ScheduleInventory) -> ScheduleInventory:
        return ScheduleInventory(inv.schedule, inv.prefix, Walked(inv.backups), inv.index_current)

    return replace(
        observed,
        schedules={n: walked(inv) for n, inv in observed.schedules.items()},
        copies={n: {b: walked(inv) for b, inv in per.items()} for n, per in observed.copies.items()},
    )


def work(n: int) -> tuple[int, int, int]:
    """(walks of the inventories, Python calls, prune actions) of planning ``n`` backups."""
    backups = history(n)
    config, observed = with_copies(
        backups,
        [copy_of(b) for b in backups],
        retention=Retention(keep_last=5),
        copy_retention=Retention(keep_last=3),
        full_every=4,
    )
    observed = counted(observed)
    calls = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if event == "call":  # also each resumption of a generator
            calls += 1

    Walked.walks = 0
    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        plan = build_plan(config, observed, NOW)
        for fmt in ("text", "json", "markdown"):
            plan_view(plan, fmt)
        status_report(config, observed, NOW)
        state_digest(observed)
    finally:
        sys.setprofile(previous)
    return Walked.walks, calls, sum(1 for a in plan.actions if a.type.value == "prune")


def test_the_planner_walks_each_inventory_a_fixed_number_of_times_and_calls_linearly() -> None:
    walks, calls, prunes = work(N)
    walks4, calls4, prunes4 = work(4 * N)
    # the scenario prunes most backups and most copies, at both sizes
    assert prunes > N and prunes4 > 4 * N
    assert walks4 == walks, f"inventories walked {walks} times for {N} backups, {walks4} for {4 * N}"
    # linear: 4 times the backups, at most ~4 times the calls (a fixed part makes it a little less)
    assert calls4 <= 4.4 * calls, f"{calls} Python calls for {N} backups, {calls4} for {4 * N}"
