"""The `http://` tier: the reconciler against a ClickHouse server in its own process
(tests/support/clickhouse_server.py: ClickHouse's own HTTP handler inside chdb-core), through
clickhouse-connect's real HTTP client and a password: the core round trip, an incremental chain,
a restore of an incremental and a drill; a wrong password; the server down at plan."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler.model import Bucket
from tests.support.clickhouse_server import ClickHouseServer
from tests.support.clock import daily_slot, now_text
from tests.support.e2e import keys, read_json, run, s3_bucket_doc, write_config
from tests.support.fixtures_clickhouse import PASSWORD, seed_shop

pytestmark = [pytest.mark.slow, pytest.mark.clock]

DAY = timedelta(days=1)


def config(path: Path, bucket: Bucket, db: str, **extra: Any) -> str:
    schedule: dict[str, Any] = {
        "service": "analytics",
        "bucket": "primary",
        "databases": [db],
        "cron": "0 3 * * *",
        "incremental": {"full_every": 3},
        "validate": {"after_export": "checksums", **extra.pop("validate", {})},
    }
    doc = {
        "services": {"analytics": {"dsn": "${TEST_CH_DSN}"}},
        "buckets": {"primary": s3_bucket_doc(bucket)},
        "schedules": {"daily": schedule},
        **extra,
    }
    return str(write_config(path, doc))


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, s3_server: Any, ch_server: ClickHouseServer) -> ClickHouseServer:
    monkeypatch.setenv("TEST_S3_KEY", s3_server.access_key)
    monkeypatch.setenv("TEST_S3_SECRET", s3_server.secret_key)
    monkeypatch.setenv("TEST_CH_DSN", ch_server.dsn)
    return ch_server


def test_chain_restore_and_drill_against_the_server(
    tmp_path: Path, env: ClickHouseServer, s3_server: Any, s3_bucket: Bucket
) -> None:
    client = env.client()
    db = seed_shop(client)
    plain = config(tmp_path / "c.yaml", s3_bucket, db)
    days = [now_text(-2 * DAY), now_text(-DAY), now_text()]
    slots = [daily_slot(-2 * DAY), daily_slot(-DAY), daily_slot()]

    for day in days[:2]:
        applied = run("apply", "-f", plain, "--now", day, "--auto-approve")
        assert applied.code == 0, applied.out + applied.err
        client.command(f"INSERT INTO {db}.orders SELECT number + 100000, 1, 1, 'more', now() FROM numbers(500)")

    full = config(
        tmp_path / "full.yaml",
        s3_bucket,
        db,
        validate={"drill": {"service": "analytics", "every": "1d"}},
        restores={
            "back": {
                "from": {"schedule": "daily", "backup": "latest"},
                "to": {"service": "analytics", "databases": {db: f"{db}_back"}},
            }
        },
    )
    applied = run("apply", "-f", full, "--now", days[2], "--auto-approve")
    assert applied.code == 0, applied.out + applied.err

    s3, bkt = s3_server.client(), s3_bucket.bucket
    folder = "clickhouse/analytics/daily/"
    sidecars = [read_json(s3, bkt, f"{folder}{s}/reconciler.json") for s in slots]
    assert [(s["state"], s["kind"], s["base"]) for s in sidecars] == [
        ("complete", "full", None),
        ("complete", "incremental", slots[0]),
        ("complete", "incremental", slots[1]),
    ]
    assert sorted({k.split("/")[3] for k in keys(s3, bkt, folder)}) == slots  # no `.2`, nothing else
    levels = [(v["level"], v["result"]) for v in sidecars[2]["validations"]]
    assert levels == [("checksums", "ok"), ("drill", "ok")]
    # the restore took the newest complete backup at plan time: the first incremental, with its base
    rows = dict(client.query(f"SELECT name, total_rows FROM system.tables WHERE database = '{db}_back'").result_rows)
    assert rows == {"orders": 3500, "customers": 1000}
    assert not [d for d in client.query("SELECT name FROM system.databases").result_rows if "drill" in d[0]]
    done = run("plan", "-f", full, "--now", days[2], "--detailed-exitcode")
    assert done.code == 0, done.out + done.err
    assert PASSWORD not in done.out + done.err + applied.out + applied.err


def test_a_wrong_password_is_one_line(
    tmp_path: Path, env: ClickHouseServer, s3_bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_CH_DSN", env.dsn_for(password="wrong-Pw"))
    cfg = config(tmp_path / "c.yaml", s3_bucket, "shop")
    planned = run("plan", "-f", cfg, "--now", now_text(), "--format", "json")
    assert planned.code == 0, planned.err
    drift = [d for d in planned.json()["drift"] if d["type"] == "unreachable_service"]
    assert len(drift) == 1 and "AUTHENTICATION_FAILED" in drift[0]["detail"], drift
    line = drift[0]["detail"]
    assert "\n" not in line and line.startswith("cannot connect to service analytics: "), line
    applied = run("apply", "-f", cfg, "--now", now_text(), "--auto-approve")
    said = [ln for ln in (applied.out + applied.err).splitlines() if "Authentication failed" in ln]
    assert len(said) == 1, applied.out + applied.err  # the drift line; the warning names no error twice
    assert "cannot be reached, so no export is planned" in applied.out + applied.err
    assert "wrong-Pw" not in applied.out + applied.err + planned.out


def test_the_server_down_at_plan_is_unreachable_service_drift(
    tmp_path: Path, env: ClickHouseServer, s3_bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    down = ClickHouseServer(tmp_path / "never-started", PASSWORD)  # its port: nothing listens
    monkeypatch.setenv("TEST_CH_DSN", down.dsn)
    cfg = config(tmp_path / "c.yaml", s3_bucket, "shop")
    planned = run("drift", "-f", cfg, "--now", now_text(), "--format", "json")
    assert planned.code == 2, planned.out + planned.err
    types = {d["type"]: d for d in planned.json()["drift"]}
    assert "unreachable_service" in types and "analytics" in str(types["unreachable_service"]), planned.out
    assert PASSWORD not in planned.out + planned.err
