"""Helpers for end-to-end tests: a config on disk, the CLI in-process, the bucket's contents."""

from __future__ import annotations

import io
import json
import uuid
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from reconciler.cli import main
from reconciler.model import Bucket


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run(*args: str) -> Result:
    """Run the CLI in this process (the session's one chdb engine is shared with the tests)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    return Result(code, out.getvalue(), err.getvalue())


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:6]}"


def write_config(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({"version": 1, **doc}, sort_keys=False))
    return path


def s3_bucket_doc(bucket: Bucket, prefix: str | None = "clickhouse") -> dict[str, Any]:
    """The `buckets:` entry for a test bucket; credentials come from ${VAR}s set by the test."""
    doc: dict[str, Any] = {
        "provider": "s3",
        "bucket": bucket.bucket,
        "region": bucket.region or "us-east-1",
        "endpoint": bucket.endpoint,
        "credentials": {"access_key_id": "${TEST_S3_KEY}", "secret_access_key": "${TEST_S3_SECRET}"},
    }
    if prefix:
        doc["prefix"] = prefix
    return doc


def keys(s3: Any, bucket: str, prefix: str = "") -> dict[str, int]:
    out: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"]] = o["Size"]
    return out


def requests(err: str) -> dict[str, int]:
    """The storage requests by kind of a run's ``--stats`` line (in its stderr)."""
    stats = next(x for x in err.splitlines() if x.startswith("storage requests:"))
    inner = stats[stats.index("(") + 1 : stats.index(")")]
    return {k.rsplit(" ", 1)[0]: int(k.rsplit(" ", 1)[1]) for k in inner.split(", ")}


def read_json(s3: Any, bucket: str, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def small_source(monkeypatch: Any, s3_server: Any, chdb_dsn: str, ch: Any, name: str) -> str:
    """Set the ${TEST_*} variables the configs use and create a small database to back up."""
    monkeypatch.setenv("TEST_S3_KEY", s3_server.access_key)
    monkeypatch.setenv("TEST_S3_SECRET", s3_server.secret_key)
    monkeypatch.setenv("TEST_DSN", chdb_dsn)
    db = unique(name)
    ch.command(f"CREATE DATABASE {db}")
    ch.command(f"CREATE TABLE {db}.t (id UInt64) ENGINE = MergeTree ORDER BY id")
    ch.command(f"INSERT INTO {db}.t SELECT number FROM numbers(100)")
    return db


def one_schedule_config(
    path: Path, bucket: Bucket, db: str, name: str = "daily", bucket_doc: dict[str, Any] | None = None, **schedule: Any
) -> str:
    """A config of one chdb service (``${TEST_DSN}``), one S3 bucket and one schedule of ``db``
    (daily at 03:00 unless ``schedule`` says otherwise: its keys override the defaults)."""
    sched: dict[str, Any] = {"service": "analytics", "bucket": "primary", "databases": [db], "cron": "0 3 * * *"}
    if "every" in schedule:
        del sched["cron"]
    sched.update(schedule)
    doc = {
        "services": {"analytics": {"dsn": "${TEST_DSN}"}},
        "buckets": {"primary": bucket_doc if bucket_doc is not None else s3_bucket_doc(bucket)},
        "schedules": {name: sched},
    }
    return str(write_config(path, doc))
