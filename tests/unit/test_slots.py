"""Slots are deterministic: cron ticks <= now, or multiples of `every` since the epoch."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from reconciler.model import UTC, Schedule
from reconciler.model.slots import latest_slot, next_slot, parse_backup_name, previous_slot, slot_name

pytestmark = pytest.mark.clock  # also run at shifted dates (scripts/test-shifted-dates.sh)


def t(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


def cron(expr: str) -> Schedule:
    return Schedule(name="s", service="svc", bucket="b", cron=expr)


def every(td: timedelta) -> Schedule:
    return Schedule(name="s", service="svc", bucket="b", every=td)


@pytest.mark.parametrize(
    "now, expected",
    [
        ("2026-11-25T03:00:00", "2026-11-25T03:00:00"),  # a tick exactly at now is due
        ("2026-11-25T03:00:00.999999", "2026-11-25T03:00:00"),
        ("2026-11-25T02:59:59", "2026-11-24T03:00:00"),
        ("2026-11-25T23:59:59", "2026-11-25T03:00:00"),
    ],
)
def test_cron_latest_slot_is_newest_tick_at_or_before_now(now: str, expected: str) -> None:
    assert latest_slot(cron("0 3 * * *"), t(now)) == t(expected)


def test_cron_previous_and_next() -> None:
    s = cron("0 3 * * *")
    slot = t("2026-11-25T03:00:00")
    assert previous_slot(s, slot) == t("2026-11-24T03:00:00")
    assert next_slot(s, slot) == t("2026-11-26T03:00:00")


def test_every_is_aligned_to_the_epoch_not_to_now() -> None:
    s = every(timedelta(hours=6))
    assert latest_slot(s, t("2026-11-25T05:59:59")) == t("2026-11-25T00:00:00")
    assert latest_slot(s, t("2026-11-25T06:00:00")) == t("2026-11-25T06:00:00")
    assert previous_slot(s, t("2026-11-25T06:00:00")) == t("2026-11-25T00:00:00")
    # 7h does not divide a day: slots still follow the epoch, a second later names the same slot
    s7 = every(timedelta(hours=7))
    a = latest_slot(s7, t("2026-11-25T12:00:00"))
    assert a == latest_slot(s7, t("2026-11-25T12:00:01"))
    assert int(a.timestamp()) % (7 * 3600) == 0


def test_slot_names_round_trip_with_attempts() -> None:
    slot = t("2026-11-25T03:00:00")
    assert slot_name(slot) == "20261125T030000Z"
    assert slot_name(slot, 2) == "20261125T030000Z.2"
    assert parse_backup_name("20261125T030000Z") == (slot, 1)
    assert parse_backup_name("20261125T030000Z.2") == (slot, 2)
    for bad in ("20261125T030000Z.1", "20261125T030000Z.", "2026-11-25", "20261345T030000Z", "x"):
        assert parse_backup_name(bad) is None
