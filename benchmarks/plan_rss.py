"""Peak memory of a plan against the number of backups (issue 8 target: at 100,000 backups the
plan's peak RSS grows by <= 200 MB over a plan of an empty bucket).

    .venv/bin/python benchmarks/plan_rss.py --backups 100000 --schedules 100

Each measurement runs in a fresh subprocess. The bucket is an in-memory store handed to the
reconciler through its I/O seam (``Connections(store_factory=...)``), so that what is measured is
the reconciler, not an S3 server, and 100,000 backups need no minutes of uploads: the store
serves the same listing pages and objects (a sidecar, a tiny manifest and a data file per
backup, and each schedule's index). The figure is the process's peak RSS during observe + plan
minus its RSS just before (after the store was filled), for N backups and for an empty bucket.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def child(backups: int, schedules: int) -> None:
    import hashlib

    from reconciler.bucket.index import IndexEntry, ScheduleIndex
    from reconciler.config import load_config
    from reconciler.connections import Connections
    from reconciler.model import UTC
    from reconciler.model.slots import slot_name
    from reconciler.observe import observe
    from reconciler.plan import build_plan
    from reconciler.stores.base import ObjectInfo

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from plan_scale import MANIFEST, sidecar, write_config

    start = datetime(2015, 1, 1, tzinfo=UTC)
    objects: dict[str, bytes] = {}
    per = backups // schedules if backups else 0
    for i in range(schedules):
        sched = f"s{i:03d}"
        entries = {}
        for j in range(per):
            slot = start + timedelta(hours=j)
            name = slot_name(slot)
            folder = f"bench/analytics/{sched}/{name}/"
            sc = json.dumps(sidecar("analytics", sched, name, slot)).encode()
            objects[folder + ".backup"] = MANIFEST
            objects[folder + "data/x.bin"] = b"abc"
            objects[folder + "reconciler.json"] = sc
            entries[name] = IndexEntry(hashlib.md5(sc).hexdigest(), json.loads(sc))
        if per:
            objects[f"bench/.reconciler/index/analytics/{sched}.json"] = ScheduleIndex(
                "analytics", sched, entries
            ).encode()
    keys = sorted(objects)
    when = datetime(2026, 1, 1, tzinfo=UTC)

    class MemoryStore:
        description = "memory://bench"

        def bucket_exists(self) -> bool:
            return True

        def list(self, prefix: str) -> Iterator[ObjectInfo]:
            import bisect

            i = bisect.bisect_left(keys, prefix)
            while i < len(keys) and keys[i].startswith(prefix):
                k = keys[i]
                yield ObjectInfo(k, len(objects[k]), hashlib.md5(objects[k]).hexdigest(), when)
                i += 1

        def list_folders(self, prefix: str) -> list[str]:
            return sorted(
                {o.key[len(prefix) :].split("/")[0] for o in self.list(prefix) if "/" in o.key[len(prefix) :]}
            )

        def read(self, key: str) -> tuple[bytes, str] | None:
            data = objects.get(key)
            return None if data is None else (data, hashlib.md5(data).hexdigest())

        def write(self, key: str, data: bytes) -> str:
            raise AssertionError("a plan writes nothing")

        create = replace = delete = open = write  # type: ignore[assignment]

        def delete_many(self, keys: Iterable[str]) -> int:
            raise AssertionError("a plan deletes nothing")

        def abort_uploads(self, prefix: str) -> int:
            return 0

    cfg = Path(os.environ["BENCH_CFG"])
    write_config(cfg, "bench", "http://127.0.0.1:9", schedules)
    os.environ.update(BENCH_KEY="k", BENCH_SECRET="s")
    config = load_config(str(cfg))
    conns = Connections(config, store_factory=lambda b: MemoryStore())  # type: ignore[arg-type,return-value]
    now = start + timedelta(hours=max(per, 1) - 1, minutes=30)
    before = rss_kib()
    observed = observe(config, conns, now)
    plan = build_plan(config, observed, now)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seen = sum(len(inv.backups) for inv in observed.schedules.values())
    assert seen == per * schedules, seen
    print(json.dumps({"before_kib": before, "peak_kib": peak, "backups": seen, "actions": len(plan.actions)}))


def measure(backups: int, schedules: int) -> dict[str, int]:
    env = {**os.environ, "BENCH_CFG": f"/tmp/plan_rss_{os.getpid()}_{backups}.yaml", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(backups), str(schedules)],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(int(sys.argv[2]), int(sys.argv[3]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--backups", type=int, default=100000)
    ap.add_argument("--schedules", type=int, default=100)
    args = ap.parse_args()
    empty = measure(0, args.schedules)
    full = measure(args.backups, args.schedules)
    grow_empty = (empty["peak_kib"] - empty["before_kib"]) / 1024
    grow_full = (full["peak_kib"] - full["before_kib"]) / 1024
    print(f"machine: {os.cpu_count()} cores; store: in-memory through the store seam; service: unreachable (no chdb)")
    print(
        f"plan of an empty bucket: peak RSS {empty['peak_kib'] / 1024:.0f} MiB, +{grow_empty:.0f} MiB during the plan"
    )
    print(
        f"plan of {full['backups']} backups over {args.schedules} schedules: "
        f"peak RSS {full['peak_kib'] / 1024:.0f} MiB, "
        f"+{grow_full:.0f} MiB during the plan"
    )
    print(f"growth over the empty plan: {grow_full - grow_empty:.0f} MiB (target <= 200)")


if __name__ == "__main__":
    main()
