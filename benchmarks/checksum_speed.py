"""Throughput of ClickHouse's backup-file checksum (reconciler.checksum).

    python benchmarks/checksum_speed.py [--c-mib 256] [--python-mib 2] [--threads 4]

Prints MB/s (10^6 bytes per second) of the C extension over 256 MiB of random bytes in memory
(one shot, incrementally in 1 MiB updates, and in parallel threads: the extension releases the
GIL), and of the pure-Python fallback over 2 MiB.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reconciler.clickhouse import checksum  # noqa: E402

MiB = 1 << 20


def best_of(runs: int, fn: Callable[[], object]) -> float:
    """The shortest of ``runs`` timings of ``fn()``, in seconds."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def report(label: str, nbytes: int, seconds: float) -> None:
    print(f"{label:<44} {nbytes / MiB:8.0f} MiB  {seconds:8.3f} s  {nbytes / seconds / 1e6:10.1f} MB/s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--c-mib", type=int, default=256)
    ap.add_argument("--python-mib", type=int, default=2)
    ap.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1))
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)

    print(f"backend in use: {checksum.BACKEND}; available: {', '.join(checksum.available_backends())}")
    if "c" in checksum.available_backends():
        data = os.urandom(args.c_mib * MiB)
        view = memoryview(data)
        report("C, one shot", len(data), best_of(args.runs, lambda: checksum.checksum_of(data, "c")))

        def incremental() -> str:
            h = checksum.new_hasher("c")
            for i in range(0, len(view), MiB):
                h.update(view[i : i + MiB])
            return h.hexdigest()

        report("C, 1 MiB updates", len(data), best_of(args.runs, incremental))
        n = args.threads
        part = len(data) // n
        parts = [view[i * part : (i + 1) * part] for i in range(n)]
        with ThreadPoolExecutor(n) as pool:

            def parallel() -> list[str]:
                return list(pool.map(lambda p: checksum.checksum_of(p, "c"), parts))

            report(f"C, {n} threads (aggregate)", part * n, best_of(args.runs, parallel))
    else:
        print("C extension not built (pip install -e .)")

    small = os.urandom(args.python_mib * MiB)
    report("pure Python, one shot", len(small), best_of(1, lambda: checksum.checksum_of(small, "python")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
