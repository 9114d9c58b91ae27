"""Proving backups restorable: manifest, checksums and drill on real backups ClickHouse (chdb)
wrote, and each corruption caught by the cheapest level that can catch it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler import clickhouse
from reconciler.apply.context import ApplyContext
from reconciler.apply.validate import run_validate
from reconciler.clickhouse.scratch import SCRATCH, scratch_prefix
from reconciler.config import load_config
from reconciler.connections import Connections
from reconciler.console import NullConsole
from reconciler.model import OutcomeStatus, ValidateAction, ValidationLevel
from reconciler.stores import open_store
from tests.support.clock import daily_slot, now_text
from tests.support.e2e import run, unique, write_config
from tests.support.fixtures_targets import Target, listing, read_json

pytestmark = pytest.mark.clock  # also run at shifted dates (scripts/test-shifted-dates.sh)

# relative to the real clock: validations are stamped with it, and this test lets them age
NOW = now_text()
SLOT = daily_slot()
FOLDER = f"clickhouse/analytics/daily/{SLOT}/"


def seed(ch: clickhouse.ClickHouse) -> str:
    db = unique("val")
    ch.command(f"CREATE DATABASE {db}")
    # incompressible strings: a data.bin above 1 MB, and a small table
    ch.command(f"CREATE TABLE {db}.big (id UInt64, s String) ENGINE = MergeTree ORDER BY id")
    ch.command(f"INSERT INTO {db}.big SELECT number, randomPrintableASCII(40) FROM numbers(60000)")
    ch.command(f"CREATE TABLE {db}.small (id UInt32) ENGINE = MergeTree ORDER BY id")
    ch.command(f"INSERT INTO {db}.small SELECT number FROM numbers(10)")
    return db


def config_doc(target: Target, db: str, validate: dict[str, Any]) -> dict[str, Any]:
    return {
        "services": {"analytics": {"dsn": "${TEST_DSN}"}, "scratch": {"dsn": "${TEST_DSN}"}},
        "buckets": {"primary": target.doc},
        "schedules": {
            "daily": {
                "service": "analytics",
                "bucket": "primary",
                "databases": [db],
                "cron": "0 3 * * *",
                "validate": validate,
            }
        },
    }


def test_clean_backups_pass_manifest_checksums_and_drill(
    target: Target, tmp_path: Path, ch: clickhouse.ClickHouse
) -> None:
    db = seed(ch)
    cfg = str(
        write_config(
            tmp_path / "c.yaml",
            config_doc(
                target,
                db,
                {"after_export": "manifest", "checksums_every": "7d", "drill": {"service": "scratch", "every": "30d"}},
            ),
        )
    )
    plan = run("plan", "-f", cfg, "--now", NOW, "--format", "json").json()
    assert [(a["id"], a.get("level")) for a in plan["actions"]] == [
        (f"export/analytics/daily/{SLOT}", None),
        (f"validate/analytics/daily/{SLOT}", "checksums"),  # checksums were never run: due now
        (f"validate/analytics/daily/{SLOT}/drill", "drill"),
    ]
    assert plan["actions"][2]["depends_on"] == [f"validate/analytics/daily/{SLOT}"]
    r = run("apply", "-f", cfg, "--now", NOW, "--auto-approve")
    assert r.code == 0, r.out + r.err
    sidecar = read_json(target.store, FOLDER + "reconciler.json")
    levels = [(v["level"], v["result"]) for v in sidecar["validations"]]
    assert levels == [("checksums", "ok"), ("drill", "ok")]
    checks = sidecar["validations"][0]
    assert checks["files"] >= 20 and checks["bytes"] > 1_000_000
    assert "rows as in the backup" in sidecar["validations"][1]["detail"]
    assert not [d for d in ch.databases() if d.startswith(SCRATCH)]  # the drill cleaned up
    status = run("status", "-f", cfg, "--format", "json", "--now", NOW).json()
    assert status["schedules"][0]["backups"][0]["strongest_passed"]["level"] == "drill"
    assert run("plan", "-f", cfg, "--now", NOW, "--detailed-exitcode").code == 0
    # over a week later checksums are due again (validations are stamped with the real clock, at
    # most a day and a half after NOW), and the new export is checksummed; a month later a drill
    week = run("plan", "-f", cfg, "--now", now_text(timedelta(days=9)), "--format", "json").json()
    assert [(a["type"], a.get("level")) for a in week["actions"]] == [("export", None), ("validate", "checksums")]
    month = run("plan", "-f", cfg, "--now", now_text(timedelta(days=32)), "--format", "json").json()
    assert ("validate", "drill") in [(a["type"], a.get("level")) for a in month["actions"]]


def _flip(data: bytes) -> bytes:
    i = len(data) // 2
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]


CORRUPTIONS = {
    # name: (how, the cheapest level that catches it, words in the error)
    "missing file": ("delete", "manifest", "is missing"),
    "different size": ("append", "manifest", "bytes, the manifest says"),
    "truncated": ("truncate", "manifest", "bytes, the manifest says"),
    "flipped byte": ("flip", "checksums", "does not match the manifest"),
    "manifest garbage": ("manifest", "manifest", "not valid XML"),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_each_corruption_is_caught_by_the_cheapest_level(
    case: str,
    tmp_path: Path,
    ch: clickhouse.ClickHouse,
    monkeypatch: pytest.MonkeyPatch,
    s3_server: Any,
    s3_bucket: Any,
    chdb_dsn: str,
) -> None:
    from tests.support.e2e import s3_bucket_doc

    monkeypatch.setenv("TEST_DSN", chdb_dsn)
    monkeypatch.setenv("TEST_S3_KEY", s3_server.access_key)
    monkeypatch.setenv("TEST_S3_SECRET", s3_server.secret_key)
    db = seed(ch)
    t = Target("s3", s3_bucket_doc(s3_bucket), open_store(s3_bucket))
    cfg = str(write_config(tmp_path / "c.yaml", config_doc(t, db, {"after_export": "manifest"})))
    assert run("apply", "-f", cfg, "--now", NOW, "--auto-approve").code == 0
    how, cheapest, words = CORRUPTIONS[case]
    files = listing(t.store, FOLDER)
    big = max((k for k in files if k.endswith(".bin")), key=lambda k: files[k])
    assert files[big] > 1_000_000
    victim = FOLDER + ".backup" if how == "manifest" else big
    data = t.store.read(victim)[0]  # type: ignore[index]
    if how == "delete":
        t.store.delete(victim)
    else:
        new = {"append": data + b"x", "truncate": data[:-100], "flip": _flip(data), "manifest": b"<config><contents>"}[
            how
        ]
        assert how != "flip" or len(new) == len(data)
        t.store.write(victim, new)

    config = load_config(cfg)
    ctx = ApplyContext(config, Connections(config), NullConsole(), "test-run")

    def validate(level: str) -> Any:
        action = ValidateAction(
            id=f"validate/analytics/daily/{SLOT}",
            reason="test",
            service="analytics",
            schedule="daily",
            bucket="primary",
            backup=SLOT,
            level=ValidationLevel(level),
            location="",
        )
        return run_validate(ctx, action)

    manifest = validate("manifest")
    if cheapest == "manifest":
        assert manifest.status == OutcomeStatus.FAILED and words in manifest.detail, manifest.detail
        if how != "manifest":
            assert big.rsplit("/", 1)[-1] in manifest.detail  # the file is named
    else:
        assert manifest.status == OutcomeStatus.DONE, manifest.detail
        checks = validate("checksums")
        assert checks.status == OutcomeStatus.FAILED and words in checks.detail, checks.detail
        assert "data.bin" in checks.detail or big.rsplit("/", 1)[-1] in checks.detail
    drift = run("drift", "-f", cfg, "--now", NOW, "--format", "json")
    assert drift.code == 2 and [d["type"] for d in drift.json()["drift"]] == ["broken_backup"]
    # a broken backup is no base for an incremental and not "the newest validated"
    sidecar = read_json(t.store, FOLDER + "reconciler.json")
    assert sidecar["validations"][-1]["result"] == "failed"


def test_failed_drill_and_crashed_drill_leave_no_scratch_database(
    target: Target, tmp_path: Path, ch: clickhouse.ClickHouse
) -> None:
    db = seed(ch)
    cfg = str(
        write_config(
            tmp_path / "c.yaml",
            config_doc(target, db, {"after_export": "manifest", "drill": {"service": "scratch", "every": "30d"}}),
        )
    )
    config = load_config(cfg)
    # a drill that crashed earlier left a scratch database behind
    leftover = scratch_prefix(config, "daily", "earlier-run") + db
    ch.command(f"CREATE DATABASE {leftover}")
    plan = run("plan", "-f", cfg, "--now", NOW, "--format", "json").json()
    assert any(leftover in w and "apply drops them" in w for w in plan["warnings"])
    # and this drill fails: one count.txt of the backup lies about its rows (same size)
    export_only = str(write_config(tmp_path / "e.yaml", config_doc(target, db, {"after_export": "manifest"})))
    assert run("apply", "-f", export_only, "--now", NOW, "--auto-approve").code == 0
    counts = [k for k in listing(target.store, FOLDER) if k.endswith("count.txt") and "/small/" in k]
    got = target.store.read(counts[0])
    assert got is not None and got[0] == b"10"
    target.store.write(counts[0], b"11")
    r = run("apply", "-f", cfg, "--now", NOW, "--auto-approve")
    assert r.code == 1
    assert "dropped scratch databases of drills that did not finish" in r.err and leftover in r.err
    sidecar = read_json(target.store, FOLDER + "reconciler.json")
    drill = [v for v in sidecar["validations"] if v["level"] == "drill"]
    assert drill and drill[-1]["result"] == "failed", sidecar["validations"]
    assert not [d for d in ch.databases() if d.startswith(SCRATCH)]
    # CHECK TABLE sees the part's count.txt disagree with its checksums.txt; were it to pass, the
    # row count (10) would disagree with the backup's claim (11)
    detail = drill[-1]["detail"]
    assert f"CHECK TABLE {db}.small failed" in detail or "rows after restore, the backup holds 11" in detail, detail
