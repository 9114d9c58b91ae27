"""Wall time and requests of a plan over real backups on moto's S3 server (issue 14).

    .venv/bin/python benchmarks/plan_real.py --backups 3 --tables 10 --parts 10  # the figures (2,141 objects a backup)
    .venv/bin/python benchmarks/plan_real.py --backups 1 --tables 2 --parts 3    # a smoke size

Makes TABLES wide MergeTree tables of 20 columns in PARTS parts each (merges stopped, random
values, so that ClickHouse stores two files per column and part), exports BACKUPS hourly backups
of them with ``reconciler apply`` (the embedded engine, chdb, writing to moto), then in this
process, each the best of 3:
- warm fast plan (the CLI's ``plan``, in this process): requests and wall time, against the floor:
  the bare boto3 requests of the budget (HeadBucket, the lock's GET, the delimiter listing of the
  schedule's folder names, the GET of its index), sent at once as the plan sends them;
- full refresh (drift's): requests and wall time, against the bare recursive listing.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reconciler.cli import main as cli  # noqa: E402
from tests.support.servers import MotoServer  # noqa: E402


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli(list(args))
    return code, out.getvalue(), err.getvalue()


def best(fn: Any, n: int = 3) -> tuple[float, Any]:
    times, got = [], None
    for _ in range(n):
        t = time.perf_counter()
        got = fn()
        times.append(time.perf_counter() - t)
    return min(times), got


def requests(err: str) -> str:
    return next(line for line in err.splitlines() if line.startswith("storage requests:"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backups", type=int, default=3)
    ap.add_argument("--tables", type=int, default=10)
    ap.add_argument("--parts", type=int, default=10)
    args = ap.parse_args()
    os.environ.update(AWS_EC2_METADATA_DISABLED="true")
    server = MotoServer()
    server.start()
    try:
        s3 = server.client()
        s3.create_bucket(Bucket="bench-real")
        tmp = Path(tempfile.mkdtemp())
        os.environ.update(BENCH_KEY=server.access_key, BENCH_SECRET=server.secret_key, BENCH_DSN=f"chdb://{tmp}/ch")
        import clickhouse_connect

        ch = clickhouse_connect.get_client(dsn=os.environ["BENCH_DSN"])
        ch.command("CREATE DATABASE shop")
        cols = ", ".join(f"c{i:02d} UInt64" for i in range(20))
        # rand64(i), not rand64(): calls with the same arguments are one expression to ClickHouse, so
        # 20 rand64() columns hold the same values, and a backup stores identical files only once
        vals = ", ".join(f"rand64({i})" for i in range(20))
        for t in range(args.tables):
            ch.command(
                f"CREATE TABLE shop.t{t} (id UInt64, {cols}) ENGINE = MergeTree ORDER BY id "
                "SETTINGS min_bytes_for_wide_part = 0, min_rows_for_wide_part = 0"
            )
            ch.command(f"SYSTEM STOP MERGES shop.t{t}")
            for p in range(args.parts):
                ch.command(f"INSERT INTO shop.t{t} SELECT number + {p * 1000}, {vals} FROM numbers(1000)")
        cfg = tmp / "bench.yaml"
        cfg.write_text(
            "version: 1\n"
            "services:\n  analytics: {dsn: '${BENCH_DSN}'}\n"
            "buckets:\n"
            f"  primary: {{provider: s3, bucket: bench-real, prefix: bench, region: us-east-1, "
            f"endpoint: '{server.endpoint}',\n"
            "            credentials: {access_key_id: '${BENCH_KEY}', secret_access_key: '${BENCH_SECRET}'}}\n"
            "schedules:\n  hourly: {service: analytics, bucket: primary, databases: [shop], every: 1h,\n"
            "           validate: {after_export: none}}\n"
        )
        t = time.perf_counter()
        for h in range(args.backups):
            code, out, err = run("apply", "-f", str(cfg), "--now", f"2026-11-25T{h:02d}:30:00Z", "--auto-approve")
            assert code == 0, out + err
        print(f"exported {args.backups} real backups in {time.perf_counter() - t:.1f}s")
        prefix = "bench/analytics/hourly/"
        objects = 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="bench-real", Prefix=prefix):
            objects += len(page.get("Contents", []))
        print(f"bucket: {objects} objects under the schedule ({objects / args.backups:.0f} a backup)")
        now = f"2026-11-25T{args.backups - 1:02d}:45:00Z"

        def plan(refresh: str) -> str:
            code, out, err = run("plan", "-f", str(cfg), "--now", now, "--refresh", refresh, "--stats")
            assert code == 0, out + err
            return requests(err)

        def floor_fast() -> None:
            # the requests of the budget, sent as the plan sends them: all four at once
            with ThreadPoolExecutor(4) as pool:
                for f in [
                    pool.submit(s3.head_bucket, Bucket="bench-real"),
                    pool.submit(get, "bench/.reconciler/lock"),
                    pool.submit(s3.list_objects_v2, Bucket="bench-real", Prefix=prefix, Delimiter="/"),
                    pool.submit(get, "bench/.reconciler/index/analytics/hourly.json"),
                ]:
                    f.result()

        def get(key: str) -> bytes:
            try:
                return bytes(s3.get_object(Bucket="bench-real", Key=key)["Body"].read())
            except s3.exceptions.NoSuchKey:
                return b""

        def floor_full() -> None:
            for _ in s3.get_paginator("list_objects_v2").paginate(Bucket="bench-real", Prefix=prefix):
                pass

        fast_t, fast_line = best(lambda: plan("fast"))
        floor_t, _ = best(floor_fast)
        full_t, full_line = best(lambda: plan("full"))
        floor_full_t, _ = best(floor_full)
        print(f"warm fast plan: {fast_t:.3f}s; {fast_line}")
        print(
            f"  floor (HeadBucket, lock GET, delimiter listing, index GET, at once; same client): {floor_t:.3f}s; "
            f"ratio {fast_t / floor_t:.2f}"
        )
        print(f"full refresh plan: {full_t:.3f}s; {full_line}")
        print(f"  floor (recursive listing): {floor_full_t:.3f}s; ratio {full_t / floor_full_t:.2f}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
