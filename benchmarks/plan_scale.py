"""Planning cost against the number of backups (issue 8).

    .venv/bin/python benchmarks/plan_scale.py --backups 10000 --schedules 100   # the target size
    .venv/bin/python benchmarks/plan_scale.py --backups 400 --schedules 4       # the CI smoke size
    .venv/bin/python benchmarks/plan_scale.py --rss-backups 100000 ...          # + the RSS check

Starts moto's S3 server on a free loopback port and synthesises BACKUPS backups spread over
SCHEDULES schedules (a sidecar, a tiny manifest and one data file each, and the schedule's index).
Then, in this process:
- cold plan: observe + plan with no index (every sidecar is read), and its floor: the bare
  boto3 listing of every schedule prefix plus one GET per backup, 16-way parallel;
- warm plan: observe + plan with the index, and its floor: the bare boto3 listing of every
  schedule prefix (8-way parallel, as the plan lists them);
each timed as the best of 3, with the plan's storage requests counted (--stats' counter).
With --rss-backups N, the peak RSS of `reconciler plan` (a subprocess, measured by
/usr/bin/time) over N backups against the same plan over an empty bucket. The service is not
chdb (its DSN points at a closed loopback port): the embedded engine alone maps ~290 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reconciler.bucket.index import IndexEntry, ScheduleIndex  # noqa: E402
from reconciler.config import load_config  # noqa: E402
from reconciler.connections import Connections  # noqa: E402
from reconciler.model import UTC  # noqa: E402
from reconciler.model.slots import slot_name  # noqa: E402
from reconciler.observe import observe  # noqa: E402
from reconciler.plan import build_plan  # noqa: E402
from reconciler.stores.stats import STATS  # noqa: E402
from tests.support.servers import MotoServer, free_port  # noqa: E402

START = datetime(2025, 1, 1, tzinfo=UTC)
MANIFEST = (
    b"<config><version>1</version><contents>"
    b"<file><name>data/x.bin</name><size>3</size><checksum>0</checksum></file></contents></config>"
)


def sidecar(service: str, schedule: str, name: str, slot: datetime) -> dict[str, Any]:
    stamp = slot.isoformat().replace("+00:00", "Z")
    return {
        "format_version": 1,
        "service": service,
        "schedule": schedule,
        "backup": name,
        "slot": stamp,
        "kind": "full",
        "base": None,
        "chain": [],
        "scope": {"all": True},
        "location": "",
        "state": "complete",
        "operation": {"id": f"op-{name}", "status": "BACKUP_CREATED", "error": None},
        "sizes": {"num_files": 2, "total_size": 3},
        "timings": {"started_at": stamp, "finished_at": stamp},
        "run_id": "bench",
        "validations": [{"level": "manifest", "at": stamp, "result": "ok", "detail": ""}],
    }


def write_config(path: Path, bucket: str, endpoint: str, schedules: int) -> None:
    lines = [
        "version: 1",
        "services:",
        f"  analytics: {{dsn: 'http://default@127.0.0.1:{free_port()}'}}",  # unreachable: no chdb here
        "buckets:",
        f"  primary: {{provider: s3, bucket: {bucket}, prefix: bench, region: us-east-1, endpoint: '{endpoint}',",
        "            credentials: {access_key_id: '${BENCH_KEY}', secret_access_key: '${BENCH_SECRET}'}}",
        "schedules:",
    ]
    lines += [f"  s{i:03d}: {{service: analytics, bucket: primary, every: 1h}}" for i in range(schedules)]
    path.write_text("\n".join(lines) + "\n")


def synthesise(s3: Any, bucket: str, schedules: int, per_schedule: int, with_index: bool) -> datetime:
    puts: list[tuple[str, bytes]] = []
    indexes: dict[str, dict[str, Any]] = {}
    for i in range(schedules):
        sched = f"s{i:03d}"
        for j in range(per_schedule):
            slot = START + timedelta(hours=j)
            name = slot_name(slot)
            folder = f"bench/analytics/{sched}/{name}/"
            puts += [(folder + ".backup", MANIFEST), (folder + "data/x.bin", b"abc")]
            puts.append((folder + "reconciler.json", json.dumps(sidecar("analytics", sched, name, slot)).encode()))
        indexes[sched] = {}

    etags: dict[str, str] = {}

    def put(item: tuple[str, bytes]) -> None:
        resp = s3.put_object(Bucket=bucket, Key=item[0], Body=item[1])
        if item[0].endswith("reconciler.json"):
            etags[item[0]] = resp["ETag"].strip('"')

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(put, puts))
    if with_index:
        for i in range(schedules):
            sched = f"s{i:03d}"
            entries = {}
            for j in range(per_schedule):
                slot = START + timedelta(hours=j)
                name = slot_name(slot)
                key = f"bench/analytics/{sched}/{name}/reconciler.json"
                entries[name] = IndexEntry(etags[key], sidecar("analytics", sched, name, slot))
            s3.put_object(
                Bucket=bucket,
                Key=f"bench/.reconciler/index/analytics/{sched}.json",
                Body=ScheduleIndex("analytics", sched, entries).encode(),
            )
    return START + timedelta(hours=per_schedule - 1, minutes=30)


def best(fn: Any, n: int = 3) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(n):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def plan_once(cfg: Path, now: datetime) -> tuple[int, int]:
    STATS.reset()
    config = load_config(str(cfg))
    observed = observe(config, Connections(config), now)
    p = build_plan(config, observed, now)
    return STATS.total(), sum(len(inv.backups) for inv in observed.schedules.values()) + len(p.actions) * 0


def floor_warm(s3: Any, bucket: str, schedules: int) -> int:
    def one(i: int) -> int:
        n = 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"bench/analytics/s{i:03d}/"):
            n += len(page.get("Contents", []))
        return n

    with ThreadPoolExecutor(8) as pool:
        return sum(pool.map(one, range(schedules)))


def floor_cold(s3: Any, bucket: str, schedules: int) -> int:
    keys: list[str] = []
    for i in range(schedules):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"bench/analytics/s{i:03d}/"):
            keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith("reconciler.json")]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: s3.get_object(Bucket=bucket, Key=k)["Body"].read(), keys))
    return len(keys)


def peak_rss_kib(cfg: Path, now: datetime, env: dict[str, str]) -> int:
    with tempfile.NamedTemporaryFile(suffix=".txt", delete=False) as out:
        pass
    cmd = [
        "/usr/bin/time",
        "-f",
        "%M",
        "-o",
        out.name,
        sys.executable,
        "-m",
        "reconciler",
        "plan",
        "-f",
        str(cfg),
        "--now",
        now.isoformat(),
    ]
    subprocess.run(cmd, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return int(Path(out.name).read_text().strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backups", type=int, default=10000)
    ap.add_argument("--schedules", type=int, default=100)
    ap.add_argument("--rss-backups", type=int, default=0, help="also measure peak RSS at this many backups")
    args = ap.parse_args()
    per = max(1, args.backups // args.schedules)
    os.environ.update(AWS_EC2_METADATA_DISABLED="true")
    server = MotoServer()
    server.start()
    try:
        s3 = server.client()
        os.environ.update(BENCH_KEY=server.access_key, BENCH_SECRET=server.secret_key)
        tmp = Path(tempfile.mkdtemp())
        print(f"machine: {os.cpu_count()} cores, {os.uname().machine}; store: moto S3 server on loopback")
        print(f"size: {per * args.schedules} backups over {args.schedules} schedules ({per} each)")

        s3.create_bucket(Bucket="bench-cold")
        t = time.perf_counter()
        now = synthesise(s3, "bench-cold", args.schedules, per, with_index=False)
        print(f"synthesised in {time.perf_counter() - t:.1f}s")
        cold_cfg = tmp / "cold.yaml"
        write_config(cold_cfg, "bench-cold", server.endpoint, args.schedules)
        cold_t, (cold_req, seen) = best(lambda: plan_once(cold_cfg, now))
        assert seen == per * args.schedules, seen
        cold_floor, _ = best(lambda: floor_cold(s3, "bench-cold", args.schedules))

        s3.create_bucket(Bucket="bench-warm")
        synthesise(s3, "bench-warm", args.schedules, per, with_index=True)
        warm_cfg = tmp / "warm.yaml"
        write_config(warm_cfg, "bench-warm", server.endpoint, args.schedules)
        warm_t, (warm_req, seen) = best(lambda: plan_once(warm_cfg, now))
        assert seen == per * args.schedules, seen
        warm_floor, _ = best(lambda: floor_warm(s3, "bench-warm", args.schedules))

        per_sched = (warm_req - 2) / args.schedules  # HeadBucket and the lock are per bucket
        print(
            f"cold plan: {cold_t:.3f}s, {cold_req} requests; floor (listing + GET per backup, 16-way): "
            f"{cold_floor:.3f}s; ratio {cold_t / cold_floor:.2f} (target <= 1.5)"
        )
        print(
            f"warm plan: {warm_t:.3f}s, {warm_req} requests = {per_sched:.2f} per schedule + 2 per bucket "
            f"(target <= 2 + lock); floor (listing, 8-way): {warm_floor:.3f}s; ratio {warm_t / warm_floor:.2f} "
            f"(target <= 1.3)"
        )

        if args.rss_backups:
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            s3.create_bucket(Bucket="bench-empty")
            empty_cfg = tmp / "empty.yaml"
            write_config(empty_cfg, "bench-empty", server.endpoint, args.schedules)
            base = peak_rss_kib(empty_cfg, now, env)
            s3.create_bucket(Bucket="bench-big")
            big_per = max(1, args.rss_backups // args.schedules)
            big_now = synthesise(s3, "bench-big", args.schedules, big_per, with_index=True)
            big_cfg = tmp / "big.yaml"
            write_config(big_cfg, "bench-big", server.endpoint, args.schedules)
            big = peak_rss_kib(big_cfg, big_now, env)
            print(
                f"peak RSS: empty bucket {base / 1024:.0f} MiB, {big_per * args.schedules} backups "
                f"{big / 1024:.0f} MiB: growth {(big - base) / 1024:.0f} MiB (target <= 200)"
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
