"""Planning cost against the number of backups, at realistic file counts (issues 8 and 14).

    .venv/bin/python benchmarks/plan_scale.py --sizes 10,100,1000 --schedules 4   # the figures
    .venv/bin/python benchmarks/plan_scale.py --sizes 10,50 --schedules 2         # the CI smoke size
    .venv/bin/python benchmarks/plan_scale.py --sizes 1000,3000 --schedules 4 --no-full \
        --retention '{keep_daily: 7, keep_weekly: 4}'                            # a plan that prunes most

Every backup has the key layout of a real BACKUP of wide tables (benchmarks/shape.py: 2,357
objects), replicated through the store seam (``Connections(store_factory=...)``) with S3's
paging, so that 1,000 backups per schedule (2.4 million keys) need no hour of uploads and the
request counts are a real bucket's. Per size, in this process:

- warm fast plan (``--refresh fast``, the index in place, made once as a bucket stores it):
  storage requests per schedule, and its wall time against the floor: the bare requests of the
  budget sent as the plan sends them (the bucket check and the lock read beside every schedule's
  delimiter listing of its folder names and the read of its index, 8 schedules at a time), on
  the same store, in the same run;
- cold fast plan (no index): every folder costs its top-level listing and its sidecar;
- full refresh (``drift``'s): every object listed.

Each timed as the best of 3. The service is unreachable on purpose (no chdb: its DSN's port is
closed), as a plan of a service that is down still plans its buckets.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from shape import VirtualBackups, store_factory  # noqa: E402

from reconciler import errors  # noqa: E402
from reconciler.bucket import layout  # noqa: E402
from reconciler.config import load_config  # noqa: E402
from reconciler.connections import Connections  # noqa: E402
from reconciler.model import Config, ObserveOptions, Refresh  # noqa: E402
from reconciler.observe import observe  # noqa: E402
from reconciler.plan import build_plan  # noqa: E402
from reconciler.stores.stats import STATS  # noqa: E402

#: seconds per request (--latency-ms): the store seam answers at once, a remote store does not
LATENCY = 0.0


def write_config(path: Path, schedules: int, retention: str | None = None) -> Config:
    lines = [
        "version: 1",
        "services:",
        "  analytics: {dsn: 'http://default@127.0.0.1:9'}",  # unreachable: no chdb here
        "buckets:",
        "  primary: {provider: s3, bucket: bench-bucket, prefix: bench, region: us-east-1,",
        "            credentials: {access_key_id: AKIAEXAMPLE, secret_access_key: '${BENCH_SECRET}'}}",
        "schedules:",
    ]
    extra = f", retention: {retention}" if retention else ""
    lines += [f"  s{i:03d}: {{service: analytics, bucket: primary, every: 1h{extra}}}" for i in range(schedules)]
    path.write_text("\n".join(lines) + "\n")
    os.environ.setdefault("BENCH_SECRET", "not-a-secret")
    return load_config(str(path))


def unreachable(service: object) -> object:
    raise errors.ServiceUnreachable("the benchmark runs no ClickHouse")


def best(fn: Any, n: int = 3) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(n):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def plan_once(config: Config, virtual: VirtualBackups, now: datetime, refresh: Refresh) -> tuple[int, int, str]:
    conns = Connections(config, store_factory=store_factory(virtual, latency=LATENCY), clickhouse_factory=unreachable)  # type: ignore[arg-type]
    STATS.reset()
    observed = observe(config, conns, now, options=ObserveOptions(refresh))
    build_plan(config, observed, now)
    seen = sum(len(inv.backups) for inv in observed.schedules.values())
    return STATS.total(), seen, STATS.line()


def prunes(config: Config, virtual: VirtualBackups, now: datetime) -> int:
    conns = Connections(config, store_factory=store_factory(virtual), clickhouse_factory=unreachable)  # type: ignore[arg-type]
    plan = build_plan(config, observe(config, conns, now), now)
    return sum(1 for a in plan.actions if a.type.value == "prune")


def floor(config: Config, virtual: VirtualBackups) -> int:
    """The bare requests a fast plan cannot do without, sent as the plan sends them: per bucket
    the bucket check and the read of the lock, beside the schedules' reads; per schedule the
    delimiter listing of its folder names beside the read of its index, 8 schedules at a time."""
    bucket = config.buckets["primary"]
    store = store_factory(virtual, latency=LATENCY)(bucket)

    def one(schedule: str) -> int:
        with ThreadPoolExecutor(1) as side:
            index = side.submit(store.read, virtual.index_key(schedule))
            names = store.list_folders(virtual.schedule_prefix(schedule))
            got = index.result()
        return len(names) + (len(got[0]) if got else 0)

    with ThreadPoolExecutor(2) as probes, ThreadPoolExecutor(8) as pool:
        exists = probes.submit(store.bucket_exists)
        lock = probes.submit(store.read, layout.lock_key(bucket))
        total = sum(pool.map(one, sorted(virtual.schedules)))
        assert exists.result() and lock.result() is None
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10,100,1000", help="backups per schedule, comma-separated")
    ap.add_argument("--schedules", type=int, default=4)
    ap.add_argument("--latency-ms", type=float, default=20.0, help="assumed time of one store request")
    ap.add_argument("--no-full", action="store_true", help="skip the largest full refresh (slow)")
    ap.add_argument(
        "--retention",
        help="each schedule's retention, a YAML mapping (e.g. '{keep_daily: 7}'): the warm plan then prunes "
        "what it does not keep (none by default: everything is kept)",
    )
    args = ap.parse_args()
    global LATENCY
    LATENCY = args.latency_ms / 1000
    tmp = Path(tempfile.mkdtemp())
    config = write_config(tmp / "bench.yaml", args.schedules, args.retention)
    print(
        f"machine: {os.cpu_count()} cores, {os.uname().machine}; store: realistic backups through the store seam, "
        f"{args.latency_ms:g} ms a request"
    )
    for size in (int(x) for x in args.sizes.split(",")):
        virtual = VirtualBackups(keep_index=True)
        now = datetime.now()
        for i in range(args.schedules):
            now = virtual.add(f"s{i:03d}", size)
        files = len(virtual.keys) + 1  # and the sidecar
        print(
            f"-- {size} backups x {args.schedules} schedules, {files} objects a backup "
            f"({size * args.schedules * files:,} objects)"
        )
        warm_t, (warm_req, seen, line) = best(lambda v=virtual, t=now: plan_once(config, v, t, Refresh.FAST))
        if args.retention:
            print(f"warm fast plan prunes {prunes(config, virtual, now)} backups (--retention {args.retention})")
        assert seen == size * args.schedules, seen
        floor_t, _ = best(lambda v=virtual: floor(config, v))
        per = (warm_req - 2) / args.schedules  # HeadBucket and the lock are per bucket
        budget = 2 + math.ceil(size / 1000) - 1
        print(
            f"warm fast plan: {warm_req} requests = {per:.2f} per schedule + 2 per bucket (target <= {budget}); {line}"
        )
        print(
            f"warm fast plan: {warm_t:.3f}s; floor (bucket check, lock, delimiter listings and index reads, "
            f"as the plan sends them): {floor_t:.3f}s; "
            f"ratio {warm_t / floor_t:.2f} (target <= 1.3)"
        )
        virtual.with_index = False
        cold_t, (cold_req, seen, _) = best(lambda v=virtual, t=now: plan_once(config, v, t, Refresh.FAST), 1)
        listings = args.schedules * math.ceil(size / 1000)
        print(
            f"cold fast plan (no index): {cold_t:.3f}s, {cold_req} requests = "
            f"{(cold_req - 2 - args.schedules - listings) / (size * args.schedules):.2f} per backup "
            f"+ the listings and index reads (target <= 2 per backup)"
        )
        virtual.with_index = True
        if args.no_full and size == max(int(x) for x in args.sizes.split(",")):
            continue
        full_t, (full_req, seen, _) = best(lambda v=virtual, t=now: plan_once(config, v, t, Refresh.FULL), 1)
        print(
            f"full refresh (drift's): {full_t:.3f}s, {full_req} requests "
            f"({(full_req - 2) / args.schedules:.0f} per schedule: one per 1,000 objects)"
        )


if __name__ == "__main__":
    main()
