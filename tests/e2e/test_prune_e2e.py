"""Incremental chains and retention end to end: 40 simulated days on chdb + the S3 server, and
a prune killed in the middle of its deletions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler import clickhouse
from reconciler.model import UTC, Bucket
from reconciler.model.slots import slot_name
from reconciler.plan.retention import Candidate
from tests.support.e2e import keys, read_json, run, s3_bucket_doc, unique, write_config
from tests.support.processes import ROOT, cli
from tests.support.tcp_proxy import TcpProxy
from tests.unit.test_retention import oracle_rules


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, s3_server: Any, chdb_dsn: str) -> None:
    monkeypatch.setenv("TEST_S3_KEY", s3_server.access_key)
    monkeypatch.setenv("TEST_S3_SECRET", s3_server.secret_key)
    monkeypatch.setenv("TEST_DSN", chdb_dsn)


def test_forty_days_of_incrementals_and_retention(
    tmp_path: Path, env: None, s3_server: Any, s3_bucket: Bucket, ch: clickhouse.ClickHouse
) -> None:
    from reconciler.model import Retention

    db = unique("daily")
    ch.command(f"CREATE DATABASE {db}")
    ch.command(f"CREATE TABLE {db}.events (id UInt64, day UInt16, v String) ENGINE = MergeTree ORDER BY id")
    schedule = {
        "service": "analytics",
        "bucket": "primary",
        "databases": [db],
        "cron": "0 3 * * *",
        "incremental": {"full_every": 7},
        "retention": {"keep_daily": 7, "keep_weekly": 4},
    }
    base = {
        "services": {"analytics": {"dsn": "${TEST_DSN}"}, "staging": {"dsn": "${TEST_DSN}"}},
        "buckets": {"primary": s3_bucket_doc(s3_bucket)},
        "schedules": {"daily": schedule},
    }
    cfg = str(write_config(tmp_path / "c.yaml", base))
    start = datetime(2026, 10, 1, 4, tzinfo=UTC)
    kinds: dict[str, tuple[str, str | None]] = {}
    freed_total = 0
    for day in range(40):
        ch.command(f"INSERT INTO {db}.events SELECT {day} * 1000 + number, {day}, toString(number) FROM numbers(1000)")
        now = start + timedelta(days=day)
        r = run("apply", "-f", cfg, "--now", now.isoformat(), "--auto-approve")
        assert r.code == 0, r.out + r.err
        slot = slot_name(now.replace(hour=3))
        sidecar = read_json(s3_server.client(), s3_bucket.bucket, f"clickhouse/analytics/daily/{slot}/reconciler.json")
        kinds[slot] = (sidecar["kind"], sidecar["base"])
        if "Pruned" in r.out:
            freed_total += 1
    # a full every 7 exports, incrementals on the previous backup in between
    names = sorted(kinds)
    for i, n in enumerate(names):
        assert kinds[n] == (("full", None) if i % 7 == 0 else ("incremental", names[i - 1])), (n, kinds[n])

    # exactly the backups the policy keeps, plus the bases their chains need
    cands = [Candidate(n, datetime.strptime(n, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)) for n in names]
    needed = oracle_rules(Retention(keep_daily=7, keep_weekly=4), cands) | {names[-1]}
    for n in list(needed):
        while kinds[n][1]:
            n = kinds[n][1]  # type: ignore[assignment]
            needed.add(n)
    listing = keys(s3_server.client(), s3_bucket.bucket, "clickhouse/analytics/daily/")
    remaining = sorted({k.split("/")[3] for k in listing})
    assert remaining == sorted(needed)
    assert len(remaining) < len(names) and freed_total > 0
    assert all(f"clickhouse/analytics/daily/{n}/.backup" in listing for n in remaining)

    # the newest incremental restores with its chain intact: the source's row counts
    newest = names[-1]
    assert kinds[newest][0] == "incremental"
    target = f"{db}_restored"
    cfg2 = write_config(
        tmp_path / "c2.yaml",
        {
            **base,
            "restores": {
                "check": {
                    "from": {"schedule": "daily", "backup": newest},
                    "to": {"service": "staging", "databases": {db: target}},
                }
            },
        },
    )
    r = run(
        "apply",
        "-f",
        str(cfg2),
        "--now",
        (start + timedelta(days=39)).isoformat(),
        "--auto-approve",
        "--target",
        "check",
    )
    assert r.code == 0 and "1 done" in r.out, r.out + r.err
    assert ch.query(f"SELECT count(), sum(id) FROM {target}.events") == ch.query(
        f"SELECT count(), sum(id) FROM {db}.events"
    )


def _synthesize(s3: Any, bucket: str, days: int, files: int) -> list[str]:
    """Complete, validated backups made of many small objects (what prune walks through)."""
    names = []
    puts = []
    for d in range(days):
        slot = datetime(2026, 11, 1, 3, tzinfo=UTC) + timedelta(days=d)
        name = slot_name(slot)
        names.append(name)
        folder = f"clickhouse/analytics/daily/{name}/"
        contents = "".join(
            f"<file><name>data/f{i}.bin</name><size>3</size><checksum>x</checksum></file>" for i in range(files)
        )
        puts.append(
            (folder + ".backup", f"<config><version>1</version><contents>{contents}</contents></config>".encode())
        )
        puts += [(folder + f"data/f{i}.bin", b"abc") for i in range(files)]
        sidecar = {
            "format_version": 1,
            "service": "analytics",
            "schedule": "daily",
            "backup": name,
            "slot": slot.isoformat().replace("+00:00", "Z"),
            "kind": "full",
            "base": None,
            "scope": {"all": True},
            "location": "",
            "state": "complete",
            "operation": {"id": "x", "status": "BACKUP_CREATED", "error": None},
            "sizes": {"num_files": files, "total_size": 3 * files},
            "timings": {},
            "run_id": "r0",
            "validations": [{"level": "manifest", "at": "2026-11-24T00:00:00Z", "result": "ok", "detail": ""}],
        }
        puts.append((folder + "reconciler.json", json.dumps(sidecar).encode()))
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda kv: s3.put_object(Bucket=bucket, Key=kv[0], Body=kv[1]), puts))
    return names


@pytest.mark.slow
def test_killed_prune_is_finished_by_the_next_apply_and_touches_nothing_else(
    tmp_path: Path, s3_server: Any, s3_bucket: Bucket
) -> None:
    s3, bucket = s3_server.client(), s3_bucket.bucket
    names = _synthesize(s3, bucket, days=12, files=100)
    other = {f"clickhouse/analytics/other/x/{i}": b"keep" for i in range(5)}  # another schedule's files
    other["clickhouse/unrelated.txt"] = b"keep"
    for k, v in other.items():
        s3.put_object(Bucket=bucket, Key=k, Body=v)
    # the apply reaches the bucket through a proxy that holds its first batch delete: at that
    # moment the first pruned folder has lost ClickHouse's manifest and its sidecar says pruning,
    # and the apply is stuck there until the test kills it (no race with a fast prune)
    proxy = TcpProxy(s3_server.port).start()
    cfg = write_config(
        tmp_path / "c.yaml",
        {
            "services": {"analytics": {"dsn": f"chdb://{tmp_path / 'chdb'}"}},
            "buckets": {"primary": {**s3_bucket_doc(s3_bucket), "endpoint": proxy.endpoint}},
            "schedules": {
                "daily": {
                    "service": "analytics",
                    "bucket": "primary",
                    "cron": "0 3 * * *",
                    "retention": {"keep_last": 3},
                }
            },
        },
    )
    env = {
        **os.environ,
        "TEST_S3_KEY": s3_server.access_key,
        "TEST_S3_SECRET": s3_server.secret_key,
        "PYTHONPATH": str(ROOT),
        "RECONCILER_LOCK_LEASE": "2s",
    }
    now = names[-1][:4] + "-" + names[-1][4:6] + "-" + names[-1][6:8] + "T05:00:00Z"
    kept = names[-3:]
    before_kept = {k: v for k, v in keys(s3, bucket, "clickhouse/analytics/daily/").items() if k.split("/")[3] in kept}

    held = proxy.hold_request(f"POST /{bucket}?delete".encode())
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reconciler",
            "apply",
            "-f",
            str(cfg),
            "--now",
            now,
            "--auto-approve",
            "--parallelism",
            "1",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while not held.caught.wait(0.05):
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "the apply never reached its first batch delete"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proxy.cut()  # the held batch delete is dropped, never delivered
        proxy.restore()
    finally:
        if proc.poll() is None:
            proc.kill()
    listing = keys(s3, bucket, "clickhouse/analytics/daily/")
    left = {k.split("/")[3] for k in listing}
    interrupted = [f for f in left if f"clickhouse/analytics/daily/{f}/.backup" not in listing]
    assert len(interrupted) == 1 and interrupted[0] not in kept, interrupted
    assert left == set(names), "the kill at the first batch delete leaves every folder in place"

    time.sleep(2.5)  # the killed apply's lease runs out
    plan = cli(env, "plan", "-f", str(cfg), "--now", now, "--format", "json", ok=(), timeout=120)
    assert plan.returncode == 0, plan.stderr
    doc = json.loads(plan.stdout)
    assert {a["type"] for a in doc["actions"]} == {"prune"}
    assert sorted(a["backup"] for a in doc["actions"]) == sorted(left - set(kept))
    applied = cli(env, "apply", "-f", str(cfg), "--now", now, "--auto-approve", ok=(), timeout=120)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    after = keys(s3, bucket, "clickhouse/analytics/daily/")
    assert after == before_kept  # the kept backups, every object of them, and nothing else
    for k in other:
        assert s3.get_object(Bucket=bucket, Key=k)["Body"].read() == b"keep"
    proxy.stop()
