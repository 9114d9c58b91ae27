"""Times for tests that mix ``--now`` with records the reconciler stamps with the real clock.

A test that plans at a fixed date and expects something to fall due "a week after" a validation
would depend on the day it runs, since validations carry the real time. Such tests take their
``--now`` from here: 06:00 UTC of the day before the real today, so it is always in the past
(records of the test's own applies are then stamped after it, and count as made at ``--now``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from reconciler.model import UTC, iso
from reconciler.model.slots import slot_name


def base_day() -> datetime:
    """06:00 UTC of yesterday (real clock)."""
    return datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0) - timedelta(days=1)


def now_text(offset: timedelta = timedelta(0)) -> str:
    return iso(base_day() + offset)


def daily_slot(offset: timedelta = timedelta(0)) -> str:
    """The 03:00 UTC slot of a daily ``0 3 * * *`` schedule on the base day (+ offset)."""
    return slot_name((base_day() + offset).replace(hour=3))
