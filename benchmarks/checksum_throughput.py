"""Checksum verification throughput against raw download throughput from the same store, in one
run (issue target: verification >= 80% of raw download).

    .venv/bin/python benchmarks/checksum_throughput.py [--mib 256] [--files 8]

Starts moto's S3 server on a free loopback port, uploads FILES random files totalling MIB, then
reads them all back (8 at a time, 1 MiB chunks, discarding) and verifies them with the
reconciler's checksums level (8 at a time, hashing), and prints both rates and their ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reconciler.apply.checksums import BackupFiles, verify  # noqa: E402
from reconciler.clickhouse.checksum import BACKEND, checksum_of  # noqa: E402
from reconciler.clickhouse.manifest import Manifest, ManifestFile  # noqa: E402
from reconciler.model import Bucket, Credentials, Provider  # noqa: E402
from reconciler.stores import open_store  # noqa: E402
from tests.support.servers import MotoServer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--files", type=int, default=8)
    args = ap.parse_args()
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    server = MotoServer()
    server.start()
    try:
        server.create_bucket("bench")
        bucket = Bucket(
            "b",
            Provider.S3,
            "bench",
            endpoint=server.endpoint,
            region="us-east-1",
            credentials=Credentials(access_key_id=server.access_key, secret_access_key=server.secret_key),
        )
        store = open_store(bucket)
        size = args.mib * (1 << 20) // args.files
        files = []
        for i in range(args.files):
            data = os.urandom(size)
            store.write(f"b/data/f{i}.bin", data)
            files.append(ManifestFile(name=f"data/f{i}.bin", size=size, checksum=checksum_of(data)))
        manifest = Manifest(1, None, None, None, None, None, tuple(files))
        backup = BackupFiles("b/", manifest, {f.name: f.size for f in files})

        def download(key: str) -> int:
            n = 0
            with closing(store.open(key)) as s:
                while chunk := s.read(1 << 20):
                    n += len(chunk)
            return n

        t = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            raw_bytes = sum(pool.map(download, [f"b/{f.name}" for f in files]))
        raw = time.perf_counter() - t
        t = time.perf_counter()
        problems, checked, verified_bytes = verify(store, backup)
        ver = time.perf_counter() - t
        assert not problems and checked == args.files and verified_bytes == raw_bytes, problems
        mb = raw_bytes / 1e6
        print(f"machine: {os.cpu_count()} cores; hasher backend: {BACKEND}; store: moto S3 server on loopback")
        print(f"data: {args.files} files x {size / (1 << 20):.1f} MiB = {mb:.0f} MB")
        print(f"raw download:         {mb / raw:8.1f} MB/s ({raw:.2f} s)")
        print(f"checksum verification: {mb / ver:8.1f} MB/s ({ver:.2f} s)")
        print(f"ratio: {raw / ver:.2f} (target >= 0.80)")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
