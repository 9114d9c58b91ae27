"""Writing the per-schedule index (reconciler/bucket/index.py) at the end of an apply, from the
bucket: a fast read of the schedule in which the folders the apply wrote or deleted are looked at
again (or a full one, under ``--refresh full``), and a write only when the index changed."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from ..bucket import layout
from ..bucket.folders import entry_of, read_schedule
from ..bucket.index import ScheduleIndex
from ..errors import ReconcilerError
from ..model import ActionType, Plan, Refresh
from .context import ApplyContext

BACKUP_ACTIONS = (ActionType.EXPORT, ActionType.COPY, ActionType.VALIDATE, ActionType.RECOVER, ActionType.PRUNE)


def touched_schedules(plan: Plan) -> set[str]:
    """The schedules whose backups the plan's actions write or delete."""
    return set(touched_backups(plan))


def touched_backups(plan: Plan) -> dict[str, set[str]]:
    """Per schedule, the backup folders the plan's actions write or delete."""
    out: dict[str, set[str]] = {}
    for a in plan.actions:
        if a.schedule and a.type in BACKUP_ACTIONS:
            out.setdefault(a.schedule, set())
            if a.backup:
                out[a.schedule].add(a.backup)
    return out


def refresh(
    ctx: ApplyContext,
    schedules: Iterable[str],
    touched: Mapping[str, Collection[str]] | None = None,
    mode: Refresh = Refresh.FAST,
) -> int:
    """Write each schedule's index where it is missing or differs from the bucket. ``touched``:
    per schedule the folders to look at again whatever the index says. Returns how many indexes
    were written. A failure only costs later plans some reads: it is a warning."""
    touched = touched or {}
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
            prefix = layout.schedule_prefix(bucket, s.service, schedule)
            read = read_schedule(store, prefix, key, (s.service, schedule), mode, touched.get(schedule, ()))
            if read.index_is_current:
                continue
            entries = {n: entry_of(f) for n, f in read.folders.items()}
            store.write(key, ScheduleIndex(s.service, schedule, entries).encode())
            written += 1
        except ReconcilerError as e:
            ctx.console.warn(f"could not update the index of schedule {schedule}: {e.message}")
    return written
