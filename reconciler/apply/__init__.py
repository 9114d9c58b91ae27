"""Carry out a plan (docs/commands.md): under the bucket locks (``lock``), actions in dependency
order by the scheduler (``scheduler``), each by the executor of its type, with a run record in
every locked bucket (``run_record``) and each touched schedule's index refreshed at the end."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime

from ..errors import StalePlan
from ..model import ApplyResult, CloudRestoreAction, Config, Plan, Refresh, RestoreAction
from .context import ApplyContext, wall_clock
from .index_update import refresh, touched_backups, touched_snapshots
from .lock import DEFAULT_LEASE, BucketLock, LeaseKeeper, force_unlock, hold_locks
from .run_record import write_run_records
from .scheduler import run_actions

__all__ = [
    "DEFAULT_LEASE",
    "ApplyContext",
    "ApplyResult",
    "BucketLock",
    "LeaseKeeper",
    "check_references",
    "execute",
    "force_unlock",
    "hold_locks",
    "new_run_id",
    "refresh",
    "wall_clock",
]


def check_references(plan: Plan, config: Config) -> None:
    """A saved plan may only name what the config declares (it is data from a file: it may have
    been edited); refuse it whole before anything runs."""
    for a in plan.actions:
        for kind, name, known in (
            ("service", a.service, config.services),
            ("schedule", a.schedule, config.schedules),
            ("bucket", a.bucket, config.buckets),
        ):
            if name is not None and name not in known:
                raise StalePlan(
                    f"the saved plan's action {a.id} names {kind} {name}, which the config does not declare"
                )
        if a.snapshot is not None and a.snapshot not in config.snapshots:
            raise StalePlan(
                f"the saved plan's action {a.id} names snapshot {a.snapshot}, which the config does not declare"
            )
        if isinstance(a, RestoreAction | CloudRestoreAction) and a.restore not in config.restores:
            raise StalePlan(
                f"the saved plan's action {a.id} names restore {a.restore}, which the config does not declare"
            )


def new_run_id(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def execute(
    plan: Plan,
    ctx: ApplyContext,
    parallelism: int = 4,
    locks: list[BucketLock] | None = None,
    stale_indexes: Iterable[str] = (),
    mode: Refresh = Refresh.FAST,
    stale_snapshot_indexes: Iterable[tuple[str, str]] = (),
) -> ApplyResult:
    """Run the plan's actions; write a run record into every locked bucket; bring the index of
    every schedule the plan touched (and of ``stale_indexes``) up to date, read as ``mode`` says,
    and the snapshot index of every (bucket, service) whose snapshots it touched (and of
    ``stale_snapshot_indexes``)."""
    locks = locks or []
    started = ctx.clock()
    write_run_records(ctx, locks, plan, started, None, [])

    def lock_lost() -> str | None:
        return next((why for lk in locks if (why := lk.lost_because())), None)

    outcomes = run_actions(list(plan.actions), ctx, max(1, parallelism), lock_lost)
    touched = touched_backups(plan)
    refresh(ctx, set(touched) | set(stale_indexes), touched, mode, stale_snapshot_indexes, touched_snapshots(plan))
    record = write_run_records(ctx, locks, plan, started, ctx.clock(), outcomes)
    return ApplyResult(ctx.run_id, tuple(outcomes), record)
