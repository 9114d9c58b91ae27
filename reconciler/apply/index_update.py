"""Writing the per-schedule index (reconciler/bucket/index.py), and the per-service index of
snapshots, at the end of an apply, from the bucket: a fast read of the schedule in which the
folders the apply wrote or deleted are looked at again (or a full one, under ``--refresh full``),
and a write only when the index changed."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from ..bucket import layout
from ..bucket.folders import entry_of, fill_lock_ends, read_schedule
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


def touched_snapshots(plan: Plan) -> dict[tuple[str, str], set[str]]:
    """Per (bucket, service), the snapshot folders the plan's actions write or delete."""
    out: dict[tuple[str, str], set[str]] = {}
    for a in plan.actions:
        if a.snapshot and a.bucket and a.service and a.type in BACKUP_ACTIONS:
            out.setdefault((a.bucket, a.service), set()).add(a.snapshot)
    return out


def refresh(
    ctx: ApplyContext,
    schedules: Iterable[str],
    touched: Mapping[str, Collection[str]] | None = None,
    mode: Refresh = Refresh.FAST,
    snapshots: Iterable[tuple[str, str]] = (),
    touched_snapshots: Mapping[tuple[str, str], Collection[str]] | None = None,
) -> int:
    """Write each schedule's index where it is missing or differs from the bucket. ``touched``:
    per schedule the folders to look at again whatever the index says. ``snapshots``: the
    (bucket, service) whose snapshot index to bring up to date the same way
    (``touched_snapshots``: the snapshot folders to look at again). Returns how many indexes
    were written. A failure only costs later plans some reads: it is a warning."""
    touched = touched or {}
    touched_snapshots = touched_snapshots or {}
    written = 0
    for schedule, where in sorted(
        (n, b)
        for n in schedules
        for b in (ctx.config.schedules[n].bucket, *(c.bucket for c in ctx.config.schedules[n].copies))
    ):
        s = ctx.config.schedules[schedule]
        # the schedule's bucket, or a copy bucket: each has its index
        written += _write_index(ctx, where, s.service, schedule, touched.get(schedule, ()), mode)
    for where, service in sorted(set(snapshots) | set(touched_snapshots)):
        folders = touched_snapshots.get((where, service), ())
        written += _write_index(ctx, where, service, layout.SNAPSHOTS, folders, mode)
    return written


def _write_index(
    ctx: ApplyContext, where: str, service: str, schedule: str, touched: Collection[str], mode: Refresh
) -> int:
    """1 when the index of ``schedule`` (or of the service's snapshots) was written, else 0."""
    bucket = ctx.config.buckets[where]
    store = ctx.conns.store(where)
    key = layout.index_key(bucket, service, schedule)
    prefix = layout.schedule_prefix(bucket, service, schedule)  # the snapshots': `<service>/_snapshots/`
    try:
        read = read_schedule(store, prefix, key, (service, schedule), mode, touched)
        # on a lock bucket the index records when each backup's lock ends, so that a plan does
        # not ask the bucket twice per backup (asked once here, per new sidecar version)
        asked = fill_lock_ends(store, prefix, read) if bucket.immutability is not None else 0
        if read.index_is_current and not asked:
            return 0
        entries = {n: entry_of(f) for n, f in read.folders.items()}
        store.write(key, ScheduleIndex(service, schedule, entries).encode())
        return 1
    except ReconcilerError as e:
        what = f"the snapshots of service {service}" if schedule == layout.SNAPSHOTS else f"schedule {schedule}"
        ctx.console.warn(f"could not update the index of {what}: {e.message}")
        return 0
