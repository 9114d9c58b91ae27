"""End to end on the real ClickHouse engine (chdb) and a real S3 server process (moto).

The CLI runs in-process here, sharing the session's one chdb engine (one per process:
checked on ClickHouse 26.9, chdb 4.4); the crash test runs it as a subprocess with its own engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler import clickhouse
from reconciler.clickhouse.scratch import SCRATCH
from reconciler.model import Bucket
from tests.support.e2e import (
    keys,
    one_schedule_config,
    read_json,
    run,
    s3_bucket_doc,
    small_source,
    unique,
    write_config,
)

NOW = "2026-11-25T06:00:00Z"
SLOT = "20261125T030000Z"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, s3_server: Any, chdb_dsn: str) -> None:
    monkeypatch.setenv("TEST_S3_KEY", s3_server.access_key)
    monkeypatch.setenv("TEST_S3_SECRET", s3_server.secret_key)
    monkeypatch.setenv("TEST_DSN", chdb_dsn)


def seed(ch: clickhouse.ClickHouse, db: str, orders: int = 5000) -> dict[str, int]:
    ch.command(f"CREATE DATABASE {db}")
    ch.command(f"CREATE TABLE {db}.orders (id UInt64, amount Float64, note String) ENGINE = MergeTree ORDER BY id")
    ch.command(f"CREATE TABLE {db}.customers (id UInt32, name String) ENGINE = MergeTree ORDER BY id")
    ch.command(
        f"INSERT INTO {db}.orders SELECT number, number / 7, toString(cityHash64(number)) FROM numbers({orders})"
    )
    ch.command(f"INSERT INTO {db}.customers SELECT number, concat('c', toString(number)) FROM numbers(100)")
    return counts(ch, db)


def counts(ch: clickhouse.ClickHouse, db: str) -> dict[str, int]:
    return {t: int(ch.query(f"SELECT count() FROM {db}.{t}")[0][0]) for t in ("orders", "customers")}


@pytest.fixture
def setup(tmp_path: Path, env: None, s3_bucket: Bucket, ch: clickhouse.ClickHouse) -> Iterator[dict[str, Any]]:
    db = unique("shop")
    rows = seed(ch, db)
    target = f"{db}_restored"
    cfg = write_config(
        tmp_path / "config.yaml",
        {
            "services": {"analytics": {"dsn": "${TEST_DSN}"}, "staging": {"dsn": "${TEST_DSN}"}},
            "buckets": {"primary": s3_bucket_doc(s3_bucket)},
            "schedules": {
                "daily": {"service": "analytics", "bucket": "primary", "databases": [db], "cron": "0 3 * * *"}
            },
            "restores": {
                "into-staging": {
                    "from": {"schedule": "daily", "backup": "latest"},
                    "to": {"service": "staging", "databases": {db: target}},
                }
            },
        },
    )
    yield {"cfg": str(cfg), "db": db, "target": target, "rows": rows, "bucket": s3_bucket.bucket}


def test_plan_apply_status_and_restore_round_trip(
    setup: dict[str, Any], s3_server: Any, ch: clickhouse.ClickHouse
) -> None:
    cfg, bucket = setup["cfg"], setup["bucket"]
    s3 = s3_server.client()

    r = run("validate", "-f", cfg)
    assert r.code == 0, r.err

    plan = run("plan", "-f", cfg, "--now", NOW, "--format", "json")
    assert plan.code == 0, plan.err
    doc = plan.json()
    assert [(a["type"], a["id"]) for a in doc["actions"]] == [
        ("export", f"export/analytics/daily/{SLOT}"),
        ("validate", f"validate/analytics/daily/{SLOT}"),
        ("restore", "restore/into-staging"),
    ]
    assert doc["actions"][0]["location"] == f"s3://{bucket}/clickhouse/analytics/daily/{SLOT}/"
    assert run("plan", "-f", cfg, "--now", NOW, "--detailed-exitcode").code == 2

    applied = run("apply", "-f", cfg, "--now", NOW, "--auto-approve")
    assert applied.code == 0, applied.out + applied.err
    assert "3 done, 0 failed" in applied.out

    folder = f"clickhouse/analytics/daily/{SLOT}/"
    present = keys(s3, bucket, folder)
    assert folder + ".backup" in present and folder + "reconciler.json" in present
    sidecar = read_json(s3, bucket, folder + "reconciler.json")
    assert sidecar["state"] == "complete" and sidecar["kind"] == "full"
    assert sidecar["operation"]["status"] == "BACKUP_CREATED"
    assert [(v["level"], v["result"]) for v in sidecar["validations"]] == [("manifest", "ok")]
    assert sidecar["sizes"]["total_size"] > 0

    # the restore gave the same rows per table, and is recorded
    assert counts(ch, setup["target"]) == setup["rows"]
    record = read_json(s3, bucket, "clickhouse/.reconciler/restores/into-staging.json")
    assert record["backup"] == SLOT
    runs = [k for k in keys(s3, bucket, "clickhouse/.reconciler/runs/")]
    assert len(runs) == 1 and read_json(s3, bucket, runs[0])["status"] == "ok"
    assert keys(s3, bucket, "clickhouse/.reconciler/lock") == {}  # released

    # converged: nothing to do, and a second apply changes nothing
    again = run("plan", "-f", cfg, "--now", NOW, "--detailed-exitcode")
    assert again.code == 0, again.out
    before = keys(s3, bucket)
    second = run("apply", "-f", cfg, "--now", NOW, "--auto-approve")
    assert second.code == 0 and "Nothing to do" in second.out
    assert keys(s3, bucket) == before

    # past the next slot an export is due again (and the restore, already done, is not)
    later = run("plan", "-f", cfg, "--now", "2026-11-26T04:00:00Z", "--format", "json").json()
    assert [a["id"] for a in later["actions"]] == [
        "export/analytics/daily/20261126T030000Z",
        "validate/analytics/daily/20261126T030000Z",
    ]
    assert later["drift"] == []

    status = run("status", "-f", cfg, "--format", "json", "--now", NOW)
    assert status.code == 0
    (sched,) = status.json()["schedules"]
    assert sched["newest_complete"] == SLOT and sched["health"] == "on schedule"
    assert sched["backups"][0]["validation"]["result"] == "ok"
    text = run("status", "-f", cfg, "--now", NOW)
    assert SLOT in text.out and "manifest ok" in text.out


def test_restore_refuses_non_empty_tables(setup: dict[str, Any], ch: clickhouse.ClickHouse) -> None:
    cfg = setup["cfg"]
    ch.command(f"CREATE DATABASE {setup['target']}")
    ch.command(
        f"CREATE TABLE {setup['target']}.orders (id UInt64, amount Float64, note String) ENGINE = MergeTree ORDER BY id"
    )
    ch.command(f"INSERT INTO {setup['target']}.orders VALUES (1, 1, 'mine')")
    r = run("apply", "-f", cfg, "--now", NOW, "--auto-approve")
    assert r.code == 1
    assert "refusing to restore into tables that already hold rows" in r.out + r.err
    assert counts_one(ch, f"{setup['target']}.orders") == 1  # untouched
    # the export and its validation still happened: a failed action does not stop unrelated ones
    assert "2 done, 1 failed" in r.out


def counts_one(ch: clickhouse.ClickHouse, table: str) -> int:
    return int(ch.query(f"SELECT count() FROM {table}")[0][0])


def test_manifest_validation_detects_a_missing_file(setup: dict[str, Any], s3_server: Any) -> None:
    cfg, bucket = setup["cfg"], setup["bucket"]
    s3 = s3_server.client()
    assert run("apply", "-f", cfg, "--now", NOW, "--auto-approve", "--target", "daily").code == 0
    folder = f"clickhouse/analytics/daily/{SLOT}/"
    victim = next(k for k in keys(s3, bucket, folder) if k.endswith("data.bin"))
    s3.delete_object(Bucket=bucket, Key=victim)
    # the sidecar records a validation; drop it to make the backup "never validated" again
    sidecar = read_json(s3, bucket, folder + "reconciler.json")
    sidecar["validations"] = []
    import json

    s3.put_object(Bucket=bucket, Key=folder + "reconciler.json", Body=json.dumps(sidecar).encode())
    # both changes are inside a settled backup: a fast plan does not see them, a full one does
    fast = run("plan", "-f", cfg, "--now", NOW, "--format", "json", "--target", "daily").json()
    assert fast["actions"] == [] and fast["drift"] == []
    plan = run("plan", "-f", cfg, "--now", NOW, "--format", "json", "--target", "daily", "--refresh", "full").json()
    assert [a["type"] for a in plan["actions"]] == ["validate"]
    assert [d["type"] for d in plan["drift"]] == ["broken_backup"]  # the listing differs from the sidecar
    r = run("apply", "-f", cfg, "--now", NOW, "--auto-approve", "--target", "daily", "--refresh", "full")
    assert r.code == 1 and "is missing" in r.out
    drift = run("drift", "-f", cfg, "--now", NOW, "--format", "json", "--target", "daily")
    assert drift.code == 2
    assert [d["type"] for d in drift.json()["drift"]] == ["broken_backup"]


def test_lock_held_by_another_apply_is_refused_and_expired_one_taken_over(
    setup: dict[str, Any], s3_server: Any
) -> None:
    import json

    cfg, bucket = setup["cfg"], setup["bucket"]
    s3 = s3_server.client()
    lock = {
        "lock_id": "20261125T050000Z-abcdef",
        "host": "ci-runner-7",
        "pid": 4242,
        "started_at": "2026-11-25T05:00:00Z",
        "lease_expires_at": "2999-01-01T00:00:00Z",
    }
    s3.put_object(Bucket=bucket, Key="clickhouse/.reconciler/lock", Body=json.dumps(lock).encode())
    r = run("apply", "-f", cfg, "--now", NOW, "--auto-approve")
    assert r.code == 1
    assert "20261125T050000Z-abcdef" in r.err and "ci-runner-7" in r.err and "2999-01-01" in r.err
    assert len(r.err.strip().splitlines()) == 1
    assert not any("/analytics/" in k for k in keys(s3, bucket))  # nothing done

    lock["lease_expires_at"] = "2020-01-01T00:00:00Z"
    s3.put_object(Bucket=bucket, Key="clickhouse/.reconciler/lock", Body=json.dumps(lock).encode())
    r = run("apply", "-f", cfg, "--now", NOW, "--auto-approve")
    assert r.code == 0, r.out + r.err
    assert "took over the lock" in r.err


def test_force_unlock(setup: dict[str, Any], s3_server: Any) -> None:
    import json

    cfg, bucket = setup["cfg"], setup["bucket"]
    s3 = s3_server.client()
    lock = {
        "lock_id": "run-1",
        "host": "h",
        "pid": 1,
        "started_at": "2026-11-25T05:00:00Z",
        "lease_expires_at": "2999-01-01T00:00:00Z",
    }
    s3.put_object(Bucket=bucket, Key="clickhouse/.reconciler/lock", Body=json.dumps(lock).encode())
    wrong = run("force-unlock", "-f", cfg, "--bucket", "primary", "run-2")
    assert wrong.code == 1 and "held by run-1" in wrong.err
    ok = run("force-unlock", "-f", cfg, "--bucket", "primary", "run-1")
    assert ok.code == 0, ok.err
    assert keys(s3, bucket, "clickhouse/.reconciler/lock") == {}


def test_unreachable_service_is_drift_not_a_traceback(
    tmp_path: Path, env: None, s3_bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.servers import free_port

    monkeypatch.setenv("DEAD_PW", "s3cr3t-password")
    cfg = write_config(
        tmp_path / "c.yaml",
        {
            "services": {"remote": {"dsn": f"http://default:${{DEAD_PW}}@127.0.0.1:{free_port()}"}},
            "buckets": {"primary": s3_bucket_doc(s3_bucket)},
            "schedules": {"hourly": {"service": "remote", "bucket": "primary", "every": "1h"}},
        },
    )
    r = run("plan", "-f", str(cfg), "--now", NOW, "--format", "json")
    assert r.code == 0, r.err
    doc = r.json()
    assert "unreachable_service" in [d["type"] for d in doc["drift"]]
    assert doc["actions"] == []
    assert "s3cr3t-password" not in r.out + r.err
    d = run("drift", "-f", str(cfg), "--now", NOW)
    assert d.code == 2 and "s3cr3t-password" not in d.out + d.err


def test_missing_bucket_is_drift(tmp_path: Path, env: None, s3_bucket: Bucket) -> None:
    doc = s3_bucket_doc(s3_bucket)
    doc["bucket"] = "no-such-bucket-here"
    cfg = write_config(
        tmp_path / "c.yaml",
        {
            "services": {"analytics": {"dsn": "${TEST_DSN}"}},
            "buckets": {"primary": doc},
            "schedules": {"daily": {"service": "analytics", "bucket": "primary", "cron": "0 3 * * *"}},
        },
    )
    r = run("drift", "-f", str(cfg), "--now", NOW, "--format", "json")
    assert r.code == 2, r.err
    assert [d["type"] for d in r.json()["drift"]] == ["missing_bucket"]


def test_table_scope_backup_restores_and_drills_into_databases_it_creates(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    s3_server: Any,
    s3_bucket: Bucket,
    chdb_dsn: str,
    ch: clickhouse.ClickHouse,
) -> None:
    """RESTORE TABLE ... AS ... does not create its database (RESTORE DATABASE does): a
    table-scope backup restored under another name, and drilled into scratch databases, needs the
    reconciler to create them, with the engine a restored database gets."""
    db = small_source(monkeypatch, s3_server, chdb_dsn, ch, "tscope")
    ch.command(f"CREATE TABLE {db}.u (id UInt32) ENGINE = MergeTree ORDER BY id")
    ch.command(f"INSERT INTO {db}.u SELECT number FROM numbers(7)")
    validate = {"after_export": "manifest", "drill": {"service": "analytics", "every": "30d"}}
    path = Path(one_schedule_config(tmp_path / "c.yaml", s3_bucket, db, validate=validate))
    doc = yaml.safe_load(path.read_text())
    schedule = doc["schedules"]["daily"]
    del schedule["databases"]
    schedule["tables"] = [f"{db}.t", f"{db}.u"]
    target = f"{db}_asof"
    doc["restores"] = {
        "as-of": {
            "from": {"schedule": "daily", "backup": "latest"},
            "to": {"service": "analytics", "databases": {db: target}},
        }
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    cfg = str(path)
    assert target not in ch.databases()

    applied = run("apply", "-f", cfg, "--now", NOW, "--auto-approve")
    assert applied.code == 0, applied.out + applied.err
    assert "4 done, 0 failed" in applied.out, applied.out  # export, manifest, drill, restore

    assert {t: int(ch.query(f"SELECT count() FROM {target}.{t}")[0][0]) for t in ("t", "u")} == {"t": 100, "u": 7}
    engines = dict(ch.query(f"SELECT name, engine FROM system.databases WHERE name IN ('{db}', '{target}')"))
    assert engines == {db: "Atomic", target: "Atomic"}  # as the server's default_database_engine makes it
    sidecar = read_json(s3_server.client(), s3_bucket.bucket, f"clickhouse/analytics/daily/{SLOT}/reconciler.json")
    assert [(v["level"], v["result"]) for v in sidecar["validations"]] == [("manifest", "ok"), ("drill", "ok")]
    assert not [d for d in ch.databases() if d.startswith(SCRATCH)]  # the drill dropped what it created
    # converged: no broken backup, nothing to do
    again = run("plan", "-f", cfg, "--now", NOW, "--format", "json")
    assert again.code == 0 and again.json()["actions"] == [] and again.json()["drift"] == [], again.out

    # a RESTORE that fails (a table of the user's database has another definition) is said to have
    # failed, with ClickHouse's one line; the retry never drops the database, which was the user's
    mine = f"{db}_mine"
    ch.command(f"CREATE DATABASE {mine}")
    ch.command(f"CREATE TABLE {mine}.u (other String) ENGINE = MergeTree ORDER BY other")
    doc["restores"]["into-mine"] = {
        "from": {"schedule": "daily", "backup": "latest"},
        "to": {"service": "analytics", "databases": {db: mine}},
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    failed = run("apply", "-f", cfg, "--now", NOW, "--auto-approve")
    assert failed.code == 1, failed.out + failed.err
    (line,) = [x for x in failed.out.splitlines() if "restore/into-mine" in x and "failed" in x]
    assert "RESTORE_FAILED: Code: " in line and "Stack trace" not in failed.out, failed.out
    (action,) = run("plan", "-f", cfg, "--now", NOW, "--format", "json").json()["actions"]
    assert action["reason"].startswith("the attempt of run ") and " failed: RESTORE_FAILED: Code: " in action["reason"]
    ch.command(f"DROP TABLE {mine}.u SYNC")
    retried = run("apply", "-f", cfg, "--now", NOW, "--auto-approve")
    assert retried.code == 0, retried.out + retried.err
    assert int(ch.query(f"SELECT count() FROM {mine}.u")[0][0]) == 7 and mine in ch.databases()
