"""Writing the per-schedule index (reconciler/index.py) at the end of an apply, from the bucket:
one listing, and reads of only the sidecars that changed since the index was written."""

from __future__ import annotations

from collections.abc import Iterable

from ..bucket import layout
from ..bucket.folders import entry_of, read_schedule
from ..bucket.index import ScheduleIndex
from ..errors import ReconcilerError
from ..model import ActionType, Plan
from .context import ApplyContext

BACKUP_ACTIONS = (ActionType.EXPORT, ActionType.COPY, ActionType.VALIDATE, ActionType.PRUNE)


def touched_schedules(plan: Plan) -> set[str]:
    """The schedules whose backups the plan's actions write or delete."""
    return {a.schedule for a in plan.actions if a.type in BACKUP_ACTIONS and a.schedule}


def refresh(ctx: ApplyContext, schedules: Iterable[str]) -> int:
    """Write each schedule's index where it is missing or differs from the bucket. Returns how
    many were written. A failure only costs later plans some reads: it is a warning."""
    written = 0
    for schedule, where in sorted(
        (n, b)
        for n in schedules
        for b in (ctx.config.schedules[n].bucket, *(c.bucket for c in ctx.config.schedules[n].copies))
    ):
        s = ctx.config.schedules[schedule]
        bucket = ctx.config.buckets[where]  # the schedule's bucket, or a copy bucket: each has its index
        store = ctx.conns.store(where)
        key = layout.index_key(bucket, s.service, schedule)
        try:
            read = read_schedule(store, layout.schedule_prefix(bucket, s.service, schedule), key, (s.service, schedule))
            entries = {n: e for n, f in read.folders.items() if (e := entry_of(f)) is not None}
            fresh = ScheduleIndex(s.service, schedule, entries)
            if read.index is not None and not read.reread and set(read.index.entries) == set(entries):
                continue  # already true
            store.write(key, fresh.encode())
            written += 1
        except ReconcilerError as e:
            ctx.console.warn(f"could not update the index of schedule {schedule}: {e.message}")
    return written
