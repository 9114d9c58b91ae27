"""Crashes and faults with ClickHouse as a server (tests/support/clickhouse_server.py), real
processes all: the reconciler runs as ``python -m reconciler`` and is SIGKILLed while ClickHouse
goes on; the network between them is a loopback TCP proxy (tests/support/tcp_proxy.py) that loses
a reply or is cut; the server itself is SIGKILLed and restarted on the same data path and port.

The moment of each fault is made exact, not likely: the bucket's endpoint (for the reconciler
and for ClickHouse alike) is a TCP proxy in front of moto that can hold ClickHouse's write of a
backup's manifest ``.backup`` (its last file), so a BACKUP stays ``CREATING_BACKUP`` on the server
exactly as long as a test needs it to, whatever the machine's speed; the data stay small. One
server serves the module.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.model import Bucket
from tests.e2e.test_crash_more import LEASE, NOW, SLOT, drift_of, ids
from tests.support.clickhouse_server import ClickHouseServer
from tests.support.e2e import keys, read_json, s3_bucket_doc, write_config
from tests.support.fixtures_clickhouse import PASSWORD, seed_shop
from tests.support.processes import ROOT, Reconciler, cli, poll
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServer]:
    s = ClickHouseServer(tmp_path_factory.mktemp("ch-faults"), PASSWORD)
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def source(server: ClickHouseServer) -> str:
    return seed_shop(server.client(), rows=20_000)


class Scene:
    """One scenario: a bucket, a config whose service is the server (maybe through a proxy)."""

    def __init__(
        self,
        tmp_path: Path,
        s3_server: Any,
        bucket: Bucket,
        server: ClickHouseServer,
        db: str,
        storage: TcpProxy,
        port: int | None = None,
    ) -> None:
        self.server, self.db, self.storage = server, db, storage
        self.s3, self.bucket = s3_server.client(), bucket.bucket
        self.tmp = tmp_path
        self.env = {
            **os.environ,
            "TEST_S3_KEY": s3_server.access_key,
            "TEST_S3_SECRET": s3_server.secret_key,
            "TEST_CH_DSN": server.dsn_for(port=port),
            "RECONCILER_LOCK_LEASE": f"{LEASE:g}s",
            "PYTHONPATH": str(ROOT),
        }
        self.bucket_doc = {**s3_bucket_doc(bucket), "endpoint": storage.endpoint}
        self.folder = f"clickhouse/analytics/daily/{SLOT}/"
        self.procs: list[Reconciler] = []
        self.cfg = self.config()

    def config(self, name: str = "c.yaml", schedules: dict[str, Any] | None = None, **extra: Any) -> str:
        doc = {
            "services": {"analytics": {"dsn": "${TEST_CH_DSN}"}},
            "buckets": {"primary": self.bucket_doc},
            "schedules": schedules
            or {"daily": {"service": "analytics", "bucket": "primary", "databases": [self.db], "cron": "0 3 * * *"}},
            **extra,
        }
        return str(write_config(self.tmp / name, doc))

    def apply(self, cfg: str | None = None, now: str = NOW) -> Reconciler:
        proc = Reconciler(self.env, "apply", "-f", cfg or self.cfg, "--now", now, "--auto-approve")
        self.procs.append(proc)
        return proc

    def run(self, *args: str, cfg: str | None = None, now: str = NOW, ok: tuple[int, ...] = (0, 2)) -> Any:
        return cli(self.env, *args, "-f", cfg or self.cfg, "--now", now, ok=ok)

    def plan(self, cfg: str | None = None, now: str = NOW) -> dict[str, Any]:
        return json.loads(self.run("plan", "--format", "json", cfg=cfg, now=now).stdout)  # type: ignore[no-any-return]

    def operation(self, kind: str) -> tuple[str, str] | None:
        """(id, status) of the newest ``reconciler-<kind>-...`` operation in the server's system.backups."""
        rows = (
            self.server.client()
            .query(
                f"SELECT id, status FROM system.backups WHERE startsWith(id, 'reconciler-{kind}-') "
                "ORDER BY start_time DESC LIMIT 1"
            )
            .result_rows
        )
        return (str(rows[0][0]), str(rows[0][1])) if rows else None

    def running(self, kind: str) -> str | None:
        op = self.operation(kind)
        return op[0] if op and op[1] in ("CREATING_BACKUP", "RESTORING") else None

    def folders(self) -> list[str]:
        return sorted({k.split("/")[3] for k in keys(self.s3, self.bucket, "clickhouse/analytics/daily/")})

    def sidecar(self, name: str = SLOT) -> dict[str, Any]:
        return read_json(self.s3, self.bucket, f"clickhouse/analytics/daily/{name}/reconciler.json")  # type: ignore[no-any-return]

    def hold_manifest(self, folder: str | None = None) -> Any:
        """Hold ClickHouse's write of the folder's ``.backup``: its BACKUP stays running until
        ``hold.release()``."""
        return self.storage.hold_requests(f"PUT /{self.bucket}/{folder or self.folder}.backup ".encode())

    def wait_for_lease(self) -> None:
        time.sleep(LEASE + 0.5)

    def stop(self) -> None:
        for p in self.procs:
            p.kill()


@pytest.fixture
def scene(tmp_path: Path, s3_server: Any, s3_bucket: Bucket, server: ClickHouseServer, source: str) -> Iterator[Any]:
    made: list[Scene] = []
    storage = TcpProxy(s3_server.port).start()

    def make(port: int | None = None) -> Scene:
        made.append(Scene(tmp_path, s3_server, s3_bucket, server, source, storage, port))
        return made[-1]

    yield make
    for s in made:
        s.stop()
    storage.stop()


@pytest.fixture
def proxy(server: ClickHouseServer) -> Iterator[TcpProxy]:
    p = TcpProxy(server.port).start()
    try:
        yield p
    finally:
        p.stop()


def test_reconciler_killed_mid_export_the_next_apply_adopts_the_running_backup(scene: Any) -> None:
    s = scene()
    manifest = s.hold_manifest()
    first = s.apply()
    poll("ClickHouse to write the manifest", manifest.caught.is_set, first)
    op_id = s.running("backup")
    first.kill()
    assert op_id and s.running("backup") == op_id, "the server goes on with the BACKUP of a dead client"
    assert s.sidecar()["state"] == "in_progress"
    s.wait_for_lease()

    plan = s.plan()
    assert ids(plan) == [f"export/analytics/daily/{SLOT}", f"validate/analytics/daily/{SLOT}"]
    assert "adopt it" in plan["actions"][0]["reason"]
    second = s.apply()
    second.wait_line(f"export/analytics/daily/{SLOT}")  # started: it follows the running BACKUP
    manifest.release()
    assert second.finish() == 0, second.text()
    assert "adopted the export of run" in second.text()
    assert s.folders() == [SLOT]  # one backup in the slot, no `.2`
    sidecar = s.sidecar()
    assert sidecar["state"] == "complete" and sidecar["operation"]["id"] == op_id
    assert sidecar["operation"]["status"] == "BACKUP_CREATED" and sidecar["sizes"]["total_size"] > 0
    assert ids(s.plan()) == []


def test_a_lost_reply_to_backup_and_a_short_cut_while_polling_are_ridden_out(scene: Any, proxy: TcpProxy) -> None:
    s = scene(port=proxy.port)
    manifest = s.hold_manifest()
    proxy.drop_reply_to(b"BACKUP ", b"ASYNC")
    first = s.apply()
    poll("ClickHouse to write the manifest", manifest.caught.is_set, first)
    assert proxy.dropped, "the proxy should have lost the reply to BACKUP"
    proxy.cut()  # a short outage while the apply polls system.backups
    time.sleep(2)
    proxy.restore()
    manifest.release()
    assert first.finish() == 0, first.text()
    assert s.folders() == [SLOT] and s.sidecar()["state"] == "complete"


def test_a_long_cut_while_polling_fails_clearly_then_the_next_apply_converges(scene: Any, proxy: TcpProxy) -> None:
    s = scene(port=proxy.port)
    manifest = s.hold_manifest()
    first = s.apply()
    poll("ClickHouse to write the manifest", manifest.caught.is_set, first)
    proxy.cut()  # longer than the retry policy rides out (about 8 s)
    assert first.finish() == 1, first.text()
    assert "lost contact with ClickHouse while following BACKUP" in first.text(), first.text()
    assert "the next apply adopts it" in first.text(), first.text()
    assert s.sidecar()["state"] == "in_progress"  # not failed: the server may well finish it
    proxy.restore()
    manifest.release()
    second = s.apply()
    assert second.finish() == 0, second.text()
    assert s.folders() == [SLOT]
    assert s.sidecar()["state"] == "complete"
    assert ids(s.plan()) == []


def test_server_killed_mid_backup_the_attempt_is_retried_as_dot_2_and_pruned_later(scene: Any) -> None:
    s = scene()
    cfg = s.config(
        "c2.yaml",
        schedules={
            "daily": {
                "service": "analytics",
                "bucket": "primary",
                "databases": [s.db],
                "cron": "0 3 * * *",
                "cleanup_after": "4h",
            }
        },
    )
    manifest = s.hold_manifest()
    first = s.apply(cfg)
    poll("ClickHouse to write the manifest", manifest.caught.is_set, first)
    s.server.restart()  # SIGKILL, then the same data path and port: system.backups is empty
    s.storage.cut()  # drops the held manifest write of the dead server
    s.storage.restore()
    assert first.finish() == 1, first.text()
    assert s.server.client().query("SELECT count() FROM system.backups").result_rows == [(0,)]
    partial = keys(s.s3, s.bucket, s.folder)
    assert f"{s.folder}.lock" in partial and f"{s.folder}.backup" not in partial

    plan = s.plan(cfg)
    assert ids(plan) == [f"export/analytics/daily/{SLOT}.2", f"validate/analytics/daily/{SLOT}.2"]
    assert ("failed_backup", SLOT) in drift_of(plan)
    second = s.apply(cfg)
    assert second.finish() == 0, second.text()
    assert s.folders() == [SLOT, f"{SLOT}.2"]

    later = "2026-11-25T08:00:00Z"  # the failed attempt is 5 h old: past cleanup_after=4h
    assert ids(s.plan(cfg, now=later)) == [f"prune/analytics/daily/{SLOT}"]
    third = s.apply(cfg, now=later)
    assert third.finish() == 0, third.text()
    assert s.folders() == [f"{SLOT}.2"]
    assert s.s3.list_multipart_uploads(Bucket=s.bucket, Prefix=s.folder).get("Uploads", []) == []


def test_lease_renewals_failing_past_the_lease_stop_new_work_and_the_next_apply_finishes(scene: Any) -> None:
    s = scene()
    two = {
        name: {"service": "analytics", "bucket": "primary", "databases": [s.db], "cron": "0 3 * * *"}
        for name in ("daily", "other")
    }
    cfg = s.config("two.yaml", schedules=two)
    manifest = s.hold_manifest()  # the first export runs until the lease has run out
    first = s.apply(cfg)
    poll("ClickHouse to write the manifest", manifest.caught.is_set, first)
    s.storage.cut()  # a store outage: renewals fail (retried, then given up) past the lease
    time.sleep(LEASE + 14)  # longer than a renewal is retried (~10 s); ClickHouse retries its writes
    s.storage.restore()
    manifest.release()
    first.wait_line("no new action starts")
    assert first.finish() == 1, first.text()
    text = first.text()
    assert "while its renewals failed" in text and "not started: the lease" in text
    assert len([ln for ln in first.err if "] start " in ln]) == 1, text  # one export, nothing after
    s.wait_for_lease()
    second = s.apply(cfg)
    assert second.finish() == 0, second.text()
    both = sorted(k for k in keys(s.s3, s.bucket, "clickhouse/analytics/") if k.endswith("/.backup"))
    assert both == [f"clickhouse/analytics/daily/{SLOT}/.backup", f"clickhouse/analytics/other/{SLOT}/.backup"]


def test_reconciler_killed_mid_restore_the_next_apply_adopts_the_restore(scene: Any) -> None:
    s = scene()
    first = s.apply()
    assert first.finish() == 0, first.text()
    target = f"{s.db}_back"
    cfg = s.config(
        "r.yaml",
        restores={
            "back": {
                "from": {"schedule": "daily", "backup": "latest"},
                "to": {"service": "analytics", "databases": {s.db: target}},
            }
        },
    )
    data = s.storage.hold_requests(f"GET /{s.bucket}/{s.folder}data/".encode())  # ClickHouse reading the parts
    restoring = s.apply(cfg)
    poll("ClickHouse to read the backup's data", data.caught.is_set, restoring)
    op_id = s.running("restore")
    restoring.kill()
    assert op_id, "the server goes on with the RESTORE of a dead client"
    s.wait_for_lease()
    second = s.apply(cfg)
    second.wait_line("restore/back")
    data.release()
    assert second.finish() == 0, second.text()
    assert "adopted the restore of run" in second.text()
    client = s.server.client()
    count = (
        "SELECT count() FROM system.backups WHERE startsWith(id, 'reconciler-restore-') "
        f"AND position(name, '{s.bucket}') > 0"
    )
    assert client.query(count).result_rows == [(1,)]  # restored once, never twice
    rows = dict(client.query(f"SELECT name, total_rows FROM system.tables WHERE database = '{target}'").result_rows)
    assert rows == {"orders": 20_000, "customers": 6_666}
    assert ids(s.plan(cfg)) == []


def test_reconciler_killed_mid_drill_the_next_apply_waits_for_it_then_drills_once(scene: Any) -> None:
    s = scene()
    cfg = s.config(
        "d.yaml",
        schedules={
            "daily": {
                "service": "analytics",
                "bucket": "primary",
                "databases": [s.db],
                "cron": "0 3 * * *",
                "validate": {"drill": {"service": "analytics", "every": "1d"}},
            }
        },
    )
    parts = s.storage.hold_requests(f"GET /{s.bucket}/".encode(), b".bin HTTP/1.1")  # ClickHouse reading parts
    drilling = s.apply(cfg)
    poll("the drill's RESTORE to read the backup", parts.caught.is_set, drilling)
    assert s.running("drill"), "the drill's RESTORE runs on the server"
    drilling.kill()
    s.wait_for_lease()
    second = s.apply(cfg)
    time.sleep(2)  # it waits for the orphaned drill RESTORE before dropping its scratch databases
    parts.release()
    assert second.finish() == 0, second.text()
    drills = [v for v in s.sidecar()["validations"] if v["level"] == "drill"]
    assert [v["result"] for v in drills] == ["ok"], drills
    dbs = [r[0] for r in s.server.client().query("SELECT name FROM system.databases").result_rows]
    assert not [d for d in dbs if d.startswith("reconciler_drill_")], dbs
    assert ids(s.plan(cfg)) == []
