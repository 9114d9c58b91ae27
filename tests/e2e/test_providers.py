"""One suite, three providers: the core end-to-end behaviour with the same assertions on S3
(moto's server) and Azure (Azurite), where ClickHouse (chdb) really writes; and on GCS, where
fake-gcs-server cannot take ClickHouse's S3-XML writes (checked on ClickHouse 26.9, chdb 4.4), with backups ClickHouse
really wrote loaded into it, then observed, validated, pruned and reported by the reconciler."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reconciler import clickhouse
from reconciler.model import Bucket
from reconciler.stores import open_store
from tests.support.e2e import run, s3_bucket_doc, unique, write_config
from tests.support.fixtures_targets import Target, listing, read_json

NOW = "2026-11-25T06:00:00Z"
SLOT = "20261125T030000Z"
FOLDER = f"clickhouse/analytics/daily/{SLOT}/"


def seed(ch: clickhouse.ClickHouse) -> tuple[str, dict[str, int]]:
    db = unique("prov")
    ch.command(f"CREATE DATABASE {db}")
    ch.command(f"CREATE TABLE {db}.orders (id UInt64, note String) ENGINE = MergeTree ORDER BY id")
    ch.command(f"INSERT INTO {db}.orders SELECT number, toString(number) FROM numbers(3000)")
    ch.command(f"CREATE TABLE {db}.items (id UInt32) ENGINE = MergeTree ORDER BY id")
    ch.command(f"INSERT INTO {db}.items SELECT number FROM numbers(77)")
    return db, counts(ch, db)


def counts(ch: clickhouse.ClickHouse, db: str) -> dict[str, int]:
    return {t: int(ch.query(f"SELECT count() FROM {db}.{t}")[0][0]) for t in ("orders", "items")}


def test_core_round_trip(target: Target, tmp_path: Path, ch: clickhouse.ClickHouse) -> None:
    db, rows = seed(ch)
    cfg = str(
        write_config(
            tmp_path / "c.yaml",
            {
                "services": {"analytics": {"dsn": "${TEST_DSN}"}, "staging": {"dsn": "${TEST_DSN}"}},
                "buckets": {"primary": target.doc},
                "schedules": {
                    "daily": {
                        "service": "analytics",
                        "bucket": "primary",
                        "databases": [db],
                        "cron": "0 3 * * *",
                        "retention": {"keep_last": 1},
                    }
                },
                "restores": {
                    "back": {"from": {"schedule": "daily"}, "to": {"service": "staging", "databases": {db: db + "_r"}}}
                },
            },
        )
    )
    plan = run("plan", "-f", cfg, "--now", NOW, "--format", "json")
    assert plan.code == 0, plan.err
    assert [a["id"] for a in plan.json()["actions"]] == [
        f"export/analytics/daily/{SLOT}",
        f"validate/analytics/daily/{SLOT}",
        "restore/back",
    ]
    applied = run("apply", "-f", cfg, "--now", NOW, "--auto-approve")
    assert applied.code == 0, applied.out + applied.err
    files = listing(target.store, FOLDER)
    assert FOLDER + ".backup" in files and FOLDER + "reconciler.json" in files
    sidecar = read_json(target.store, FOLDER + "reconciler.json")
    assert (sidecar["state"], sidecar["validations"][0]["result"]) == ("complete", "ok")
    assert counts(ch, db + "_r") == rows
    assert run("plan", "-f", cfg, "--now", NOW, "--detailed-exitcode").code == 0
    assert run("drift", "-f", cfg, "--now", NOW).code == 0

    # the next day: a new backup. keep_last=1 would drop the first one, but until the new one is
    # validated the first is the newest validated backup (min_valid floor): pruned one apply later
    nxt = run("apply", "-f", cfg, "--now", "2026-11-26T06:00:00Z", "--auto-approve")
    assert nxt.code == 0, nxt.out + nxt.err
    assert "Pruned" not in nxt.out
    plan2 = run("plan", "-f", cfg, "--now", "2026-11-26T06:00:00Z", "--format", "json").json()
    assert [(a["type"], a["backup"]) for a in plan2["actions"]] == [("prune", SLOT)]
    assert plan2["actions"][0]["reason"].startswith("not kept: outside keep_last=1")
    third = run("apply", "-f", cfg, "--now", "2026-11-26T06:00:00Z", "--auto-approve")
    assert third.code == 0 and "Pruned 1 backup(s)" in third.out, third.out
    folders = {k.split("/")[3] for k in listing(target.store, "clickhouse/analytics/daily/")}
    assert folders == {"20261126T030000Z"}
    status = run("status", "-f", cfg, "--format", "json", "--now", "2026-11-26T06:00:00Z").json()
    assert status["schedules"][0]["newest_complete"] == "20261126T030000Z"
    assert status["runs"]["primary"][0]["status"] == "ok"


def test_clickhouse_refusing_the_destination_is_reported_with_its_code_and_no_secret(
    target: Target, tmp_path: Path, ch: clickhouse.ClickHouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, _ = seed(ch)
    cfg = str(
        write_config(
            tmp_path / "c.yaml",
            {
                "services": {"analytics": {"dsn": "${TEST_DSN}"}},
                "buckets": {"primary": target.doc},
                "schedules": {
                    "daily": {
                        "service": "analytics",
                        "bucket": "primary",
                        "databases": [db, "no_such_db"],
                        "cron": "0 3 * * *",
                    }
                },
            },
        )
    )
    r = run("apply", "-f", cfg, "--now", NOW, "--auto-approve")
    assert r.code == 1
    assert "Code: 81" in r.out + r.err and "UNKNOWN_DATABASE" in r.out + r.err
    secret = {"s3": "TEST_S3_SECRET", "azure": "TEST_AZ_KEY"}[target.provider]
    import os

    assert os.environ[secret] not in r.out + r.err
    sidecar = read_json(target.store, FOLDER + "reconciler.json")
    assert sidecar["state"] == "failed" and "UNKNOWN_DATABASE" in sidecar["operation"]["error"]
    drift = run("drift", "-f", cfg, "--now", NOW, "--format", "json")
    assert drift.code == 2 and "failed_backup" in [d["type"] for d in drift.json()["drift"]]


def test_wrong_azure_key_names_the_bucket_provider_and_operation(
    tmp_path: Path, azure_bucket: Bucket, monkeypatch: pytest.MonkeyPatch, chdb_dsn: str
) -> None:
    import base64

    wrong = base64.b64encode(b"not the key at all, not the key at all!!").decode()
    monkeypatch.setenv("TEST_DSN", chdb_dsn)
    monkeypatch.setenv("TEST_AZ_ACCOUNT", azure_bucket.credentials.account_name or "")
    monkeypatch.setenv("TEST_AZ_KEY", wrong)
    cfg = str(
        write_config(
            tmp_path / "c.yaml",
            {
                "services": {"analytics": {"dsn": "${TEST_DSN}"}},
                "buckets": {
                    "primary": {
                        "provider": "azure",
                        "bucket": azure_bucket.bucket,
                        "endpoint": azure_bucket.endpoint,
                        "credentials": {"account_name": "${TEST_AZ_ACCOUNT}", "account_key": "${TEST_AZ_KEY}"},
                    }
                },
                "schedules": {"daily": {"service": "analytics", "bucket": "primary", "cron": "0 3 * * *"}},
            },
        )
    )
    plan = run("plan", "-f", cfg, "--now", NOW, "--format", "json")
    assert plan.code == 0, plan.err
    (d,) = [d for d in plan.json()["drift"] if d["type"] == "missing_bucket"]
    assert azure_bucket.bucket in d["detail"] and wrong not in plan.out
    applied = run("apply", "-f", cfg, "--now", NOW, "--auto-approve")
    assert applied.code == 1
    line = applied.err.strip().splitlines()[-1]
    assert line.startswith("error: ") and azure_bucket.bucket in line and "azure" in line.lower()
    assert wrong not in applied.err


def test_gcs_observe_validate_prune_status_on_backups_clickhouse_wrote(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    chdb_dsn: str,
    ch: clickhouse.ClickHouse,
    s3_server: Any,
    s3_bucket: Bucket,
    gcs_bucket: Bucket,
) -> None:
    monkeypatch.setenv("TEST_DSN", chdb_dsn)
    monkeypatch.setenv("TEST_S3_KEY", s3_server.access_key)
    monkeypatch.setenv("TEST_S3_SECRET", s3_server.secret_key)
    monkeypatch.setenv("TEST_HMAC_KEY", "GOOGTESTKEY")
    monkeypatch.setenv("TEST_HMAC_SECRET", "gcs-hmac-secret-value")
    db, _ = seed(ch)
    schedule = {
        "service": "analytics",
        "bucket": "primary",
        "databases": [db],
        "cron": "0 3 * * *",
        "retention": {"keep_last": 1},
    }
    # ClickHouse really writes two days of backups (to the S3 server)...
    s3cfg = str(
        write_config(
            tmp_path / "s3.yaml",
            {
                "services": {"analytics": {"dsn": "${TEST_DSN}"}},
                "buckets": {"primary": s3_bucket_doc(s3_bucket)},
                "schedules": {"daily": {**schedule, "retention": {}}},
            },
        )
    )
    for now in (NOW, "2026-11-26T06:00:00Z"):
        assert run("apply", "-f", s3cfg, "--now", now, "--auto-approve").code == 0
    # ...and every object of them is loaded into fake-gcs-server under the same keys
    s3store, gcs = open_store(s3_bucket), open_store(gcs_bucket)
    for key, _ in listing(s3store, "clickhouse/analytics/").items():
        got = s3store.read(key)
        assert got is not None
        gcs.write(key, got[0])
    gcfg = str(
        write_config(
            tmp_path / "gcs.yaml",
            {
                "services": {"analytics": {"dsn": "${TEST_DSN}"}},
                "buckets": {
                    "primary": {
                        "provider": "gcs",
                        "bucket": gcs_bucket.bucket,
                        "prefix": "clickhouse",
                        "gcs_json_endpoint": gcs_bucket.gcs_json_endpoint,
                        "credentials": {"hmac_key": "${TEST_HMAC_KEY}", "hmac_secret": "${TEST_HMAC_SECRET}"},
                    }
                },
                "schedules": {"daily": schedule},
            },
        )
    )
    later = "2026-11-26T06:00:00Z"
    status = run("status", "-f", gcfg, "--format", "json", "--now", later)
    assert status.code == 0, status.err
    entry = status.json()["schedules"][0]
    assert [b["name"] for b in entry["backups"]] == [SLOT, "20261126T030000Z"]
    assert {b["state"] for b in entry["backups"]} == {"complete"}
    assert entry["location"] == f"gs://{gcs_bucket.bucket}/clickhouse/analytics/daily/"

    # retention through the GCS store: keep_last=1 prunes the older backup
    plan = run("plan", "-f", gcfg, "--now", later, "--format", "json")
    assert plan.code == 0, plan.err
    assert [a["id"] for a in plan.json()["actions"]] == [f"prune/analytics/daily/{SLOT}"]
    pruned = run("apply", "-f", gcfg, "--now", later, "--auto-approve")
    assert pruned.code == 0 and "Pruned 1 backup(s)" in pruned.out, pruned.out + pruned.err
    assert listing(gcs, f"clickhouse/analytics/daily/{SLOT}/") == {}

    # a data file goes missing from the newest backup and its validation record is dropped
    newest = "clickhouse/analytics/daily/20261126T030000Z/"
    victim = next(k for k in listing(gcs, newest) if k.endswith("data.bin"))
    gcs.delete(victim)
    sc = read_json(gcs, newest + "reconciler.json")
    sc["validations"] = []
    gcs.write(newest + "reconciler.json", json.dumps(sc).encode())
    # both changes are inside a settled backup: seen by a full refresh (a fast one trusts the index)
    plan = run("plan", "-f", gcfg, "--now", later, "--format", "json", "--refresh", "full")
    assert [a["id"] for a in plan.json()["actions"]] == ["validate/analytics/daily/20261126T030000Z"]
    applied = run("apply", "-f", gcfg, "--now", later, "--auto-approve", "--refresh", "full")
    assert applied.code == 1  # the validation caught the missing file
    assert "is missing" in applied.out and victim.rsplit("/", 1)[-1] in applied.out
    drift = run("drift", "-f", gcfg, "--now", later, "--format", "json")
    assert drift.code == 2 and [d["type"] for d in drift.json()["drift"]] == ["broken_backup"]
    assert "gcs-hmac-secret-value" not in applied.out + applied.err + drift.out + pruned.out
    assert listing(gcs, "clickhouse/.reconciler/lock") == {}
