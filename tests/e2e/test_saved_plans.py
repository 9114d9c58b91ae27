"""Saved plans: `plan --out` then `apply PLAN` carries out exactly that plan, or refuses it as
stale when the bucket or the config changed since."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.model import Bucket
from reconciler.schemas import validate_plan
from tests.support.e2e import keys, run

NOW = "2026-11-25T06:00:00Z"
SLOT = "20261125T030000Z"


@pytest.fixture
def cfg(one_schedule: Callable[..., str]) -> str:
    return one_schedule("saved")


def test_apply_carries_out_exactly_the_saved_plan(cfg: str, tmp_path: Path, s3_server: Any, s3_bucket: Bucket) -> None:
    out = tmp_path / "plan.json"
    r = run("plan", "-f", cfg, "--now", NOW, "--out", str(out))
    assert r.code == 0, r.err
    doc = json.loads(out.read_text())
    assert validate_plan(doc) is None
    assert doc["config_digest"].startswith("sha256:") and doc["state_digest"].startswith("sha256:")
    assert [a["type"] for a in doc["actions"]] == ["export", "validate"]
    # a saved plan is applied as it is: no confirmation, and its `now`, not the clock's
    applied = run("apply", "-f", cfg, str(out))
    assert applied.code == 0, applied.out + applied.err
    assert "2 done, 0 failed" in applied.out
    assert f"clickhouse/analytics/daily/{SLOT}/.backup" in keys(s3_server.client(), s3_bucket.bucket)
    # applying it again: the state it was made for is gone
    again = run("apply", "-f", cfg, str(out))
    assert again.code == 1 and "stale" in again.err


@pytest.mark.parametrize("change", ["object added", "object removed", "folder added", "config changed"])
def test_stale_plans_are_refused(change: str, cfg: str, tmp_path: Path, s3_server: Any, s3_bucket: Bucket) -> None:
    s3 = s3_server.client()
    assert run("apply", "-f", cfg, "--now", NOW, "--auto-approve").code == 0
    out = tmp_path / "plan.json"
    later = "2026-11-26T06:00:00Z"
    # a change inside a settled backup is seen by a full refresh only: the plan saved with one
    # records it, and its apply observes the same way
    refresh = ["--refresh", "full"] if change.startswith("object") else []
    assert run("plan", "-f", cfg, "--now", later, "--out", str(out), *refresh).code == 0
    folder = f"clickhouse/analytics/daily/{SLOT}/"
    if change == "folder added":  # a fast refresh sees the folder names
        s3.put_object(Bucket=s3_bucket.bucket, Key="clickhouse/analytics/daily/manual-copy/.backup", Body=b"x")
    elif change == "object added":
        s3.put_object(Bucket=s3_bucket.bucket, Key=folder + "data/extra.bin", Body=b"x")
    elif change == "object removed":
        victim = next(k for k in keys(s3, s3_bucket.bucket, folder) if k.endswith(".sql"))
        s3.delete_object(Bucket=s3_bucket.bucket, Key=victim)
    else:
        doc = yaml.safe_load(Path(cfg).read_text())
        doc["schedules"]["daily"]["retention"] = {"keep_last": 3}
        Path(cfg).write_text(yaml.safe_dump(doc))
    before = keys(s3, s3_bucket.bucket)
    r = run("apply", "-f", cfg, str(out))
    assert r.code == 1, r.out
    assert "stale" in r.err and len(r.err.strip().splitlines()) == 1
    after = keys(s3, s3_bucket.bucket)
    assert after == before  # nothing done, the lock released


def test_a_saved_plan_that_is_not_a_plan_is_one_clear_error(cfg: str, tmp_path: Path) -> None:
    bad = tmp_path / "plan.json"
    bad.write_text('{"format_version": "1", "actions": []')
    r = run("apply", "-f", cfg, str(bad))
    assert r.code == 1 and r.err.startswith("error: the plan is not JSON") and "plan.json:1:" in r.err
    bad.write_text('{"format_version": "2"}')
    r = run("apply", "-f", cfg, str(bad))
    assert r.code == 1 and "plan schema" in r.err
