"""Restores as of a time end to end on chdb and moto's S3 server: ``backup: {before: T}`` is the
newest complete backup whose slot is strictly before T, resolved when planning; the plan names it
and its chain, and the restore brings back exactly the rows that backup held."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler import clickhouse
from reconciler.model import Bucket, iso
from tests.support.clock import base_day, daily_slot, now_text
from tests.support.e2e import run, s3_bucket_doc, unique, write_config

pytestmark = pytest.mark.clock  # --now over three days against the records' real times


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, s3_server: Any, chdb_dsn: str) -> None:
    monkeypatch.setenv("TEST_S3_KEY", s3_server.access_key)
    monkeypatch.setenv("TEST_S3_SECRET", s3_server.secret_key)
    monkeypatch.setenv("TEST_DSN", chdb_dsn)


def test_as_of_restore_picks_the_newest_backup_before_t_with_its_chain(
    tmp_path: Path, env: None, s3_bucket: Bucket, ch: clickhouse.ClickHouse
) -> None:
    db = unique("asof")
    ch.command(f"CREATE DATABASE {db}")
    ch.command(f"CREATE TABLE {db}.events (id UInt64, day UInt8) ENGINE = MergeTree ORDER BY id")
    doc: dict[str, Any] = {
        "services": {"analytics": {"dsn": "${TEST_DSN}"}, "staging": {"dsn": "${TEST_DSN}"}},
        "buckets": {"primary": s3_bucket_doc(s3_bucket)},
        "schedules": {
            "daily": {
                "service": "analytics",
                "bucket": "primary",
                "databases": [db],
                "cron": "0 3 * * *",
                "incremental": {"full_every": 3},
            }
        },
    }
    cfg = str(write_config(tmp_path / "c.yaml", doc))
    days = [timedelta(days=-2), timedelta(days=-1), timedelta(0)]
    rows = []
    for n, offset in enumerate(days):  # a full, then two incrementals: A <- B <- C
        ch.command(f"INSERT INTO {db}.events SELECT number + {n * 1000}, {n} FROM numbers(1000)")
        rows.append(1000 * (n + 1))
        r = run("apply", "-f", cfg, "--now", now_text(offset), "--auto-approve")
        assert r.code == 0, r.out + r.err
    a, b, c = (daily_slot(o) for o in days)

    # T exactly at C's slot: C is not strictly before it, so B is chosen, with its chain [A]
    t = iso((base_day() + days[2]).replace(hour=3))
    doc["restores"] = {
        "as-of": {
            "from": {"schedule": "daily", "backup": {"before": t}},
            "to": {"service": "staging", "databases": {db: f"{db}_asof"}},
        },
        "too-early": {
            "from": {"schedule": "daily", "backup": {"before": iso((base_day() + days[0]).replace(hour=2))}},
            "to": {"service": "staging", "databases": {db: f"{db}_early"}},
        },
    }
    write_config(tmp_path / "c.yaml", doc)
    assert run("validate", "-f", cfg).code == 0
    plan = run("plan", "-f", cfg, "--now", now_text(), "--format", "json")
    assert plan.code == 0, plan.err
    (restore,) = [x for x in plan.json()["actions"] if x["type"] == "restore"]
    assert (restore["id"], restore["backup"], restore["kind"], restore["base"], restore["chain"]) == (
        "restore/as-of",
        b,
        "incremental",
        a,
        [a],
    )
    assert f"the newest complete backup before {t}" in restore["reason"] and b in restore["reason"]
    assert c not in restore["reason"]
    (warning,) = [w for w in plan.json()["warnings"] if "too-early" in w]
    assert "no complete backup taken before" in warning

    applied = run("apply", "-f", cfg, "--now", now_text(), "--auto-approve")
    assert applied.code == 0, applied.out + applied.err
    got = ch.query(f"SELECT count(), max(day) FROM {db}_asof.events")[0]
    assert (int(got[0]), int(got[1])) == (rows[1], 1)  # what B held: days 0 and 1, not day 2

    # done once: the restore is not planned again, even though a newer backup appears before T
    later = run("plan", "-f", cfg, "--now", now_text(timedelta(days=1)), "--format", "json").json()
    assert "restore/as-of" not in [x["id"] for x in later["actions"]]
