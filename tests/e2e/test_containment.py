"""The reconciler never deletes outside `<prefix>/<service>/<schedule>/<backup>/` of a declared
schedule, however the names, the plan or the bucket's keys try to make it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.apply.guard import ContainmentError, backup_folder, check_keys
from reconciler.config import load_config
from reconciler.model import Bucket
from tests.support.e2e import keys, run, s3_bucket_doc, write_config

NOW = "2026-11-25T06:00:00Z"
SLOT = "20261125T030000Z"


@pytest.fixture
def cfg(one_schedule: Callable[..., str]) -> str:
    return one_schedule("contain", retention={"keep_last": 1}, prune_unmanaged=True, cleanup_after="1m")


@pytest.mark.parametrize("name", ["", ".", "..", "../other", "a/b", "a\\b", ".hidden", "x\u0430", "x\x00", "x\n"])
def test_backup_names_that_could_escape_are_refused(cfg: str, name: str) -> None:
    config = load_config(cfg)
    with pytest.raises(ContainmentError):
        backup_folder(config, "daily", name)


def test_undeclared_schedules_and_keys_outside_the_folder_are_refused(cfg: str) -> None:
    config = load_config(cfg)
    with pytest.raises(ContainmentError):
        backup_folder(config, "not-declared", SLOT)
    folder = backup_folder(config, "daily", SLOT)
    assert folder == f"clickhouse/analytics/daily/{SLOT}/"
    assert check_keys(folder, [folder + "data/x.bin", folder + ".backup"])
    for bad in [
        f"clickhouse/analytics/daily/{SLOT}.2/x",  # a sibling whose name starts the same
        f"clickhouse/analytics/daily/{SLOT}",  # the folder's name without its slash
        folder,  # the folder itself
        folder + "../x",
        folder + "a/../../x",
        folder + "a//b",
        "clickhouse/.reconciler/lock",
        "other/" + folder,
    ]:
        with pytest.raises(ContainmentError):
            check_keys(folder, [bad])


@pytest.mark.parametrize("prefix", ["/clickhouse/", "a//b", "a/../b"])
def test_prefixes_are_normalised_or_refused(
    tmp_path: Path, prefix: str, s3_bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_S3_KEY", "k")
    monkeypatch.setenv("TEST_S3_SECRET", "s")
    doc = s3_bucket_doc(s3_bucket, prefix=prefix)
    path = write_config(
        tmp_path / "p.yaml",
        {
            "services": {"a": {"dsn": "chdb:///tmp/x"}},
            "buckets": {"primary": doc},
            "schedules": {"s": {"service": "a", "bucket": "primary", "every": "1h"}},
        },
    )
    r = run("validate", "-f", str(path))
    if prefix == "/clickhouse/":
        assert r.code == 0 and load_config(str(path)).buckets["primary"].prefix == "clickhouse"
    else:
        assert r.code == 1 and "prefix" in r.err


def test_nothing_outside_is_deleted_by_prune_whatever_the_bucket_or_plan_holds(
    cfg: str, tmp_path: Path, s3_server: Any, s3_bucket: Bucket
) -> None:
    s3, bucket = s3_server.client(), s3_bucket.bucket
    assert run("apply", "-f", cfg, "--now", NOW, "--auto-approve").code == 0
    # things that look close to what the reconciler may delete, and must all survive
    bait = [
        "clickhouse/analytics/daily.txt",
        "clickhouse/analytics/daily-other/20261101T030000Z/.backup",
        "clickhouse/analytics/dailyx/20261101T030000Z/.backup",
        "clickhouse/analytics/other/20261101T030000Z/reconciler.json",
        "clickhouse/other-service/daily/20261101T030000Z/.backup",
        "clickhouse2/analytics/daily/20261101T030000Z/.backup",
        "clickhouse/.reconciler/index/analytics/other.json",
        "analytics/daily/20261101T030000Z/.backup",
        "clickhouse/analytics/daily/.backup",  # directly under the schedule: not a backup folder
    ]
    for k in bait:
        s3.put_object(Bucket=bucket, Key=k, Body=b"bait")
    # an unmanaged folder with a key holding `..` (S3 keys may): prune_unmanaged is on, yet the
    # prune refuses rather than delete a key some tools would read as outside the folder
    s3.put_object(Bucket=bucket, Key="clickhouse/analytics/daily/manual/../../escape", Body=b"bait")
    # the next day: keep_last=1 and prune_unmanaged prune the old backup and the `manual` folder
    later = "2026-11-27T06:00:00Z"
    assert run("apply", "-f", cfg, "--now", later, "--auto-approve").code in (0, 1)
    r = run("apply", "-f", cfg, "--now", later, "--auto-approve")
    assert "manual" in r.out
    listing = keys(s3, bucket)
    for k in bait:
        assert k in listing, f"{k} was deleted"
    assert "clickhouse/analytics/daily/manual/../../escape" in listing  # refused, not deleted

    # a saved plan edited to prune outside: the digests still match, the guard refuses
    out = tmp_path / "plan.json"
    assert run("plan", "-f", cfg, "--now", later, "--out", str(out)).code == 0
    doc = json.loads(out.read_text())
    evil = [
        {"backup": "..", "schedule": "daily"},
        {"backup": "../other", "schedule": "daily"},
        {"backup": "x/../..", "schedule": "daily"},
        {"backup": "", "schedule": "daily"},
    ]
    doc["actions"] = [
        {
            "id": f"prune/evil/{i}",
            "type": "prune",
            "service": "analytics",
            "schedule": e["schedule"],
            "bucket": "primary",
            "backup": e["backup"],
            "reason": "evil",
            "depends_on": [],
        }
        for i, e in enumerate(evil)
    ]
    out.write_text(json.dumps(doc))
    before = {k: v for k, v in keys(s3, bucket).items() if "/.reconciler/runs/" not in k}
    r = run("apply", "-f", cfg, str(out))
    assert r.code == 1
    assert "plan schema" in r.err  # an empty name does not even pass the plan schema: refused whole
    assert keys(s3, bucket) == {**before, **{k: v for k, v in keys(s3, bucket).items() if "/runs/" in k}}
    doc["actions"] = doc["actions"][:3]
    out.write_text(json.dumps(doc))
    r = run("apply", "-f", cfg, str(out))
    assert r.code == 1 and r.out.count("refusing to delete") == 3, r.out + r.err
    data = {k: v for k, v in keys(s3, bucket).items() if "/.reconciler/runs/" not in k}  # + a run record
    assert data == before
    # and a plan naming an undeclared schedule is refused whole, before anything runs
    doc["actions"][0]["schedule"] = "undeclared"
    out.write_text(json.dumps(doc))
    r = run("apply", "-f", cfg, str(out))
    assert r.code == 1 and "names schedule undeclared, which the config does not declare" in r.err
    assert {k: v for k, v in keys(s3, bucket).items() if "/.reconciler/runs/" not in k} == before
