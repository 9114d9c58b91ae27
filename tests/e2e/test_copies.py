"""Copies end to end (3-2-1): the real engine (chdb), moto's S3 server (two buckets: the
server-side path) and Azurite (the streamed path between providers), driven through the CLI.

- a chain of three (full, incremental, incremental) is copied bases first, verified at checksums
  level, and restores from the copy with every row after the source bucket is emptied;
- S3 → Azure is streamed and verified as it passes; a flipped byte in a source file fails the
  copy, which never becomes complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler import clickhouse
from reconciler.model import Bucket
from tests.support.e2e import keys, read_json, run, s3_bucket_doc, unique, write_config

DAY1, DAY2, DAY3 = "2026-11-23T06:00:00Z", "2026-11-24T06:00:00Z", "2026-11-25T06:00:00Z"
SLOTS = ("20261123T030000Z", "20261124T030000Z", "20261125T030000Z")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, s3_server: Any, chdb_dsn: str) -> None:
    monkeypatch.setenv("TEST_S3_KEY", s3_server.access_key)
    monkeypatch.setenv("TEST_S3_SECRET", s3_server.secret_key)
    monkeypatch.setenv("TEST_DSN", chdb_dsn)


def seed(ch: clickhouse.ClickHouse, db: str) -> None:
    ch.command(f"CREATE DATABASE {db}")
    ch.command(f"CREATE TABLE {db}.orders (id UInt64, amount Float64, note String) ENGINE = MergeTree ORDER BY id")
    ch.command(f"INSERT INTO {db}.orders SELECT number, number / 7, toString(cityHash64(number)) FROM numbers(3000)")


def count(ch: clickhouse.ClickHouse, db: str) -> int:
    return int(ch.query(f"SELECT count(), sum(id) FROM {db}.orders")[0][0])


def checksum_rows(ch: clickhouse.ClickHouse, db: str) -> tuple[int, int]:
    row = ch.query(f"SELECT count(), sum(cityHash64(id, amount, note)) FROM {db}.orders")[0]
    return int(row[0]), int(row[1])


def test_chain_copied_and_restored_from_the_copy_with_the_source_emptied(
    tmp_path: Path, env: None, s3_server: Any, s3_bucket: Bucket, ch: clickhouse.ClickHouse
) -> None:
    s3 = s3_server.client()
    dr = f"t-{unique('dr').split('_')[1]}"
    s3_server.create_bucket(dr)
    db = unique("shop")
    seed(ch, db)
    buckets = {"primary": s3_bucket_doc(s3_bucket), "dr": {**s3_bucket_doc(s3_bucket), "bucket": dr}}
    schedule = {
        "service": "analytics",
        "bucket": "primary",
        "databases": [db],
        "cron": "0 3 * * *",
        "incremental": {"full_every": 3},
        "copies": [{"bucket": "dr", "validate": "checksums"}],
    }
    doc: dict[str, Any] = {
        "services": {"analytics": {"dsn": "${TEST_DSN}"}, "staging": {"dsn": "${TEST_DSN}"}},
        "buckets": buckets,
        "schedules": {"daily": schedule},
    }
    cfg = str(write_config(tmp_path / "config.yaml", doc))

    plan = run("plan", "-f", cfg, "--now", DAY1, "--format", "json")
    assert plan.code == 0, plan.err
    actions = {a["id"]: a for a in plan.json()["actions"]}
    copy_id = f"copy/analytics/daily/{SLOTS[0]}@dr"
    assert actions[copy_id]["method"] == "server-side" and actions[copy_id]["level"] == "checksums"
    assert actions[copy_id]["depends_on"] == [
        f"export/analytics/daily/{SLOTS[0]}",
        f"validate/analytics/daily/{SLOTS[0]}",
    ]
    for i, now in enumerate((DAY1, DAY2, DAY3)):
        if i:
            ch.command(
                f"INSERT INTO {db}.orders SELECT number, number / 3, 'day{i}' FROM numbers({3000 + i * 500}, 500)"
            )
        applied = run("apply", "-f", cfg, "--now", now, "--auto-approve")
        assert applied.code == 0, applied.out + applied.err
    source_rows = checksum_rows(ch, db)

    # the copies: complete, verified at checksums level, naming their source; C's manifest names B's copy
    for slot, kind in zip(SLOTS, ("full", "incremental", "incremental"), strict=True):
        folder = f"clickhouse/analytics/daily/{slot}/"
        sc = read_json(s3, dr, folder + "reconciler.json")
        assert sc["state"] == "complete" and sc["kind"] == kind
        assert sc["copy_of"]["bucket"] == "primary" and sc["copy_of"]["location"].endswith(folder)
        assert sc["copy_of"]["manifest_digest"].startswith("sha256:") and sc["copy_of"]["method"] == "server-side"
        assert [(v["level"], v["result"]) for v in sc["validations"]] == [("checksums", "ok")]
        assert set(keys(s3, dr, folder)) == set(keys(s3, s3_bucket.bucket, folder))
    manifest = s3.get_object(Bucket=dr, Key=f"clickhouse/analytics/daily/{SLOTS[2]}/.backup")["Body"].read()
    assert f"/{dr}/clickhouse/analytics/daily/{SLOTS[1]}".encode() in manifest
    assert s3_bucket.bucket.encode() not in manifest
    assert s3_server.secret_key.encode() not in manifest

    # status shows per backup how many copies are valid
    status = run("status", "-f", cfg, "--format", "json")
    assert status.code == 0, status.err
    backups = status.json()["schedules"][0]["backups"]
    assert [(b["copies"], b["valid_copies"]) for b in backups] == [({"dr": "ok"}, 1)] * 3
    text = run("status", "-f", cfg).out
    assert text.count("; copies 1/1 valid (dr ok)") == 3, text

    # nothing left to do; the source emptied; restore the newest from the copy
    assert run("plan", "-f", cfg, "--now", DAY3, "--detailed-exitcode").code == 0
    for k in keys(s3, s3_bucket.bucket):
        s3.delete_object(Bucket=s3_bucket.bucket, Key=k)
    target = f"{db}_from_dr"
    doc["restores"] = {
        "from-dr": {
            "from": {"schedule": "daily", "backup": "latest", "bucket": "dr"},
            "to": {"service": "staging", "databases": {db: target}},
        }
    }
    cfg2 = str(write_config(tmp_path / "config2.yaml", doc))
    plan = run("plan", "-f", cfg2, "--now", DAY3, "--target", "from-dr", "--format", "json")
    assert plan.code == 0, plan.err
    [restore] = plan.json()["actions"]
    assert restore["bucket"] == "dr" and restore["backup"] == SLOTS[2]
    applied = run("apply", "-f", cfg2, "--now", DAY3, "--target", "from-dr", "--auto-approve")
    assert applied.code == 0, applied.out + applied.err
    assert checksum_rows(ch, target) == source_rows


def test_streamed_copy_to_azure_verifies_and_refuses_a_flipped_byte(
    tmp_path: Path, env: None, s3_server: Any, s3_bucket: Bucket, azure_bucket: Bucket, ch: clickhouse.ClickHouse
) -> None:
    s3 = s3_server.client()
    db = unique("shop")
    seed(ch, db)
    azure_doc = {
        "provider": "azure",
        "bucket": azure_bucket.bucket,
        "prefix": "copies",
        "endpoint": azure_bucket.endpoint,
        "credentials": {"account_name": azure_bucket.credentials.account_name, "account_key": "${TEST_AZ_KEY}"},
    }
    import os

    os.environ["TEST_AZ_KEY"] = azure_bucket.credentials.account_key or ""
    schedule: dict[str, Any] = {"service": "analytics", "bucket": "primary", "databases": [db], "cron": "0 3 * * *"}
    doc: dict[str, Any] = {
        "services": {"analytics": {"dsn": "${TEST_DSN}"}},
        "buckets": {"primary": s3_bucket_doc(s3_bucket), "az": azure_doc},
        "schedules": {"daily": schedule},
    }
    cfg = str(write_config(tmp_path / "plain.yaml", doc))
    assert run("apply", "-f", cfg, "--now", DAY1, "--auto-approve").code == 0  # one backup, no copies yet

    # a flipped byte in the largest data file of the source (same size: the manifest level passes)
    folder = f"clickhouse/analytics/daily/{SLOTS[0]}/"
    data = {k: n for k, n in keys(s3, s3_bucket.bucket, folder + "data/").items()}
    victim = max(data, key=lambda k: data[k])
    body = bytearray(s3.get_object(Bucket=s3_bucket.bucket, Key=victim)["Body"].read())
    original = bytes(body)
    body[len(body) // 2] ^= 0x01
    s3.put_object(Bucket=s3_bucket.bucket, Key=victim, Body=bytes(body))

    schedule["copies"] = [{"bucket": "az", "validate": "checksums"}]
    cfg = str(write_config(tmp_path / "copies.yaml", doc))
    plan = run("plan", "-f", cfg, "--now", DAY1, "--format", "json")
    [copy] = plan.json()["actions"]
    assert copy["type"] == "copy" and copy["method"] == "streamed"
    applied = run("apply", "-f", cfg, "--now", DAY1, "--auto-approve")
    assert applied.code == 1, applied.out
    assert "does not match the manifest" in applied.out + applied.err
    container = azurite_container(azure_bucket)
    names = {b.name for b in container.list_blobs(name_starts_with=f"copies/analytics/daily/{SLOTS[0]}/")}
    assert f"copies/analytics/daily/{SLOTS[0]}/.backup" not in names  # never complete
    assert f"copies/analytics/daily/{SLOTS[0]}/reconciler.json" in names

    # the source repaired: the next apply redoes the copy, streamed and verified
    s3.put_object(Bucket=s3_bucket.bucket, Key=victim, Body=original)
    drift = run("drift", "-f", cfg, "--now", DAY2, "--format", "json")
    assert any(d["type"] == "missing_copy" for d in drift.json()["drift"]), drift.out
    applied = run("apply", "-f", cfg, "--now", DAY1, "--auto-approve")
    assert applied.code == 0, applied.out + applied.err
    names = {b.name for b in container.list_blobs(name_starts_with=f"copies/analytics/daily/{SLOTS[0]}/")}
    assert f"copies/analytics/daily/{SLOTS[0]}/.backup" in names
    assert names - {f"copies/analytics/daily/{SLOTS[0]}/reconciler.json"} == {
        k.replace("clickhouse/", "copies/", 1) for k in keys(s3, s3_bucket.bucket, folder) if "reconciler.json" not in k
    }
    assert run("plan", "-f", cfg, "--now", DAY1, "--detailed-exitcode").code == 0


def azurite_container(bucket: Bucket) -> Any:
    from azure.storage.blob import BlobServiceClient

    creds = bucket.credentials
    service = BlobServiceClient(
        bucket.endpoint or "", credential={"account_name": creds.account_name, "account_key": creds.account_key}
    )
    return service.get_container_client(bucket.bucket)


def test_due_checksums_and_drill_of_the_newest_copy_run_in_the_copy_bucket(
    tmp_path: Path, env: None, s3_server: Any, s3_bucket: Bucket, ch: clickhouse.ClickHouse
) -> None:
    """checksums_every and drill.every cover the newest copy too: a chain (full, incremental) is
    copied at manifest level, and the newest copy gets a checksums validation and a restore drill
    of its own, recorded in its sidecar; the drill restores from the copy bucket, the base read
    from the base's copy."""
    s3 = s3_server.client()
    dr = f"t-{unique('dr').split('_')[1]}"
    s3_server.create_bucket(dr)
    db = unique("shop")
    seed(ch, db)
    schedule: dict[str, Any] = {
        "service": "analytics",
        "bucket": "primary",
        "databases": [db],
        "cron": "0 3 * * *",
        "incremental": {"full_every": 2},
    }
    doc: dict[str, Any] = {
        "services": {"analytics": {"dsn": "${TEST_DSN}"}, "staging": {"dsn": "${TEST_DSN}"}},
        "buckets": {"primary": s3_bucket_doc(s3_bucket), "dr": {**s3_bucket_doc(s3_bucket), "bucket": dr}},
        "schedules": {"daily": schedule},
    }
    cfg = str(write_config(tmp_path / "plain.yaml", doc))
    assert run("apply", "-f", cfg, "--now", DAY1, "--auto-approve").code == 0
    ch.command(f"INSERT INTO {db}.orders SELECT number, 1, 'day2' FROM numbers(5000, 700)")
    assert run("apply", "-f", cfg, "--now", DAY2, "--auto-approve").code == 0

    # copies declared, checksums every day, a drill every day: no copy has passed either yet
    schedule["validate"] = {"checksums_every": "1d", "drill": {"service": "staging", "every": "1d"}}
    schedule["copies"] = [{"bucket": "dr", "validate": "manifest"}]
    cfg = str(write_config(tmp_path / "copies.yaml", doc))
    plan = run("plan", "-f", cfg, "--now", DAY2, "--format", "json")
    assert plan.code == 0, plan.err
    actions = {a["id"]: a for a in plan.json()["actions"]}
    copy_id, checks_id = f"copy/analytics/daily/{SLOTS[1]}@dr", f"validate/analytics/daily/{SLOTS[1]}@dr"
    assert actions[checks_id]["level"] == "checksums" and actions[checks_id]["depends_on"] == [copy_id]
    assert actions[checks_id + "/drill"]["bucket"] == "dr"
    assert actions[checks_id + "/drill"]["depends_on"] == [checks_id]
    assert f"validate/analytics/daily/{SLOTS[0]}@dr" not in actions  # the newest copy only
    applied = run("apply", "-f", cfg, "--now", DAY2, "--auto-approve")
    assert applied.code == 0, applied.out + applied.err

    sc = read_json(s3, dr, f"clickhouse/analytics/daily/{SLOTS[1]}/reconciler.json")
    assert sc["kind"] == "incremental" and sc["copy_of"]["bucket"] == "primary"
    levels = [(v["level"], v["result"]) for v in sc["validations"]]
    assert levels == [("manifest", "ok"), ("checksums", "ok"), ("drill", "ok")], sc["validations"]
    assert "CHECK TABLE passed" in sc["validations"][2]["detail"]
    base = read_json(s3, dr, f"clickhouse/analytics/daily/{SLOTS[0]}/reconciler.json")
    assert [v["level"] for v in base["validations"]] == ["manifest"]

    # the copy's drill restored from the copy bucket (the source's drill from the source)
    drills = ch.query(
        "SELECT name, status FROM system.backups WHERE startsWith(id, 'reconciler-drill-') "
        f"AND position(name, '{SLOTS[1]}') > 0"
    )
    assert sorted((str(n).split("/")[3], st) for n, st in drills) == sorted(
        [(dr, "RESTORED"), (s3_bucket.bucket, "RESTORED")]
    ), drills
    assert run("plan", "-f", cfg, "--now", DAY2, "--detailed-exitcode").code == 0

    # a data file of the base's copy deleted behind the reconciler's back: a full refresh sees the
    # copy broken (broken_backup of the copy bucket) and apply --refresh full copies it again
    folder = f"clickhouse/analytics/daily/{SLOTS[0]}/"
    victim = max((k for k in keys(s3, dr, folder + "data/")), key=len)
    s3.delete_object(Bucket=dr, Key=victim)
    drift = run("drift", "-f", cfg, "--now", DAY2, "--format", "json")
    assert drift.code == 2, drift.out + drift.err
    [broken] = [d for d in drift.json()["drift"] if d["type"] == "broken_backup"]
    assert (broken["bucket"], broken["backup"]) == ("dr", SLOTS[0]) and "this plan copies it again" in broken["detail"]
    applied = run("apply", "-f", cfg, "--now", DAY2, "--auto-approve", "--refresh", "full")
    assert applied.code == 0, applied.out + applied.err
    assert victim in keys(s3, dr, folder)
    assert run("drift", "-f", cfg, "--now", DAY2).code == 0
