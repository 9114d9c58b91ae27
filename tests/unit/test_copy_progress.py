"""A long copy shows its progress like every long action: the copy executor reports bytes, files
and rate through the console, which prints plain lines when not on a terminal (at most one per
``progress_every`` seconds per action) and a live line on one. On memory stores: no servers."""

from __future__ import annotations

import io
import os

from reconciler.apply.context import ApplyContext
from reconciler.apply.copy import run_copy
from reconciler.bucket import layout
from reconciler.bucket.sidecar import Sidecar, SidecarState
from reconciler.clickhouse.checksum import new_hasher
from reconciler.connections import Connections
from reconciler.model import (
    Bucket,
    Config,
    CopyAction,
    OutcomeStatus,
    Provider,
    Schedule,
    Scope,
    ValidationLevel,
)
from reconciler.render.console import PlainConsole
from reconciler.render.words import progress
from reconciler.stores.memory import MemoryStorage, MemoryStore  # the memory store itself: a unit test
from tests.unit.test_plan_unit import NOW

BACKUP = "20261125T030000Z"


def test_progress_lines_say_bytes_files_and_rate() -> None:
    line = progress("streamed", 152_300_000, 362_100_000, (812, 2358), 4.0)
    assert line == "streamed 42% (145.2 MiB of 345.3 MiB, 812 of 2358 files, 36.3 MiB/s)"
    assert progress("checksums", 0, 0) == "checksums 100% (0 B of 0 B)"


def test_a_streamed_copy_prints_its_progress_when_not_on_a_terminal() -> None:
    storage = MemoryStorage()
    src_b, dst_b = Bucket("src", Provider.S3, "src", "p"), Bucket("dst", Provider.AZURE, "dst", "p")
    for b in (src_b, dst_b):
        storage.create_bucket(b.bucket)
    schedule = Schedule(name="daily", service="analytics", bucket="src", scope=Scope(databases=("shop",)))
    config = Config("c.yaml", {}, {"src": src_b, "dst": dst_b}, {"daily": schedule}, {}, "sha256:" + "0" * 64)
    conns = Connections(config, store_factory=lambda b: MemoryStore(storage, b.bucket))
    src = conns.store("src")
    folder = layout.backup_prefix(src_b, "analytics", "daily", BACKUP)
    files = []
    for i, size in enumerate((3 * 1024 * 1024, 1000, 1)):
        data = os.urandom(size)
        src.write(f"{folder}data/shop/t/all_1_1_0/c{i}.bin", data)
        h = new_hasher()
        h.update(data)
        files.append(
            f"<file><name>data/shop/t/all_1_1_0/c{i}.bin</name><size>{size}</size><checksum>{h.hexdigest()}</checksum></file>"
        )
    src.write(
        folder + ".backup", f"<config><version>1</version><contents>{''.join(files)}</contents></config>".encode()
    )
    sidecar = Sidecar(
        "analytics", "daily", BACKUP, NOW, "full", None, Scope(databases=("shop",)), "x", "op-1", SidecarState.COMPLETE
    )
    src.write(folder + layout.SIDECAR, sidecar.encode())
    out = io.StringIO()
    ctx = ApplyContext(config, conns, PlainConsole(out, progress_every=0), "run-1")
    action = CopyAction(
        id=f"copy/analytics/daily/{BACKUP}@dst",
        service="analytics",
        schedule="daily",
        bucket="dst",
        backup=BACKUP,
        source_bucket="src",
        source_location="memory://src/" + folder,
        location="memory://dst/" + folder,
        kind="full",
        base=None,
        level=ValidationLevel.CHECKSUMS,
        method="streamed",
        reason="r",
    )
    outcome = run_copy(ctx, action)
    assert outcome.status == OutcomeStatus.DONE, outcome.detail
    lines = [line for line in out.getvalue().splitlines() if f"running  {action.id}: streamed " in line]
    assert len(lines) > 3  # 1 MiB reads of the large file, then each file done
    assert "streamed 100% (3.0 MiB of 3.0 MiB, 3 of 3 files, " in lines[-1]
