"""Copy throughput of the reconciler's streamed copy against raw download + upload of the same
files in the same run (issue 16 target: >= 0.8x), and peak memory while one large file streams
(target: bounded, < 200 MiB RSS for a 1 GiB file).

    .venv/bin/python benchmarks/copy_throughput.py [--tables 5 --parts 10 --columns 20]
        [--large 2 --large-mib 128] [--rss-mib 1024] [--target azurite|moto]

Starts moto's S3 server (the source) and Azurite (the target; ``--target moto``: a second bucket
on the same moto server, the copy forced to stream) on free loopback ports, and writes into the
source a backup of realistic shape: the key layout of a real BACKUP of wide MergeTree tables
(``shape.backup_files``: two files per column and part plus a few per part, 2,356 small files
at the defaults) with random content, plus ``--large`` large files, its manifest (with
ClickHouse's checksums) and its sidecar. Then, in this order:

1. peak RSS: one backup holding one file of ``--rss-mib`` MiB (written to the source streamed,
   never held whole), copied by ``run_copy`` at checksums level while a thread samples this
   process's RSS every 20 ms; first, so that nothing larger was ever held by the process;
2. raw: every file of the backup read whole from the source and written whole to the target,
   8 at a time (what a script with the SDKs would do), timed;
3. copy: the reconciler's copy action (``run_copy``: sidecar first, files streamed 8 at a time in
   1 MiB reads, uploads in parts, ClickHouse's checksum recomputed as the bytes pass, the manifest
   last), timed, into another folder of the same target.

Prints the figures and the ratio; asserts only that the copy succeeded and verified. Timing is
never asserted (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from shape import backup_files  # noqa: E402

from reconciler.apply.context import ApplyContext  # noqa: E402
from reconciler.apply.copy import run_copy  # noqa: E402
from reconciler.bucket import layout  # noqa: E402
from reconciler.bucket.sidecar import Sidecar, SidecarState  # noqa: E402
from reconciler.clickhouse.checksum import BACKEND, new_hasher  # noqa: E402
from reconciler.connections import Connections  # noqa: E402
from reconciler.console import NullConsole  # noqa: E402
from reconciler.model import (  # noqa: E402
    UTC,
    Bucket,
    Config,
    CopyAction,
    Credentials,
    OutcomeStatus,
    Provider,
    Schedule,
    Scope,
    ValidationLevel,
)
from reconciler.stores.s3 import S3Store  # noqa: E402
from tests.support.servers import MotoServer  # noqa: E402
from tests.support.servers_azure import AzuriteServer  # noqa: E402

MIB = 1 << 20
SLOT = datetime(2026, 11, 25, 3, tzinfo=UTC)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def hwm_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


class RandomStream:
    """``size`` random bytes, made as they are read (never held whole), hashed as ClickHouse does."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.hasher = new_hasher()

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = os.urandom(n)
        self.left -= n
        self.hasher.update(data)
        return data


def checksum(data: bytes) -> str:
    h = new_hasher()
    h.update(data)
    return h.hexdigest()


def manifest_xml(files: list[tuple[str, int, str]]) -> bytes:
    items = "".join(f"<file><name>{n}</name><size>{s}</size><checksum>{c}</checksum></file>" for n, s, c in files)
    return (
        "<config><version>1</version><timestamp>2026-11-25 03:00:00</timestamp><uuid>bench</uuid>"
        f"<contents>{items}</contents></config>"
    ).encode()


def sidecar(bucket: Bucket, folder: str, backup: str, files: int, size: int) -> bytes:
    return Sidecar(
        service="analytics",
        schedule="daily",
        backup=backup,
        slot=SLOT,
        kind="full",
        base=None,
        scope=Scope(databases=("shop",)),
        location=bucket.url(folder),
        operation_id=f"bench-{backup}",
        state=SidecarState.COMPLETE,
        num_files=files,
        total_size=size,
        stored_files=files + 1,
        stored_bytes=size,
    ).encode()


def copy_action(src: Bucket, dst: Bucket, backup: str, size: int) -> CopyAction:
    def loc(b: Bucket) -> str:
        return b.url(layout.backup_prefix(b, "analytics", "daily", backup))

    return CopyAction(
        id=f"copy/analytics/daily/{backup}@{dst.name}",
        service="analytics",
        schedule="daily",
        bucket=dst.name,
        backup=backup,
        source_bucket=src.name,
        source_location=loc(src),
        location=loc(dst),
        kind="full",
        base=None,
        level=ValidationLevel.CHECKSUMS,
        method="streamed",
        size=size,
        reason="benchmark",
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tables", type=int, default=5)
    ap.add_argument("--parts", type=int, default=10)
    ap.add_argument("--columns", type=int, default=20)
    ap.add_argument("--large", type=int, default=2, help="large files besides the small ones")
    ap.add_argument("--large-mib", type=int, default=128)
    ap.add_argument("--rss-mib", type=int, default=1024, help="the file streamed while RSS is sampled")
    ap.add_argument("--target", choices=("azurite", "moto"), default="azurite")
    args = ap.parse_args()
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

    moto = MotoServer()
    moto.start()
    azurite = AzuriteServer() if args.target == "azurite" else None
    try:
        moto.create_bucket("bench-src")
        s3_creds = Credentials(access_key_id=moto.access_key, secret_access_key=moto.secret_key)
        src_bucket = Bucket("src", Provider.S3, "bench-src", "p", "us-east-1", moto.endpoint, s3_creds)
        if azurite is not None:
            azurite.start()
            azurite.create_container("bench-dst")
            az_creds = Credentials(account_name=azurite.account_name, account_key=azurite.account_key)
            dst_bucket = Bucket("dst", Provider.AZURE, "bench-dst", "p", None, azurite.endpoint, az_creds)
        else:
            moto.create_bucket("bench-dst")
            dst_bucket = Bucket("dst", Provider.S3, "bench-dst", "p", "us-east-1", moto.endpoint, s3_creds)
        schedule = Schedule(name="daily", service="analytics", bucket="src", scope=Scope(databases=("shop",)))
        config = Config(
            path="bench.yaml",
            services={},
            buckets={"src": src_bucket, "dst": dst_bucket},
            schedules={"daily": schedule},
            restores={},
            digest="sha256:" + "0" * 64,
        )
        conns = Connections(config)
        src, dst = conns.store("src"), conns.store("dst")
        ctx = ApplyContext(config, conns, NullConsole(), "bench-run")

        def folder(bucket: Bucket, backup: str) -> str:
            return layout.backup_prefix(bucket, "analytics", "daily", backup)

        # 1. peak RSS while one large file streams
        rss_backup = "20261125T030000Z.9"
        big = args.rss_mib * MIB
        f = folder(src_bucket, rss_backup)
        stream = RandomStream(big)
        # moto joins the parts of a large upload slowly: the seeding waits longer than a copy would
        seeding = S3Store(src_bucket, read_timeout=600.0)
        seeding.write_from(f + "data/shop/big/all_1_1_0/c00.bin", stream, big)
        src.write(f + ".backup", manifest_xml([("data/shop/big/all_1_1_0/c00.bin", big, stream.hasher.hexdigest())]))
        src.write(f + layout.SIDECAR, sidecar(src_bucket, f, rss_backup, 1, big))
        baseline = rss_bytes()
        peak = [baseline]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], rss_bytes())
                time.sleep(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t = time.perf_counter()
        outcome = run_copy(ctx, copy_action(src_bucket, dst_bucket, rss_backup, big))
        rss_seconds = time.perf_counter() - t
        done.set()
        sampler.join()
        assert outcome.status == OutcomeStatus.DONE, outcome.detail

        # the backup of realistic shape: thousands of small files and a few large ones
        backup = "20261125T030000Z"
        f = folder(src_bucket, backup)
        shape = [(k, n) for k, n in backup_files(args.tables, args.parts, args.columns) if k != ".backup"]
        shape += [(f"data/shop/t0/all_1_1_0/large{i}.bin", args.large_mib * MIB) for i in range(args.large)]
        listed: list[tuple[str, int, str]] = []

        def put(item: tuple[str, int]) -> tuple[str, int, str]:
            key, n = item
            data = os.urandom(n)
            src.write(f + key, data)
            return key, n, checksum(data)

        with ThreadPoolExecutor(16) as pool:
            listed = list(pool.map(put, shape))
        total = sum(n for _, n, _ in listed)
        src.write(f + ".backup", manifest_xml(listed))
        src.write(f + layout.SIDECAR, sidecar(src_bucket, f, backup, len(listed), total))

        # 2. raw download + upload of the same files (whole objects, 8 at a time)
        raw_folder = "raw/" + f

        def raw_one(item: tuple[str, int, str]) -> int:
            got = src.read(f + item[0])
            assert got is not None
            dst.write(raw_folder + item[0], got[0])
            return len(got[0])

        t = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            raw_bytes = sum(pool.map(raw_one, listed))
        raw = time.perf_counter() - t
        assert raw_bytes == total

        # 3. the reconciler's streamed copy, verified at checksums level as it passes
        t = time.perf_counter()
        outcome = run_copy(ctx, copy_action(src_bucket, dst_bucket, backup, total))
        copied = time.perf_counter() - t
        assert outcome.status == OutcomeStatus.DONE, outcome.detail
        facts: dict[str, Any] = dict(outcome.facts or {})
        assert facts["method"] == "streamed" and facts["level"] == "checksums", facts

        mb = total / 1e6
        target = "Azurite (Azure emulator)" if azurite else "a second bucket of the same moto server"
        print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; hasher: {BACKEND}")
        print(f"source: moto S3 server on loopback; target: {target}")
        small = len(listed) - args.large
        print(
            f"backup: {len(listed)} files, {mb:.0f} MB ({small} small files of a "
            f"{args.tables}x{args.parts}x{args.columns} shape, {args.large} x {args.large_mib} MiB)"
        )
        print(f"raw download + upload:      {mb / raw:8.1f} MB/s ({raw:.2f} s)")
        print(f"reconciler copy (streamed): {mb / copied:8.1f} MB/s ({copied:.2f} s), checksums verified as it passed")
        print(f"ratio copy/raw: {raw / copied:.2f} (target >= 0.80)")
        print(
            f"peak RSS streaming one {args.rss_mib} MiB file: {peak[0] / MIB:.0f} MiB "
            f"(before: {baseline / MIB:.0f} MiB, +{(peak[0] - baseline) / MIB:.0f} MiB; VmHWM so far "
            f"{hwm_bytes() / MIB:.0f} MiB; {big / 1e6 / rss_seconds:.1f} MB/s) (target < 200 MiB)"
        )
    finally:
        if azurite is not None:
            azurite.cleanup()
        moto.stop()


if __name__ == "__main__":
    main()
