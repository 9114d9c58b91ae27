"""Before prunes run, apply re-checks in the bucket the backups retention keeps: a fast refresh
trusts the index for settled folders, so a manifest deleted behind the reconciler's back must not
let a good backup be pruned. And a full refresh that sees a base of kept incrementals deleted
keeps what is left of it, and reports the incrementals broken."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler import clickhouse
from reconciler.model import Bucket
from tests.support.e2e import keys, run, s3_bucket_doc, small_source, write_config


@pytest.fixture
def make_cfg(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    s3_server: Any,
    s3_bucket: Bucket,
    chdb_dsn: str,
    ch: clickhouse.ClickHouse,
) -> Callable[..., str]:
    db = small_source(monkeypatch, s3_server, chdb_dsn, ch, "recheck")

    def make(**schedule: Any) -> str:
        doc = {
            "services": {"analytics": {"dsn": "${TEST_DSN}"}},
            "buckets": {"primary": s3_bucket_doc(s3_bucket)},
            "schedules": {"hourly": {"service": "analytics", "bucket": "primary", "databases": [db], **schedule}},
        }
        return str(write_config(tmp_path / "c.yaml", doc))

    return make


@pytest.fixture
def cfg(make_cfg: Callable[..., str]) -> str:
    return make_cfg(every="1h", retention={"keep_last": 2})


PREFIX = "clickhouse/analytics/hourly/"


def test_a_deleted_manifest_of_a_kept_backup_stops_the_prunes(cfg: str, s3_server: Any, s3_bucket: Bucket) -> None:
    s3 = s3_server.client()
    for hour in range(2):
        assert run("apply", "-f", cfg, "--now", f"2026-11-25T0{hour}:30:00Z", "--auto-approve").code == 0
    # the newer backup loses its manifest outside the reconciler; the index still says complete
    s3.delete_object(Bucket=s3_bucket.bucket, Key=PREFIX + "20261125T010000Z/.backup")

    plan = run("plan", "-f", cfg, "--now", "2026-11-25T02:30:00Z", "--format", "json").json()
    ids = [a["id"] for a in plan["actions"]]
    # the fast plan cannot see it: it keeps 01 and the new 02, and would prune 00, the one good backup
    assert "prune/analytics/hourly/20261125T000000Z" in ids, ids

    r = run("apply", "-f", cfg, "--now", "2026-11-25T02:30:00Z", "--auto-approve")
    assert r.code == 1, r.out + r.err
    assert "prunes of schedule hourly stopped: the manifest .backup of 20261125T010000Z" in r.out + r.err
    left = keys(s3, s3_bucket.bucket, PREFIX + "20261125T000000Z/")
    assert PREFIX + "20261125T000000Z/.backup" in left  # the good backup is still there, whole

    # a full refresh sees it, and the plan it makes no longer prunes the good backup
    drift = run("drift", "-f", cfg, "--now", "2026-11-25T02:30:00Z", "--format", "json")
    found = [(d["type"], d.get("backup")) for d in drift.json()["drift"]]
    assert ("deleted_backup", "20261125T010000Z") in found and ("failed_backup", "20261125T010000Z") not in found
    full = run("plan", "-f", cfg, "--now", "2026-11-25T02:30:00Z", "--refresh", "full", "--format", "json").json()
    assert "prune/analytics/hourly/20261125T000000Z" not in [a["id"] for a in full["actions"]]


def test_prunes_run_when_the_kept_backups_are_there(cfg: str, s3_server: Any, s3_bucket: Bucket) -> None:
    for hour in range(3):
        r = run("apply", "-f", cfg, "--now", f"2026-11-25T0{hour}:30:00Z", "--auto-approve", "--stats")
        assert r.code == 0, r.out + r.err
    folders = {k[len(PREFIX) :].split("/")[0] for k in keys(s3_server.client(), s3_bucket.bucket, PREFIX)}
    assert folders == {"20261125T010000Z", "20261125T020000Z"}


def test_a_deleted_base_of_kept_incrementals_is_kept_and_they_are_broken(
    make_cfg: Callable[..., str], s3_server: Any, s3_bucket: Bucket
) -> None:
    cfg = make_cfg(every="1h", incremental={"full_every": 3}, retention={"keep_last": 5})
    for hour in range(3):  # a full 00, then incrementals 01 <- 02
        assert run("apply", "-f", cfg, "--now", f"2026-11-25T0{hour}:30:00Z", "--auto-approve").code == 0
    # the full loses its manifest on a bucket without versions: nothing of it can be recovered
    s3_server.client().delete_object(Bucket=s3_bucket.bucket, Key=PREFIX + "20261125T000000Z/.backup")

    # a day later (past cleanup_after), a full refresh
    plan = run("plan", "-f", cfg, "--now", "2026-11-26T02:30:00Z", "--refresh", "full", "--format", "json").json()
    assert not [a for a in plan["actions"] if a["type"] == "prune"], plan["actions"]
    broken = {d["backup"]: d["detail"] for d in plan["drift"] if d["type"] == "broken_backup"}
    assert set(broken) == {"20261125T010000Z", "20261125T020000Z"}, plan["drift"]
    assert "its base 20261125T000000Z is deleted" in broken["20261125T020000Z"]
    (export,) = [a for a in plan["actions"] if a["type"] == "export"]
    assert (export["kind"], export["base"]) == ("full", None)
