"""Observe the copy buckets: per schedule with ``copies``, the folders of the schedule's path in
each copy bucket, read like a source schedule (one listing, the copy bucket's own index of the
schedule, the sidecars the index does not hold). A copy has no ClickHouse operation: an
in-progress copy is running while its apply holds the copy bucket's lock, else abandoned."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from ..bucket import layout
from ..bucket.folders import read_schedule
from ..connections import Connections
from ..model import BucketState, Config, Refresh, ScheduleInventory
from .inventory import classify


def observe_copies(
    config: Config,
    conns: Connections,
    buckets: Mapping[str, BucketState],
    schedules: Iterable[str],
    now: datetime,
    refresh: Refresh = Refresh.FAST,
) -> dict[str, dict[str, ScheduleInventory]]:
    out: dict[str, dict[str, ScheduleInventory]] = {}
    for name in sorted(schedules):
        s = config.schedules[name]
        for copy in s.copies:
            state = buckets.get(copy.bucket)
            if state is None or not state.reachable:
                continue  # reported as missing_bucket
            out.setdefault(name, {})[copy.bucket] = read_copies(config, conns, name, copy.bucket, state, now, refresh)
    return out


def read_copies(
    config: Config,
    conns: Connections,
    schedule: str,
    copy_bucket: str,
    state: BucketState,
    now: datetime,
    refresh: Refresh = Refresh.FAST,
) -> ScheduleInventory:
    s = config.schedules[schedule]
    bucket = config.buckets[copy_bucket]
    prefix = layout.schedule_prefix(bucket, s.service, schedule)
    read = read_schedule(
        conns.store(copy_bucket),
        prefix,
        layout.index_key(bucket, s.service, schedule),
        (s.service, schedule),
        refresh,
    )
    backups = [classify(f, None, state.lock, now) for f in read.folders.values()]
    backups.sort(key=lambda b: (b.slot is None, b.slot or now, b.attempt, b.name))
    return ScheduleInventory(schedule, prefix, tuple(backups))
