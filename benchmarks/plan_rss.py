"""Peak memory of a plan against the number of backups (issue 14 target: at 100,000 backups of
2,000+ files the plan's peak RSS is <= 300 MB, growing with backups, not files).

    .venv/bin/python benchmarks/plan_rss.py --backups 100000 --schedules 100

Each measurement runs in a fresh subprocess. The bucket is an in-memory store handed to the
reconciler through its I/O seam (``Connections(store_factory=...)``), so that what is measured is
the reconciler, not an S3 server, and 100,000 backups need no minutes of uploads: the store
(benchmarks/shape.py) serves every backup with the key layout of a real BACKUP of wide tables
(2,357 objects and the sidecar) and each schedule's index, made when read, never held. Printed:
the process's peak RSS (the target), and its growth during observe + plan over the RSS just
before, for N backups and for an empty bucket.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def child(backups: int, schedules: int) -> None:
    from plan_scale import unreachable, write_config
    from shape import VirtualBackups, store_factory

    from reconciler.connections import Connections
    from reconciler.observe import observe
    from reconciler.plan import build_plan

    virtual = VirtualBackups()
    per = backups // schedules if backups else 0
    now = datetime(2026, 1, 1)
    for i in range(schedules):
        now = virtual.add(f"s{i:03d}", per)
    config = write_config(Path(os.environ["BENCH_CFG"]), schedules)
    conns = Connections(config, store_factory=store_factory(virtual), clickhouse_factory=unreachable)  # type: ignore[arg-type]
    before = rss_kib()
    observed = observe(config, conns, now)
    plan = build_plan(config, observed, now)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seen = sum(len(inv.backups) for inv in observed.schedules.values())
    assert seen == per * schedules, seen
    print(
        json.dumps(
            {
                "before_kib": before,
                "peak_kib": peak,
                "backups": seen,
                "files": len(virtual.keys) + 1,
                "actions": len(plan.actions),
            }
        )
    )


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
    print(f"growth over the empty plan: {grow_full - grow_empty:.0f} MiB")
    print(
        f"peak RSS at {full['backups']} backups of {full['files']} files: "
        f"{full['peak_kib'] / 1024:.0f} MiB (target <= 300)"
    )


if __name__ == "__main__":
    main()
