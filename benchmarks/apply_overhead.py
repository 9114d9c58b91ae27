"""The reconciler's own time per export (issue 8 target: median <= 50 ms).

    .venv/bin/python benchmarks/apply_overhead.py [--exports 50]

Runs EXPORTS applies in this process against the embedded ClickHouse (chdb) and moto's S3 server
on loopback, one small export each (an `every: 1h` schedule, `--now` one hour later each time,
manifest validation off so that the apply is the export alone). For each export it takes:
- the export action's wall time (sidecar written, BACKUP ... ASYNC sent, system.backups polled
  to the end, sidecar completed) minus ClickHouse's own start–end from system.backups: the
  reconciler's time per export;
- the whole apply's wall time (observe, plan, lock, run records, index) minus the same.
and prints the medians and 90th percentiles.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reconciler import clickhouse  # noqa: E402
from reconciler.model import UTC, Service  # noqa: E402
from tests.support.servers import MotoServer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--exports", type=int, default=50)
    args = ap.parse_args()
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    server = MotoServer()
    server.start()
    try:
        server.create_bucket("overhead")
        tmp = Path(tempfile.mkdtemp())
        dsn = f"chdb://{tmp / 'chdb'}"
        ch = clickhouse.connect(Service("bench", dsn))
        ch.command("CREATE DATABASE shop")
        ch.command("CREATE TABLE shop.t (id UInt64, v String) ENGINE = MergeTree ORDER BY id")
        ch.command("INSERT INTO shop.t SELECT number, toString(number) FROM numbers(10000)")
        os.environ.update(BENCH_KEY=server.access_key, BENCH_SECRET=server.secret_key, BENCH_DSN=dsn)
        cfg = tmp / "c.yaml"
        cfg.write_text(
            "version: 1\n"
            "services: {analytics: {dsn: '${BENCH_DSN}'}}\n"
            "buckets: {primary: {provider: s3, bucket: overhead, prefix: p, region: us-east-1,\n"
            f"  endpoint: '{server.endpoint}',\n"
            "  credentials: {access_key_id: '${BENCH_KEY}', secret_access_key: '${BENCH_SECRET}'}}}\n"
            "schedules: {h: {service: analytics, bucket: primary, databases: [shop], every: 1h,\n"
            "  validate: {after_export: none}}}\n"
        )
        from reconciler.cli import main as cli

        def run_apply(now: datetime) -> float:
            out = io.StringIO()
            t = time.perf_counter()
            with redirect_stdout(out), redirect_stderr(io.StringIO()):
                code = cli(["apply", "-f", str(cfg), "--now", now.isoformat(), "--auto-approve"])
            took = time.perf_counter() - t
            assert code == 0, out.getvalue()
            return took

        start = datetime(2026, 1, 1, tzinfo=UTC)
        run_apply(start)  # warm up: imports, clients, the engine
        applies = []
        for i in range(1, args.exports + 1):
            applies.append(run_apply(start + timedelta(hours=i)))
        # each export's own wall time and ClickHouse's time, from the run records
        import json

        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=server.endpoint,
            aws_access_key_id=server.access_key,
            aws_secret_access_key=server.secret_key,
            region_name="us-east-1",
        )
        records = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="overhead", Prefix="p/.reconciler/runs/"):
            for o in page.get("Contents", []):
                records.append(json.loads(s3.get_object(Bucket="overhead", Key=o["Key"])["Body"].read()))
        records.sort(key=lambda r: r["started_at"])
        own, whole = [], []
        for rec, total in zip(records[1:], applies, strict=True):
            (action,) = rec["actions"]
            ch_s = action["facts"]["clickhouse_seconds"]
            a_s = (
                datetime.fromisoformat(action["finished_at"].replace("Z", "+00:00"))
                - datetime.fromisoformat(action["started_at"].replace("Z", "+00:00"))
            ).total_seconds()
            own.append(a_s - ch_s)
            whole.append(total - ch_s)

        def q(xs: list[float], p: float) -> float:
            return sorted(xs)[min(len(xs) - 1, int(p * len(xs)))]

        print(f"machine: {os.cpu_count()} cores; ClickHouse: chdb (in-process); store: moto S3 server on loopback")
        print(f"exports: {len(own)}")
        print(
            "reconciler time per export (action wall - ClickHouse start..end): "
            f"median {statistics.median(own) * 1000:.0f} ms, "
            f"p90 {q(own, 0.9) * 1000:.0f} ms (target median <= 50 ms)"
        )
        print(
            f"whole apply minus ClickHouse (observe, plan, lock, records, index): median "
            f"{statistics.median(whole) * 1000:.0f} ms, p90 {q(whole, 0.9) * 1000:.0f} ms"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
