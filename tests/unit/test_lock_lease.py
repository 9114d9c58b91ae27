"""The apply lock's lease when renewals fail (a store outage during a long BACKUP): past the
lease the lock counts as lost, the scheduler starts nothing new and says so once."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from reconciler.apply.lock import BucketLock
from reconciler.apply.scheduler import run_actions
from reconciler.model import UTC, Bucket, Provider
from reconciler.stores.memory import MemoryStorage, MemoryStore

T0 = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def test_the_lock_is_lost_once_its_lease_runs_out_unrenewed() -> None:
    clock = Clock()
    bucket = Bucket("primary", Provider.S3, "bkt", prefix="p")
    storage = MemoryStorage()
    storage.create_bucket("bkt")
    lock = BucketLock(MemoryStore(storage, "bkt"), bucket, "run-1", timedelta(seconds=30), clock)
    lock.acquire()
    assert lock.lost_because() is None
    clock.now = T0 + timedelta(seconds=20)
    lock.renew()  # a renewal that succeeds moves the lease on
    clock.now = T0 + timedelta(seconds=45)
    assert lock.lost_because() is None
    clock.now = T0 + timedelta(seconds=50)  # the lease ran out at +50s, a renewal still under way
    assert lock.lost_because() is None
    lock.renewal_failed = True  # what the lease keeper records when a renewal fails
    why = lock.lost_because()
    assert why is not None and "ran out at 2026-11-25T06:00:50Z while its renewals failed" in why


class Console:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    def action_started(self, action: object) -> None:
        pass

    def action_finished(self, action: object, outcome: object) -> None:
        pass


def test_the_scheduler_starts_nothing_once_the_lock_is_lost_and_says_so_once() -> None:
    from dataclasses import dataclass

    from reconciler.model import PruneAction

    @dataclass(frozen=True)
    class Ctx:
        console: Console
        clock: Clock

    actions = [
        PruneAction(
            id=f"prune/a/daily/{n}",
            service="a",
            schedule="daily",
            bucket="primary",
            backup=n,
            reason="r",
            location="s3://bkt/x/",
            state="complete",
        )
        for n in ("20261101T030000Z", "20261102T030000Z")
    ]
    ctx = Ctx(Console(), Clock())
    outcomes = run_actions(actions, ctx, 2, lambda: "the lease of the apply lock of bucket primary ran out")  # type: ignore[arg-type]
    assert [o.status.value for o in outcomes] == ["skipped", "skipped"]
    assert all(o.detail.startswith("not started: the lease") for o in outcomes)
    assert len(ctx.console.warnings) == 1 and "the next apply adopts" in ctx.console.warnings[0]


def test_drills_of_one_schedule_never_overlap_other_work_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """The drill of the source and of each copy share the schedule's scratch names (and drop the
    leftovers of drills not running): the scheduler runs them one at a time."""
    import threading
    import time
    from dataclasses import dataclass

    from reconciler.apply import scheduler
    from reconciler.model import Outcome, OutcomeStatus, ValidateAction, ValidationLevel

    @dataclass(frozen=True)
    class Ctx:
        console: Console
        clock: Clock

    running: dict[str, int] = {}
    most: dict[str, int] = {}
    lock = threading.Lock()

    def fake_validate(ctx: Ctx, action: ValidateAction) -> Outcome:
        key = action.schedule if action.drill_service else action.id
        with lock:
            running[key] = running.get(key, 0) + 1
            most[key] = max(most.get(key, 0), running[key])
        time.sleep(0.05)
        with lock:
            running[key] -= 1
        return Outcome(action.id, OutcomeStatus.DONE, "ok", ctx.clock(), ctx.clock())

    monkeypatch.setitem(scheduler.EXECUTORS, ValidateAction, fake_validate)

    def drill(bucket: str, schedule: str = "daily") -> ValidateAction:
        return ValidateAction(
            id=f"validate/a/{schedule}/20261101T030000Z@{bucket}/drill",
            service="a",
            schedule=schedule,
            bucket=bucket,
            backup="20261101T030000Z",
            level=ValidationLevel.DRILL,
            location=f"s3://{bucket}/x/",
            reason="r",
            drill_service="scratch",
        )

    actions = [drill("primary"), drill("dr"), drill("dr2"), drill("primary", "hourly")]
    outcomes = scheduler.run_actions(actions, Ctx(Console(), Clock()), 4, lambda: None)  # type: ignore[arg-type]
    assert [o.status for o in outcomes] == [OutcomeStatus.DONE] * 4
    assert most == {"daily": 1, "hourly": 1}
