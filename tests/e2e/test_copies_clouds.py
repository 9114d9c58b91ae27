"""Copies between clouds, end to end through the CLI, with the real engine (chdb) and real
emulators: ClickHouse backs up into Azurite; the backup is copied Azure → S3 (moto, streamed),
Azure → GCS (fake-gcs-server, streamed) and Azure → Azure (another container of the same
account: server-side copy from URL), each verified at checksums level, and restored from the S3
copy. GCS as a copy's source, where ClickHouse is not involved (it cannot write into
fake-gcs-server): the GCS copy is the source of a schedule whose copy goes GCS → GCS
server-side (objects.rewrite), verified afterwards by reading it back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler import clickhouse
from reconciler.model import Bucket
from reconciler.stores import open_store
from tests.e2e.test_copies import DAY1, SLOTS, checksum_rows, seed
from tests.support.e2e import run, s3_bucket_doc, unique, write_config
from tests.support.fixtures_azure import new_container
from tests.support.fixtures_gcs import gcs_bucket_on
from tests.support.servers_azure import AzuriteServer

FOLDER = f"analytics/daily/{SLOTS[0]}/"


def listing(bucket: Bucket, prefix: str) -> dict[str, int]:
    store = open_store(bucket)
    return {o.key[len(prefix) :]: o.size for o in store.list(prefix)}


def sidecar(bucket: Bucket, folder: str) -> dict[str, Any]:
    got = open_store(bucket).read(folder + "reconciler.json")
    assert got is not None, folder
    import json

    return dict(json.loads(got[0]))


def test_azure_to_s3_gcs_and_azure_then_gcs_as_a_source(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    chdb_dsn: str,
    ch: clickhouse.ClickHouse,
    s3_server: Any,
    s3_bucket: Bucket,
    azurite_server: AzuriteServer,
    azure_bucket: Bucket,
    gcs_server: Any,
    gcs_bucket: Bucket,
) -> None:
    monkeypatch.setenv("TEST_DSN", chdb_dsn)
    monkeypatch.setenv("TEST_S3_KEY", s3_server.access_key)
    monkeypatch.setenv("TEST_S3_SECRET", s3_server.secret_key)
    monkeypatch.setenv("TEST_AZ_KEY", azurite_server.account_key)
    monkeypatch.setenv("TEST_HMAC_KEY", "GOOGTESTKEY")
    monkeypatch.setenv("TEST_HMAC_SECRET", "gcs-hmac-secret-value")
    db = unique("shop")
    seed(ch, db)

    def azure_doc(container: str) -> dict[str, Any]:
        return {
            "provider": "azure",
            "bucket": container,
            "prefix": "clickhouse",
            "endpoint": azure_bucket.endpoint,
            "credentials": {"account_name": azurite_server.account_name, "account_key": "${TEST_AZ_KEY}"},
        }

    def gcs_doc(bucket: Bucket) -> dict[str, Any]:
        return {
            "provider": "gcs",
            "bucket": bucket.bucket,
            "prefix": "clickhouse",
            "gcs_json_endpoint": bucket.gcs_json_endpoint,
            "credentials": {"hmac_key": "${TEST_HMAC_KEY}", "hmac_secret": "${TEST_HMAC_SECRET}"},
        }

    az2 = new_container(azurite_server)
    copies = [{"bucket": b, "validate": "checksums"} for b in ("dr", "gcs", "az2")]
    schedule: dict[str, Any] = {
        "service": "analytics",
        "bucket": "primary",
        "databases": [db],
        "cron": "0 3 * * *",
        "copies": copies,
    }
    doc: dict[str, Any] = {
        "services": {"analytics": {"dsn": "${TEST_DSN}"}, "staging": {"dsn": "${TEST_DSN}"}},
        "buckets": {
            "primary": azure_doc(azure_bucket.bucket),
            "dr": s3_bucket_doc(s3_bucket),
            "gcs": gcs_doc(gcs_bucket),
            "az2": azure_doc(az2),
        },
        "schedules": {"daily": schedule},
    }
    cfg = str(write_config(tmp_path / "azure.yaml", doc))
    plan = run("plan", "-f", cfg, "--now", DAY1, "--format", "json")
    assert plan.code == 0, plan.err
    methods = {a["bucket"]: a["method"] for a in plan.json()["actions"] if a["type"] == "copy"}
    assert methods == {"dr": "streamed", "gcs": "streamed", "az2": "server-side"}
    applied = run("apply", "-f", cfg, "--now", DAY1, "--auto-approve")
    assert applied.code == 0, applied.out + applied.err

    source_files = listing(azure_bucket, "clickhouse/" + FOLDER)
    az2_bucket = Bucket(
        "az2", azure_bucket.provider, az2, "clickhouse", None, azure_bucket.endpoint, azure_bucket.credentials
    )
    for name, bucket in (("dr", s3_bucket), ("gcs", gcs_bucket), ("az2", az2_bucket)):
        sc = sidecar(bucket, "clickhouse/" + FOLDER)
        assert sc["state"] == "complete" and sc["copy_of"]["bucket"] == "primary", name
        assert sc["copy_of"]["method"] == methods[name], name
        assert [(v["level"], v["result"]) for v in sc["validations"]] == [("checksums", "ok")], name
        assert listing(bucket, "clickhouse/" + FOLDER).keys() == source_files.keys(), name
    assert run("plan", "-f", cfg, "--now", DAY1, "--detailed-exitcode").code == 0

    # Azure → S3 is a way out of Azure: the S3 copy restores every row
    doc["restores"] = {
        "from-dr": {
            "from": {"schedule": "daily", "backup": "latest", "bucket": "dr"},
            "to": {"service": "staging", "databases": {db: f"{db}_from_s3"}},
        }
    }
    cfg = str(write_config(tmp_path / "restore.yaml", doc))
    restored = run("apply", "-f", cfg, "--now", DAY1, "--target", "from-dr", "--auto-approve")
    assert restored.code == 0, restored.out + restored.err
    assert checksum_rows(ch, f"{db}_from_s3") == checksum_rows(ch, db)

    # GCS as a copy's source (no ClickHouse involved): the GCS copy is the newest complete,
    # validated backup of a schedule there, copied GCS → GCS server-side and read back
    other = f"t-{unique('g').split('_')[1]}"
    gcs_server.create_bucket(other)
    on_gcs = {
        "services": {"analytics": {"dsn": "${TEST_DSN}"}},
        "buckets": {"gcs": gcs_doc(gcs_bucket), "gcs2": gcs_doc(gcs_bucket_on(gcs_server, other))},
        "schedules": {
            "daily": {**schedule, "bucket": "gcs", "copies": [{"bucket": "gcs2", "validate": "checksums"}]},
        },
    }
    gcfg = str(write_config(tmp_path / "gcs.yaml", on_gcs))
    plan = run("plan", "-f", gcfg, "--now", DAY1, "--format", "json")
    assert plan.code == 0, plan.err
    [copy] = plan.json()["actions"]  # no export: the slot has its backup (the copy)
    assert (copy["type"], copy["bucket"], copy["method"]) == ("copy", "gcs2", "server-side")
    applied = run("apply", "-f", gcfg, "--now", DAY1, "--auto-approve")
    assert applied.code == 0, applied.out + applied.err
    sc = sidecar(gcs_bucket_on(gcs_server, other), "clickhouse/" + FOLDER)
    assert sc["copy_of"]["bucket"] == "gcs" and sc["copy_of"]["method"] == "server-side"
    [verified] = sc["validations"]
    assert verified["level"] == "checksums" and verified["result"] == "ok"
    assert "every checksum matches" in verified["detail"]
    out = applied.out + applied.err + plan.out + restored.out + restored.err
    assert "gcs-hmac-secret-value" not in out and azurite_server.account_key not in out
