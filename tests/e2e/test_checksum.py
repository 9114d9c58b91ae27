"""ClickHouse's backup-file checksum (reconciler.checksum), proved against manifests ClickHouse wrote.

The session's chdb engine backs up a database to moto's S3 server (a full backup, an incremental
one on top of it, and a whole-service one); every file of each manifest is then rebuilt from the
stored objects and its checksum recomputed, with the C extension and with the pure-Python code,
and compared with the manifest's ``<checksum>`` (and ``<base_checksum>``).

The tables are made so that the backups hold files of chosen sizes around the 2048-byte chaining
block: a ``UInt8 CODEC(NONE)`` column of n rows in a wide part is a ``.bin`` file of exactly
n + 25 bytes (one compressed block: a 16-byte checksum and a 9-byte header, then the bytes).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from reconciler.clickhouse import ClickHouse, checksum
from reconciler.clickhouse._cityhash import pure
from reconciler.clickhouse.manifest import Manifest, ManifestFile, parse_manifest
from reconciler.clickhouse.sql import backup_sql, destination_sql
from reconciler.model import Bucket, Credentials, Provider, Scope
from tests.support.servers import MotoServer

BACKENDS: tuple[checksum.BackendName, ...] = ("c", "python")

#: .bin sizes to produce: both sides of one, two and three blocks, and tails of every CityHash path
#: (a 1-byte tail: CityMurmur <= 16; 100: CityMurmur > 16; 200 and 130: the >= 128 path with a tail)
BIN_SIZES = (1000, 2047, 2048, 2049, 2048 + 100, 2048 + 200, 4095, 4096, 4097, 3 * 2048 + 130)
BIN_OVERHEAD = 25
BIG_ROWS, BIG_WIDTH = 12_000, 100  # a String column of random bytes: about 1.2 MB, two compressed blocks

MiB = 1 << 20


# -- the backups ------------------------------------------------------------------------------


@dataclass
class Backup:
    folder: str
    manifest: Manifest
    base: Backup | None = None
    objects: dict[str, bytes] = field(default_factory=dict)  # stored objects, by name in the folder
    listing: set[str] = field(default_factory=set)  # every object name in the folder


@dataclass
class Backups:
    db: str
    full: Backup
    incremental: Backup
    whole: Backup

    def all(self) -> list[Backup]:
        return [self.full, self.incremental, self.whole]


def _bucket(server: MotoServer) -> Bucket:
    name = f"cks-{uuid.uuid4().hex[:8]}"
    server.create_bucket(name)
    return Bucket(
        name="checksums",
        provider=Provider.S3,
        bucket=name,
        region=server.region,
        endpoint=server.endpoint,
        credentials=Credentials(access_key_id=server.access_key, secret_access_key=server.secret_key),
    )


def _backup(ch: ClickHouse, s3: Any, bucket: Bucket, scope: Scope, folder: str, base: Backup | None) -> Backup:
    op = f"cks-{uuid.uuid4().hex}"
    base_sql = destination_sql(bucket, base.folder) if base else None
    ch.start(backup_sql(scope, destination_sql(bucket, folder), op, base=base_sql))
    result = ch.wait(op, timeout=300)
    assert result.status == "BACKUP_CREATED", result.error
    body = s3.get_object(Bucket=bucket.bucket, Key=f"{folder}/.backup")["Body"].read()
    manifest = parse_manifest(body)
    backup = Backup(folder, manifest, base)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket.bucket, Prefix=f"{folder}/"):
        backup.listing.update(o["Key"][len(folder) + 1 :] for o in page.get("Contents", []))
    for f in manifest.files:
        if f.stored_size and not f.in_base_only and f.stored_name not in backup.objects:
            key = f"{folder}/{f.stored_name}"
            backup.objects[f.stored_name] = s3.get_object(Bucket=bucket.bucket, Key=key)["Body"].read()
    return backup


@pytest.fixture(scope="module")
def backups(ch: ClickHouse, s3_server: MotoServer) -> Iterator[Backups]:
    bucket = _bucket(s3_server)
    s3 = s3_server.client()
    db = f"cks_{uuid.uuid4().hex[:6]}"
    wide = "SETTINGS min_bytes_for_wide_part = 0"
    ch.command(f"CREATE DATABASE {db}")
    for size in BIN_SIZES:
        ch.command(f"CREATE TABLE {db}.b{size} (v UInt8 CODEC(NONE)) ENGINE = MergeTree ORDER BY tuple() {wide}")
        ch.command(f"INSERT INTO {db}.b{size} SELECT toUInt8(rand() % 256) FROM numbers({size - BIN_OVERHEAD})")
    ch.command(f"CREATE TABLE {db}.big (s String CODEC(NONE)) ENGINE = MergeTree ORDER BY tuple() {wide}")
    ch.command(f"INSERT INTO {db}.big SELECT randomString({BIG_WIDTH}) FROM numbers({BIG_ROWS})")
    # a Log table grows its files in place: the incremental backup stores only their new tails
    ch.command(f"CREATE TABLE {db}.log (v UInt32, s String) ENGINE = Log")
    ch.command(f"INSERT INTO {db}.log SELECT number, randomPrintableASCII(50) FROM numbers(3000)")
    # an all-default String column is sparse: its .bin files are empty (0 bytes, no <checksum>)
    ch.command(f"CREATE TABLE {db}.sparse (v UInt8, s String) ENGINE = MergeTree ORDER BY v {wide}")
    ch.command(f"INSERT INTO {db}.sparse SELECT number, '' FROM numbers(100)")
    ch.command(f"CREATE TABLE {db}.orders (id UInt64, note String) ENGINE = MergeTree ORDER BY id")
    ch.command(f"INSERT INTO {db}.orders SELECT number, toString(cityHash64(number)) FROM numbers(5000)")

    full = _backup(ch, s3, bucket, Scope(databases=(db,)), f"{db}/full", None)

    ch.command(f"INSERT INTO {db}.log SELECT number, randomPrintableASCII(50) FROM numbers(2000)")
    ch.command(f"INSERT INTO {db}.orders SELECT 100000 + number, 'new' FROM numbers(700)")
    ch.command(f"CREATE TABLE {db}.added (v UInt8 CODEC(NONE)) ENGINE = MergeTree ORDER BY tuple() {wide}")
    ch.command(f"INSERT INTO {db}.added SELECT toUInt8(number) FROM numbers({2048 - BIN_OVERHEAD})")
    incremental = _backup(ch, s3, bucket, Scope(databases=(db,)), f"{db}/incremental", full)

    whole = _backup(ch, s3, bucket, Scope(), f"{db}/whole", None)
    try:
        yield Backups(db, full, incremental, whole)
    finally:
        ch.command(f"DROP DATABASE IF EXISTS {db} SYNC")


# -- rebuilding a file from a backup (and its base) ---------------------------------------------


def _in_base(backup: Backup, size: int, checksum_hex: str | None) -> tuple[Backup, ManifestFile]:
    """The base's file of this size and checksum (ClickHouse matches base files by both, across names)."""
    base = backup.base
    assert base is not None, f"{backup.folder} uses a base backup the test does not know"
    for f in base.manifest.files:
        if f.size == size and f.checksum == checksum_hex:
            return base, f
    raise AssertionError(f"no file of {size} bytes with checksum {checksum_hex} in {base.folder}")


def content(backup: Backup, f: ManifestFile) -> bytes:
    """The whole file: the base's first ``base_size`` bytes, then what this backup stores."""
    head = b""
    if f.use_base:
        base_checksum = f.checksum if f.in_base_only else f.base_checksum
        head = content(*_in_base(backup, f.base_size, base_checksum))
    tail = backup.objects[f.stored_name] if f.stored_size else b""
    assert len(tail) == f.stored_size, f"{backup.folder}/{f.stored_name}"
    return head + tail


@dataclass
class Checked:
    backup: str
    name: str
    size: int
    kind: str  # "stored", "partial-base" (base bytes + stored tail), "in-base", "deduplicated", "empty"


def verify(backup: Backup) -> list[Checked]:
    """Recompute every file's checksum with both backends; assert it equals the manifest's."""
    checked: list[Checked] = []
    # the folder holds the manifest and the stored objects, nothing else (no .lock left, no empty objects)
    assert backup.listing == {".backup", *backup.objects}, backup.listing ^ {".backup", *backup.objects}
    for f in backup.manifest.files:
        if f.size == 0:
            # ClickHouse writes no <checksum> for an empty file, and stores no object for it
            assert f.checksum is None and not f.use_base and f.data_file is None, f.name
            assert f.name not in backup.listing, f.name
            for backend in BACKENDS:
                assert checksum.checksum_of(b"", backend) == checksum.EMPTY_CHECKSUM
            checked.append(Checked(backup.folder, f.name, 0, "empty"))
            continue
        assert f.checksum is not None and len(f.checksum) == 32, f.name
        data = content(backup, f)
        assert len(data) == f.size, f.name
        for backend in BACKENDS:
            assert checksum.checksum_of(data, backend) == f.checksum, f"{backup.folder}/{f.name} ({backend})"
            if f.use_base and not f.in_base_only:
                head = data[: f.base_size]
                assert checksum.checksum_of(head, backend) == f.base_checksum, f"{f.name} base ({backend})"
        if f.in_base_only:
            kind = "in-base"
        elif f.use_base:
            kind = "partial-base"
        elif f.data_file:
            kind = "deduplicated"
        else:
            kind = "stored"
        checked.append(Checked(backup.folder, f.name, f.size, kind))
    return checked


# -- the tests on real backups --------------------------------------------------------------------


def test_the_c_extension_is_built() -> None:
    assert checksum.BACKEND == "c", "the C extension is not built: pip install -e ."
    assert checksum.available_backends() == ["c", "python"]


def test_every_file_of_real_backups_matches_its_manifest_checksum(backups: Backups) -> None:
    checked = [c for b in backups.all() for c in verify(b)]

    # not vacuous: many files, of every kind, at and around the block boundaries and above 1 MiB
    assert len(checked) > 20, len(checked)
    sizes = {c.size for c in checked if c.kind != "empty"}
    assert any(s < 2048 for s in sizes)
    assert {2047, 2048, 2049, 4095, 4096, 4097} <= sizes, sorted(sizes)
    assert set(BIN_SIZES) <= sizes, sorted(set(BIN_SIZES) - sizes)
    assert any(2049 < s < 4095 for s in sizes)
    assert any(s > MiB for s in sizes), max(sizes)
    kinds = {c.kind for c in checked}
    assert {"stored", "partial-base", "in-base", "deduplicated", "empty"} <= kinds, kinds
    assert {c.backup for c in checked} == {b.folder for b in backups.all()}

    # the incremental backup really stored only tails of the Log table's grown files
    partial = [f for f in backups.incremental.manifest.files if f.use_base and not f.in_base_only]
    assert any(f.name.startswith(f"data/{backups.db}/log/") for f in partial), partial
    assert backups.incremental.manifest.base_backup
    print(
        f"\nverified {len(checked)} files, {min(sizes)} to {max(sizes)} bytes (and empty ones); "
        + ", ".join(f"{k}: {sum(c.kind == k for c in checked)}" for k in sorted(kinds))
    )


def test_whole_service_backup_holds_the_database(backups: Backups) -> None:
    names = {f.name for f in backups.whole.manifest.files}
    assert f"metadata/{backups.db}.sql" in names
    assert any(n.startswith(f"data/{backups.db}/big/") for n in names)


def _real_files(backups: Backups, low: int, high: int) -> list[bytes]:
    out = []
    for f in backups.full.manifest.files:
        if low <= f.size <= high and not f.use_base:
            out.append(content(backups.full, f))
    assert out, f"no file of {low}..{high} bytes"
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_flipped_byte_or_a_truncation_changes_the_checksum(backups: Backups, backend: checksum.BackendName) -> None:
    for data in _real_files(backups, 2049, 2049) + _real_files(backups, MiB, 64 * MiB):
        good = checksum.checksum_of(data, backend)
        for pos in (0, 1, 2047, 2048, len(data) // 2, len(data) - 1):
            bad = bytearray(data)
            bad[pos] ^= 0x01
            assert checksum.checksum_of(bytes(bad), backend) != good, pos
        for cut in (1, 2, len(data) - 2048, len(data) - 1):
            assert checksum.checksum_of(data[:cut], backend) != good, cut
        assert checksum.checksum_of(data[:-1], backend) != good
        assert checksum.checksum_of(data + b"\0", backend) != good


@pytest.mark.parametrize("chunk", [1, 7, 2047, 2048, 2049, MiB])
def test_streaming_in_odd_chunks_equals_one_shot(backups: Backups, chunk: int) -> None:
    big = _real_files(backups, MiB, 64 * MiB)[0]
    samples = [big, *_real_files(backups, 2047, 4097)]
    for sample in samples:
        for backend in BACKENDS:
            data = sample
            if backend == "python" and chunk < 2047:
                data = sample[: 64 * 1024 + 3]  # pure Python, a few bytes a call: a shorter prefix is enough
            expected = checksum.checksum_of(data, "c")
            stream = _Reader(data)
            got, n = checksum.checksum_stream(stream.read, chunk, backend)
            assert (got, n) == (expected, len(data)), (backend, chunk, len(data))
            h = checksum.new_hasher(backend)
            for i in range(0, len(data), chunk):
                h.update(memoryview(data)[i : i + chunk])
            assert h.hexdigest() == expected
            assert h.size == len(data)


class _Reader:
    """A file-like ``read`` that sometimes returns fewer bytes than asked, like a socket."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos, self.calls = data, 0, 0

    def read(self, n: int) -> bytes:
        self.calls += 1
        if self.calls % 3 == 0 and n > 1:
            n = n // 2
        out = self.data[self.pos : self.pos + n]
        self.pos += len(out)
        return out


# -- the algorithm, without ClickHouse ----------------------------------------------------------


def test_empty_input_is_the_zero_state() -> None:
    for backend in BACKENDS:
        assert checksum.checksum_of(b"", backend) == checksum.EMPTY_CHECKSUM == "0" * 32
        h = checksum.new_hasher(backend)
        assert h.digest_pair() == (0, 0)
        assert checksum.checksum_stream(_Reader(b"").read, 1 << 20, backend) == (checksum.EMPTY_CHECKSUM, 0)


def test_c_and_pure_python_agree_on_every_length_and_seed() -> None:
    from reconciler.clickhouse import _cityhash102 as c  # type: ignore[attr-defined]

    rnd = random.Random(102)
    lengths = list(range(0, 300)) + [511, 512, 513, 1023, 2047, 2048, 2049, 4095, 4096, 4097, 10_000, 3 * 2048 + 130]
    for n in lengths:
        data = rnd.randbytes(n)
        low, high = rnd.getrandbits(64), rnd.getrandbits(64)
        assert c.cityhash128_with_seed(data, low, high) == pure.cityhash128_with_seed(data, low, high), n
        assert checksum.checksum_of(data, "c") == checksum.checksum_of(data, "python"), n


def test_chaining_is_cityhash128_with_seed_over_2048_byte_blocks() -> None:
    from reconciler.clickhouse import _cityhash102 as c  # type: ignore[attr-defined]

    data = random.Random(7).randbytes(3 * 2048 + 5)
    state = (0, 0)
    for i in range(0, len(data), 2048):
        state = c.cityhash128_with_seed(data[i : i + 2048], *state)
    low, high = state
    assert checksum.checksum_of(data) == f"{high:016x}{low:016x}"
    h = checksum.new_hasher()
    h.update(data)
    assert h.digest_pair() == (low, high)
    # exactly N blocks: no extra hash of an empty tail
    two = data[:4096]
    s1 = c.cityhash128_with_seed(two[:2048], 0, 0)
    s2 = c.cityhash128_with_seed(two[2048:], *s1)
    assert checksum.checksum_of(two) == f"{s2[1]:016x}{s2[0]:016x}"


def test_hasher_copy_and_digest_do_not_disturb_the_state() -> None:
    data = os.urandom(5000)
    for backend in BACKENDS:
        h = checksum.new_hasher(backend)
        h.update(data[:3000])
        mid = h.hexdigest()
        other = h.copy()
        h.update(data[3000:])
        assert mid == checksum.checksum_of(data[:3000], backend) == other.hexdigest()
        assert h.hexdigest() == checksum.checksum_of(data, backend)
        with pytest.raises(TypeError):
            h.update("text")  # type: ignore[arg-type]


def test_threads_hash_in_parallel_with_the_same_results() -> None:
    blobs = [os.urandom(4 * MiB + i) for i in range(8)]
    expected = [checksum.checksum_of(b, "c") for b in blobs]
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(checksum.checksum_of, blobs)) == expected

        def streamed(b: bytes) -> str:
            return checksum.checksum_stream(_Reader(b).read, MiB)[0]

        assert list(pool.map(streamed, blobs)) == expected
    # one hasher shared by threads stays consistent (its own lock): the order of updates is free,
    # so feed identical chunks and compare with the same number of them
    shared = checksum.new_hasher("c")
    chunk = os.urandom(64 * 1024)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: shared.update(chunk), range(64)))
    assert shared.hexdigest() == checksum.checksum_of(chunk * 64)


def test_pure_python_fallback_when_the_extension_is_missing() -> None:
    code = (
        "import sys; sys.modules['reconciler.clickhouse._cityhash102'] = None\n"
        "import reconciler.clickhouse.checksum as c\n"
        "print(c.BACKEND, c.available_backends(), c.checksum_of(b'x' * 5000))\n"
    )
    root = Path(__file__).resolve().parent.parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["python", "['python']", checksum.checksum_of(b"x" * 5000, "c")]
    assert out.stderr == ""
