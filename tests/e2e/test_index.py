"""The per-schedule index: a warm plan reads one listing and one index object per schedule, and
the index is never trusted past what the listing shows."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from reconciler.model import Bucket
from tests.support.e2e import keys, read_json, requests, run

NOW = "2026-11-25T06:00:00Z"


@pytest.fixture
def cfg(one_schedule: Callable[..., str]) -> str:
    return one_schedule("idx", name="hourly", every="1h")


def test_warm_plans_read_the_index_not_each_sidecar(cfg: str, s3_server: Any, s3_bucket: Bucket) -> None:
    for hour in range(6):
        r = run("apply", "-f", cfg, "--now", f"2026-11-25T0{hour}:30:00Z", "--auto-approve")
        assert r.code == 0, r.out + r.err
    index_key = "clickhouse/.reconciler/index/analytics/hourly.json"
    index = read_json(s3_server.client(), s3_bucket.bucket, index_key)
    assert sorted(index["backups"]) == [f"20261125T0{h}0000Z" for h in range(6)]

    warm = run("plan", "-f", cfg, "--now", "2026-11-25T05:30:00Z", "--stats", "--detailed-exitcode")
    assert warm.code == 0, warm.out + warm.err
    got = requests(warm.err)
    # the bucket check, the lock, one listing and the index: no sidecar read one by one
    assert got == {"S3 HeadBucket": 1, "S3 GetObject": 2, "S3 ListObjectsV2": 1}, got

    # a sidecar changed behind the index's back is read again (its ETag moved), never trusted
    s3 = s3_server.client()
    key = "clickhouse/analytics/hourly/20261125T020000Z/reconciler.json"
    sidecar = read_json(s3, s3_bucket.bucket, key)
    sidecar["validations"][0]["result"] = "failed"
    sidecar["validations"][0]["detail"] = "made up"
    s3.put_object(Bucket=s3_bucket.bucket, Key=key, Body=json.dumps(sidecar).encode())
    drift = run("drift", "-f", cfg, "--now", "2026-11-25T05:30:00Z", "--format", "json", "--stats")
    assert drift.code == 2
    assert [(d["type"], d["backup"]) for d in drift.json()["drift"]] == [("broken_backup", "20261125T020000Z")]
    assert requests(drift.err)["S3 GetObject"] == 3  # lock, index, and that one sidecar

    # a garbage index is ignored: every sidecar is read, the plan is the same
    s3.put_object(Bucket=s3_bucket.bucket, Key=index_key, Body=b"{not json")
    cold = run("drift", "-f", cfg, "--now", "2026-11-25T05:30:00Z", "--format", "json", "--stats")
    assert cold.code == 2 and cold.json()["drift"] == drift.json()["drift"]
    assert requests(cold.err)["S3 GetObject"] == 2 + 6
    # and the next apply writes it afresh
    assert run("apply", "-f", cfg, "--now", "2026-11-25T05:30:00Z", "--auto-approve").code == 0
    assert sorted(read_json(s3, s3_bucket.bucket, index_key)["backups"]) == sorted(index["backups"])


def test_a_folder_removed_behind_the_index_disappears_from_the_plan(
    cfg: str, s3_server: Any, s3_bucket: Bucket
) -> None:
    for hour in range(2):
        assert run("apply", "-f", cfg, "--now", f"2026-11-25T0{hour}:30:00Z", "--auto-approve").code == 0
    s3 = s3_server.client()
    for k in keys(s3, s3_bucket.bucket, "clickhouse/analytics/hourly/20261125T010000Z/"):
        s3.delete_object(Bucket=s3_bucket.bucket, Key=k)
    plan = run("plan", "-f", cfg, "--now", "2026-11-25T01:30:00Z", "--format", "json").json()
    # the index still names it, the listing does not: the slot is due again
    assert [a["id"] for a in plan["actions"]][0] == "export/analytics/hourly/20261125T010000Z"


def test_a_fast_refresh_does_not_see_a_deleted_data_file_and_a_full_one_does(
    cfg: str, s3_server: Any, s3_bucket: Bucket
) -> None:
    for hour in range(2):
        assert run("apply", "-f", cfg, "--now", f"2026-11-25T0{hour}:30:00Z", "--auto-approve").code == 0
    s3 = s3_server.client()
    folder = "clickhouse/analytics/hourly/20261125T000000Z/"
    listed = {k: v for k, v in keys(s3, s3_bucket.bucket, folder).items() if not k.endswith("reconciler.json")}
    sidecar = read_json(s3, s3_bucket.bucket, folder + "reconciler.json")
    # what ClickHouse reported storing is what the folder holds
    assert (sidecar["sizes"]["stored_files"], sidecar["sizes"]["stored_bytes"]) == (len(listed), sum(listed.values()))
    index = read_json(s3, s3_bucket.bucket, "clickhouse/.reconciler/index/analytics/hourly.json")
    entry = index["format_version"], index["backups"]["20261125T000000Z"]
    assert entry[0] == 2 and entry[1]["state"] == "complete" and entry[1]["manifest"] is True
    assert (entry[1]["files"], entry[1]["bytes"]) == (len(listed), sum(listed.values()))

    data = next(k for k in sorted(listed) if "/data/" in k)
    s3.delete_object(Bucket=s3_bucket.bucket, Key=data)
    fast = run("drift", "-f", cfg, "--now", "2026-11-25T01:30:00Z", "--refresh", "fast", "--format", "json", "--stats")
    assert fast.code == 0, fast.out + fast.err  # the index knows the folder as settled
    assert requests(fast.err)["S3 ListObjectsV2"] == 1
    full = run("drift", "-f", cfg, "--now", "2026-11-25T01:30:00Z", "--format", "json")
    assert full.code == 2, full.out + full.err
    [d] = full.json()["drift"]
    assert (d["type"], d["backup"]) == ("broken_backup", "20261125T000000Z")
    assert f"holds {len(listed) - 1} files" in d["detail"], d["detail"]
    # a plan made under a full refresh says so (an apply of it observes the same way)
    plan = run("plan", "-f", cfg, "--now", "2026-11-25T02:30:00Z", "--refresh", "full", "--format", "json").json()
    assert plan["refresh"] == "full"
    assert "refresh" not in run("plan", "-f", cfg, "--now", "2026-11-25T02:30:00Z", "--format", "json").json()
