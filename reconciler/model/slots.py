"""Schedule slots: which backup a schedule is due for at a given time (docs/plan.md).

Slots are deterministic so that a re-run a second later names the same backup: for ``cron``
the newest tick <= now (UTC); for ``every: D`` the newest multiple of D since the Unix epoch
that is <= now.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from croniter import croniter

from .desired import Schedule
from .time import UTC

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAME = re.compile(r"^(\d{8}T\d{6}Z)(?:\.(\d+))?$")
SLOT_FORMAT = "%Y%m%dT%H%M%SZ"


def latest_slot(schedule: Schedule, now: datetime) -> datetime:
    """The newest slot at or before ``now``."""
    now = now.astimezone(UTC)
    if schedule.every is not None:
        step = int(schedule.every.total_seconds())
        since = int((now - _EPOCH).total_seconds())
        return _EPOCH + timedelta(seconds=since - since % step)
    assert schedule.cron is not None
    # croniter's get_prev is strictly before its start: start one second later so that a tick
    # exactly at `now` counts as due.
    start = now.replace(microsecond=0) + timedelta(seconds=1)
    prev: datetime = croniter(schedule.cron, start).get_prev(datetime)
    return prev.astimezone(UTC)


def previous_slot(schedule: Schedule, slot: datetime) -> datetime:
    """The slot before ``slot`` (which must itself be a slot)."""
    if schedule.every is not None:
        return slot - schedule.every
    assert schedule.cron is not None
    prev: datetime = croniter(schedule.cron, slot).get_prev(datetime)
    return prev.astimezone(UTC)


def next_slot(schedule: Schedule, slot: datetime) -> datetime:
    if schedule.every is not None:
        return slot + schedule.every
    assert schedule.cron is not None
    nxt: datetime = croniter(schedule.cron, slot).get_next(datetime)
    return nxt.astimezone(UTC)


def slot_name(slot: datetime, attempt: int = 1) -> str:
    """``20261125T030000Z``, or ``20261125T030000Z.2`` for the second attempt of that slot."""
    base = slot.astimezone(UTC).strftime(SLOT_FORMAT)
    return base if attempt == 1 else f"{base}.{attempt}"


def parse_backup_name(name: str) -> tuple[datetime, int] | None:
    """(slot, attempt) of a folder name written by the reconciler; None for any other name."""
    m = _NAME.match(name)
    if not m:
        return None
    d = m.group(1)
    try:  # what strptime(SLOT_FORMAT) reads, without its cost (a plan parses every folder name)
        slot = datetime.fromisoformat(d)  # ISO 8601's basic format, "Z" read as UTC
    except ValueError:
        # digits that are not ASCII (the pattern's \d takes any), or no such date: int() reads
        # the former as the pattern does, and both refuse the latter
        try:
            slot = datetime(
                int(d[0:4]), int(d[4:6]), int(d[6:8]), int(d[9:11]), int(d[11:13]), int(d[13:15]), tzinfo=UTC
            )
        except ValueError:
            return None
    attempt = int(m.group(2)) if m.group(2) else 1
    if attempt < 2 and m.group(2) is not None:
        return None
    return slot, attempt
