"""Crashes and storage outages with real processes (issue 9, part 1).

Every scenario runs ``python -m reconciler apply`` as a subprocess on its own chdb data path
and moto's S3 server, interrupts it for real — SIGKILL, or an outage of a loopback TCP proxy in
front of moto (tests/support/tcp_proxy.py) that the config's endpoint points at — and then checks that a
new plan/apply converges: no duplicate complete backup of a slot, no lost complete backup, no
scratch database left, the lock taken over after its lease, and the interruption visible in
plan/status/drift.

The moment of each interruption is made exact, not likely, by the proxy: it can hold one
chosen request (the apply's final sidecar update, ClickHouse's first upload or read of a data
file, the lock's create) so that the process sits at exactly that point while the test kills it
or cuts the network; the apply's stderr (``start    <action>``) and the chdb data directory
(committed parts, scratch databases) tell the rest. So the data can stay small, and the tests
fast and deterministic.

The chdb engine lives inside the apply process, so what it holds after a kill is read by
another short subprocess on the same data path (``inspect``), once the killed one is gone.
"""

from __future__ import annotations

import fcntl
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from reconciler.model import UTC, Bucket, parse_iso
from tests.support.e2e import keys, read_json, s3_bucket_doc, write_config
from tests.support.processes import ROOT, Reconciler, cli, poll
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow

NOW = "2026-11-25T06:00:00Z"
SLOT = "20261125T030000Z"
LEASE = 3.0  # seconds: RECONCILER_LOCK_LEASE of every apply here

# Two small tables: every scenario takes its moment from the proxy, not from the data's size.
SEEDS = {
    "shop": """
import sys, clickhouse_connect
c = clickhouse_connect.get_client(dsn=sys.argv[1])
c.command("CREATE DATABASE shop")
c.command("CREATE TABLE shop.orders (id UInt64, s String) ENGINE = MergeTree ORDER BY id")
c.command("INSERT INTO shop.orders SELECT number, toString(number) FROM numbers(1000)")
c.command("CREATE TABLE shop.customers (id UInt64) ENGINE = MergeTree ORDER BY id")
c.command("INSERT INTO shop.customers SELECT number FROM numbers(500)")
""",
}

INSPECT = """
import json, sys, clickhouse_connect
c = clickhouse_connect.get_client(dsn=sys.argv[1])
user = "database NOT IN ('system', 'INFORMATION_SCHEMA', 'information_schema')"
out = {
    "databases": sorted(r[0] for r in c.query("SELECT name FROM system.databases").result_rows),
    "tables": {f"{d}.{t}": int(n) for d, t, n in c.query(
        f"SELECT database, name, coalesce(total_rows, 0) FROM system.tables WHERE {user}").result_rows},
    "query": [list(r) for r in c.query(sys.argv[2]).result_rows] if len(sys.argv) > 2 else None,
}
print(json.dumps(out, default=str))
"""


# --------------------------------------------------------------------------------------------
# seeded chdb data paths
# --------------------------------------------------------------------------------------------


def _template_root(factory: pytest.TempPathFactory) -> Path:
    """Shared by the xdist workers of one run (the run's base temp), else this session's."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def seeded_dsn(factory: pytest.TempPathFactory, dest: Path, seed: str = "shop") -> str:
    """A chdb data path at ``dest`` holding the ``seed`` data: seeded once per run by a
    subprocess (under a file lock, for xdist workers), then copied."""
    root = _template_root(factory)
    template = root / f"chdb-template-{seed}"
    with open(root / f"chdb-template-{seed}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (template / ".seeded").exists():
            shutil.rmtree(template, ignore_errors=True)
            subprocess.run([sys.executable, "-c", SEEDS[seed], f"chdb://{template}"], check=True, timeout=300)
            (template / ".seeded").write_text("ok")

    shutil.copytree(template, dest, symlinks=True)
    return f"chdb://{dest}"


def inspect(dsn: str, sql: str | None = None) -> dict[str, Any]:
    """What the engine at ``dsn`` holds, read by a fresh process (the apply's engine was its own)."""
    args = [sys.executable, "-c", INSPECT, dsn] + ([sql] if sql else [])
    p = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout)


# --------------------------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------------------------


def make_env(s3_server: Any, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "TEST_S3_KEY": s3_server.access_key,
        "TEST_S3_SECRET": s3_server.secret_key,
        "RECONCILER_LOCK_LEASE": f"{LEASE:g}s",
        "PYTHONPATH": str(ROOT),
        "AWS_EC2_METADATA_DISABLED": "true",
        **extra,
    }


# --------------------------------------------------------------------------------------------
# the bucket
# --------------------------------------------------------------------------------------------


class World:
    """One scenario: a seeded chdb path, a config using it, the environment of the commands,
    and direct access to the bucket (not through the proxy, when there is one)."""

    def __init__(
        self,
        tmp_path: Path,
        tmp_path_factory: pytest.TempPathFactory,
        s3_server: Any,
        s3_bucket: Bucket,
        *,
        services: tuple[str, ...] = ("analytics",),
        endpoint: str | None = None,
        prefix: str = "clickhouse",
        restores: dict[str, Any] | None = None,
        **schedule_extra: Any,
    ) -> None:
        self.dsn = seeded_dsn(tmp_path_factory, tmp_path / f"chdb-{prefix}")  # one chdb path per process
        bucket_doc = s3_bucket_doc(s3_bucket, prefix)
        if endpoint:
            bucket_doc["endpoint"] = endpoint
        doc = {
            "services": {name: {"dsn": self.dsn} for name in services},
            "buckets": {"primary": bucket_doc},
            "schedules": schedule(**schedule_extra),
            **({"restores": restores} if restores else {}),
        }
        self.prefix = prefix
        self.cfg = str(write_config(tmp_path / f"{prefix}.yaml", doc))
        self.env = make_env(s3_server)
        self.s3 = s3_server.client()
        self.bucket = s3_bucket.bucket
        self.folder = f"{prefix}/analytics/daily/{SLOT}/"
        self.procs: list[Reconciler] = []

    @property
    def path(self) -> str:
        return self.dsn[len("chdb://") :]

    def keys(self, prefix: str = "") -> dict[str, int]:
        """Objects under ``<prefix>/`` + ``prefix``, by full key."""
        return keys(self.s3, self.bucket, f"{self.prefix}/{prefix}")

    def keys_at(self, full_prefix: str) -> dict[str, int]:
        return keys(self.s3, self.bucket, full_prefix)

    def exists(self, key: str) -> bool:
        """Whether the object ``<prefix>/`` + ``key`` exists."""
        return f"{self.prefix}/{key}" in self.keys(key)

    def json(self, key: str) -> Any:
        """A JSON object by its full key."""
        return read_json(self.s3, self.bucket, key)

    def sidecar(self, folder: str | None = None) -> dict[str, Any]:
        return self.json((folder or self.folder) + "reconciler.json")  # type: ignore[no-any-return]

    def lock(self) -> dict[str, Any] | None:
        try:
            return self.json(f"{self.prefix}/.reconciler/lock")  # type: ignore[no-any-return]
        except self.s3.exceptions.NoSuchKey:
            return None

    def runs(self) -> dict[str, dict[str, Any]]:
        return {k.rsplit("/", 1)[1][: -len(".json")]: self.json(k) for k in self.keys(".reconciler/runs/")}

    def manifests(self) -> list[str]:
        return sorted(k for k in self.keys("analytics/") if k.endswith("/.backup"))

    def folders(self) -> list[str]:
        return sorted({k.split("/")[3] for k in self.keys("analytics/daily/")})

    def wait_for_lease(self) -> None:
        """Until the lock left by a dead apply has expired (read from the lock itself)."""
        held = self.lock()
        if held is None:
            return
        left = (parse_iso(held["lease_expires_at"]) - datetime.now(UTC)).total_seconds()
        time.sleep(max(0.0, left) + 0.3)

    def apply(self, *extra: str) -> Reconciler:
        """``apply --auto-approve`` in the background."""
        proc = Reconciler(self.env, "apply", "-f", self.cfg, "--now", NOW, "--auto-approve", *extra)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        """Kill what this scenario started and left running (a test that failed half-way)."""
        for proc in self.procs:
            proc.kill()

    def run(self, *args: str, ok: tuple[int, ...] = (0, 2)) -> subprocess.CompletedProcess[str]:
        return cli(self.env, *args, "-f", self.cfg, "--now", NOW, ok=ok)

    def plan(self) -> dict[str, Any]:
        return json.loads(self.run("plan", "--format", "json").stdout)  # type: ignore[no-any-return]

    def status(self) -> dict[str, Any]:
        return json.loads(self.run("status", "--format", "json").stdout)  # type: ignore[no-any-return]

    def converged(self) -> dict[str, Any]:
        """A plan with nothing left to do (exit 0 with --detailed-exitcode)."""
        final = self.run("plan", "--format", "json", "--detailed-exitcode", ok=())
        assert final.returncode == 0, f"not converged:\n{final.stdout}\n{final.stderr}"
        return json.loads(final.stdout)  # type: ignore[no-any-return]


def schedule(**extra: Any) -> dict[str, Any]:
    """The one schedule of every scenario: database ``shop``, daily at 03:00."""
    return {"daily": {"service": "analytics", "bucket": "primary", "databases": ["shop"], "cron": "0 3 * * *", **extra}}


def sidecar_update(w: World) -> tuple[bytes, ...]:
    """The apply's final update of the export's sidecar: its one PUT with If-Match (the first
    PUT is a create, with If-None-Match)."""
    return (f"PUT /{w.bucket}/{w.folder}reconciler.json ".encode(), b"If-Match:")


def ids(plan: dict[str, Any]) -> list[str]:
    return [a["id"] for a in plan["actions"]]


def drift_of(plan: dict[str, Any]) -> list[tuple[str, str | None]]:
    return sorted((d["type"], d.get("backup")) for d in plan["drift"])


@pytest.fixture
def proxy(s3_server: Any) -> Iterator[TcpProxy]:
    p = TcpProxy(s3_server.port).start()
    try:
        yield p
    finally:
        p.stop()


@contextmanager
def worlds(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, s3_server: Any, s3_bucket: Bucket
) -> Iterator[Callable[..., World]]:
    """``make(**options)`` makes a World of this test (see World for the options); at the end
    every process they started and left running is killed."""
    made: list[World] = []

    def make(**options: Any) -> World:
        made.append(World(tmp_path, tmp_path_factory, s3_server, s3_bucket, **options))
        return made[-1]

    try:
        yield make
    finally:
        for w in made:
            w.stop()


@pytest.fixture
def world(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, s3_server: Any, s3_bucket: Bucket
) -> Iterator[Callable[..., World]]:
    with worlds(tmp_path, tmp_path_factory, s3_server, s3_bucket) as make:
        yield make


# --------------------------------------------------------------------------------------------
# SIGKILL
# --------------------------------------------------------------------------------------------


def test_kill_after_clickhouse_finished_before_the_sidecar_update(world: Callable[..., World], proxy: TcpProxy) -> None:
    """Killed when ClickHouse's manifest is in the folder but the sidecar still says
    in_progress (the apply's final update of the sidecar is held by the proxy, never
    delivered): the backup is complete, the next plan validates it — which completes the
    record — and exports nothing for the slot."""
    w = world(endpoint=proxy.endpoint)
    update = proxy.hold_request(*sidecar_update(w))
    apply = w.apply()
    poll("the sidecar update", update.caught.is_set, apply)
    apply.kill()
    assert apply.proc.returncode == -signal.SIGKILL
    proxy.cut()  # the held update is dropped, never delivered
    proxy.restore()
    assert w.folder + ".backup" in w.keys_at(w.folder)
    assert w.sidecar()["state"] == "in_progress"
    killed = w.lock()
    assert killed is not None

    # even while the dead apply's lease lasts, the folder is a complete backup: no new export
    during = w.plan()
    assert ids(during) == [f"validate/analytics/daily/{SLOT}"], during
    assert drift_of(during) == [("unvalidated_backup", SLOT)]

    w.wait_for_lease()
    again = w.run("apply", "--auto-approve")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"took over the lock of bucket primary from run {killed['lock_id']}" in again.stderr

    sc = w.sidecar()
    assert sc["state"] == "complete"
    assert [(v["level"], v["result"]) for v in sc["validations"]] == [("manifest", "ok")]
    assert w.manifests() == [w.folder + ".backup"]  # one complete backup of the slot, the same one
    assert w.folders() == [SLOT]
    assert drift_of(w.converged()) == []
    status = w.status()["schedules"][0]
    assert status["newest_complete"] == SLOT and status["backups"][0]["validation"]["result"] == "ok"
    assert w.lock() is None


def test_kill_during_restore_then_the_restore_completes(world: Callable[..., World], proxy: TcpProxy) -> None:
    """Killed while RESTORE writes the target: the restored orders are committed (1000 rows),
    the customers are not (ClickHouse's first read of their data is held by the proxy). The
    restore is not recorded, so it is planned again; the next apply must finish it — the
    half-restored tables are the killed attempt's own doing, not user data — and leave exactly
    the source's rows, with no staging database behind."""
    w = world(
        endpoint=proxy.endpoint,
        services=("analytics", "staging"),
        restores={
            "shop-into-staging": {
                "from": {"schedule": "daily", "backup": "latest"},
                "to": {"service": "staging", "databases": {"shop": "shop_restored"}},
            }
        },
    )
    customers = proxy.hold_request(f"HEAD /{w.bucket}/{w.folder}data/shop/customers/".encode())

    def restored_orders() -> list[str]:  # a committed part of a restored copy of shop.orders, wherever
        parts = glob.glob(os.path.join(w.path, "data", "*", "orders", "all_*"))
        return [p for p in parts if Path(p).parts[-3] != "shop"]

    apply = w.apply()
    apply.wait_line("start    restore/shop-into-staging")
    poll("ClickHouse to read the customers' data", customers.caught.is_set, apply)
    poll("a committed part of the restored orders", restored_orders, apply)
    apply.kill()
    proxy.cut()
    proxy.restore()
    assert w.sidecar()["state"] == "complete"
    # the attempt's marker: in progress, naming the tables it may write (absent or empty before)
    marker = w.json(f"{w.prefix}/.reconciler/restores/shop-into-staging.json")
    assert marker["state"] == "in_progress" and "shop_restored.orders" in marker["absent_tables"]

    left = {name: rows for name, rows in inspect(w.dsn)["tables"].items() if not name.startswith("shop.")}
    assert 1000 in [rows for name, rows in left.items() if name.endswith(".orders")], left
    assert 500 not in [rows for name, rows in left.items() if name.endswith(".customers")], left

    assert ids(w.plan()) == ["restore/shop-into-staging"]  # planned again; the backup is kept
    w.wait_for_lease()

    again = w.run("apply", "--auto-approve", ok=())
    assert again.returncode == 0, (
        "the re-run of a restore killed half-way must finish it, not refuse the tables the "
        f"killed attempt filled:\n{again.stdout}\n{again.stderr}"
    )
    sql = (
        "SELECT (SELECT count() FROM shop_restored.orders), (SELECT sum(id) FROM shop_restored.orders), "
        "(SELECT count() FROM shop_restored.customers), (SELECT sum(id) FROM shop_restored.customers)"
    )
    got = inspect(w.dsn, sql)
    assert [int(x) for x in got["query"][0]] == [1000, 499500, 500, 124750]  # the source's rows, once
    expected = ["INFORMATION_SCHEMA", "default", "information_schema", "shop", "shop_restored", "system"]
    assert got["databases"] == sorted(expected)  # nothing left behind
    assert w.exists(".reconciler/restores/shop-into-staging.json")
    w.converged()
    assert w.lock() is None


def test_kill_during_drill_leaves_scratch_databases_that_the_next_apply_drops(
    world: Callable[..., World], proxy: TcpProxy
) -> None:
    """Killed while the drill's RESTORE reads the data (its first read held by the proxy): the
    scratch database it created stays. The next plan warns about it, the next apply drops it and
    drills again."""
    w = world(
        endpoint=proxy.endpoint,
        services=("analytics", "scratch"),
        validate={"drill": {"service": "scratch", "every": "30d"}},
    )
    data = proxy.hold_request(f"HEAD /{w.bucket}/{w.folder}data/".encode())  # only RESTORE asks HEAD

    apply = w.apply()
    apply.wait_line(f"start    validate/analytics/daily/{SLOT}/drill")
    poll("the drill's RESTORE to read the data", data.caught.is_set, apply)
    apply.kill()
    proxy.cut()
    proxy.restore()

    leftovers = [d for d in inspect(w.dsn)["databases"] if d.startswith("reconciler_drill_")]
    assert leftovers, "the killed drill left no scratch database"
    sc = w.sidecar()
    assert sc["state"] == "complete" and "drill" not in [v["level"] for v in sc["validations"]]

    plan = w.plan()
    assert ids(plan) == [f"validate/analytics/daily/{SLOT}/drill"], plan  # the drill is still due
    warned = [x for x in plan["warnings"] if "drills that did not finish" in x]
    assert len(warned) == 1 and all(d in warned[0] for d in leftovers), plan["warnings"]
    w.wait_for_lease()

    again = w.run("apply", "--auto-approve")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "dropped scratch databases of drills that did not finish on scratch" in again.stderr
    assert "took over the lock" in again.stderr
    assert not [d for d in inspect(w.dsn)["databases"] if d.startswith("reconciler_drill_")]
    assert [(v["level"], v["result"]) for v in w.sidecar()["validations"]] == [("manifest", "ok"), ("drill", "ok")]
    assert w.manifests() == [w.folder + ".backup"]
    final = w.converged()
    assert not [x for x in final["warnings"] if "drills" in x] and drift_of(final) == []
    assert w.lock() is None


def test_status_reports_a_killed_apply_as_interrupted(world: Callable[..., World]) -> None:
    """A killed apply's run record says ``running`` for ever; once its lease has run out,
    status must not show it as running (proposed: ``interrupted``)."""
    w = world()
    apply = w.apply()
    run_id = poll("the run record", lambda: next(iter(w.runs()), None), apply)
    apply.kill()
    w.wait_for_lease()

    runs = {r["run_id"]: r for r in w.status()["runs"]["primary"]}
    shown = runs[run_id]["status"]
    assert shown != "running", f"run {run_id} was killed and its lease has expired, yet status shows it {shown!r}"
    assert shown == "interrupted"


# --------------------------------------------------------------------------------------------
# storage outages (the proxy in front of moto is cut)
# --------------------------------------------------------------------------------------------


def test_outage_while_clickhouse_writes_the_backup_is_ridden_out(world: Callable[..., World], proxy: TcpProxy) -> None:
    """S3 goes away for 4 s from ClickHouse's first upload of a data file (held, then dropped by
    the cut); the apply's lease (3 s) runs out meanwhile, since it cannot be renewed. ClickHouse
    retries, the lease is renewed when S3 is back, and the apply ends well."""
    w = world(endpoint=proxy.endpoint)
    upload = proxy.hold_request(f"PUT /{w.bucket}/{w.folder}data/".encode())
    apply = w.apply()
    poll("ClickHouse's first upload", upload.caught.is_set, apply)
    proxy.cut()
    time.sleep(4)
    assert w.folder + ".backup" not in w.keys_at(w.folder)
    proxy.restore()

    assert apply.finish() == 0, apply.text()
    assert w.manifests() == [w.folder + ".backup"] and w.folders() == [SLOT]
    sc = w.sidecar()
    assert sc["state"] == "complete" and [(v["level"], v["result"]) for v in sc["validations"]] == [("manifest", "ok")]
    (run,) = w.runs().values()
    assert run["status"] == "ok", run
    assert w.lock() is None
    w.converged()


def test_outage_within_the_retry_budget_is_ridden_out(world: Callable[..., World], proxy: TcpProxy) -> None:
    """S3 refuses connections for 5 s from the apply's first request (the lock's create, held
    by the proxy until the cut): within the store's retry budget (reconciler/retry.py: 5
    attempts backing off 0.5+1+2+4 s, so about 7.5 s when connections are refused at once), so
    the apply waits it out."""
    w = world(endpoint=proxy.endpoint)
    first = proxy.hold_request(f"PUT /{w.bucket}/clickhouse/.reconciler/lock ".encode())
    apply = w.apply()
    poll("the apply's first request", first.caught.is_set, apply)
    proxy.cut()
    time.sleep(5)
    proxy.restore()
    code = apply.finish()
    assert code == 0, f"a 5 s outage was not ridden out:\n{apply.text()}"
    assert w.manifests() == [w.folder + ".backup"]
    assert w.lock() is None


def test_long_outage_when_recording_the_export_fails_clearly_then_converges(
    world: Callable[..., World], proxy: TcpProxy
) -> None:
    """S3 goes away just after ClickHouse finished the backup — when the apply sends the final
    update of the sidecar, held by the proxy — and stays away until the apply gives up: it
    cannot record the outcome, nor its run record, nor release its lock. It exits 1 with one
    clear line per failure; once S3 is back and the lease has run out, the next plan sees the
    complete backup (validate, no second export) and the next apply converges."""
    w = world(endpoint=proxy.endpoint)
    update = proxy.hold_request(*sidecar_update(w))
    apply = w.apply()
    poll("the sidecar update", update.caught.is_set, apply)
    proxy.cut()  # the held update is dropped; the retries meet a refused connection
    assert w.sidecar()["state"] == "in_progress" and w.folder + ".backup" in w.keys_at(w.folder)
    code = apply.finish(timeout=300)
    failed_run = w.lock()
    proxy.restore()

    assert code == 1, apply.text()
    assert "Traceback" not in apply.text()
    line = next((x for x in apply.err if f"FAILED   export/analytics/daily/{SLOT}" in x), None)
    assert line is not None, apply.text()
    assert f"S3 PutObject on s3://{w.bucket}/{w.folder}reconciler.json failed" in line, line
    assert "Could not connect to the endpoint URL" in line, line
    assert "1 failed, 1 skipped" in "\n".join(apply.out), apply.text()
    assert failed_run is not None, "the lock should still be there: the outage prevented its release"
    assert w.sidecar()["state"] == "in_progress" and w.folder + ".backup" in w.keys_at(w.folder)

    w.wait_for_lease()
    plan = w.plan()
    assert ids(plan) == [f"validate/analytics/daily/{SLOT}"], plan  # complete: validated, not exported again
    again = w.run("apply", "--auto-approve")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"took over the lock of bucket primary from run {failed_run['lock_id']}" in again.stderr
    assert w.sidecar()["state"] == "complete"
    assert w.manifests() == [w.folder + ".backup"] and w.folders() == [SLOT]
    assert drift_of(w.converged()) == []
    assert w.lock() is None


# --------------------------------------------------------------------------------------------
# lost replies: a request the server carried out, whose reply the client never got
# --------------------------------------------------------------------------------------------


def test_lost_reply_to_the_lock_create_does_not_lock_the_apply_out(
    world: Callable[..., World], proxy: TcpProxy
) -> None:
    """The conditional create of the lock reaches S3 but its reply is lost (a connection
    reset): the store retries, and the retry meets the lock the first attempt created — the
    apply's own. It must carry on, not report itself as "another apply"."""
    w = world(endpoint=proxy.endpoint)
    proxy.drop_reply_to(f"PUT /{w.bucket}/clickhouse/.reconciler/lock ".encode())
    apply = w.apply()
    code = apply.finish()
    assert proxy.dropped, "the fault did not fire"
    assert code == 0, apply.text()
    assert w.manifests() == [w.folder + ".backup"]
    assert w.lock() is None


def test_lost_reply_to_the_sidecar_create_does_not_fail_the_export(
    world: Callable[..., World], proxy: TcpProxy
) -> None:
    """The same for the export's in_progress sidecar (a conditional create): the retry finds
    the apply's own record, and the export goes on."""
    w = world(endpoint=proxy.endpoint)
    proxy.drop_reply_to(f"PUT /{w.bucket}/{w.folder}reconciler.json ".encode(), b"If-None-Match:")
    apply = w.apply()
    code = apply.finish()
    assert proxy.dropped, "the fault did not fire"
    assert code == 0, apply.text()
    assert w.manifests() == [w.folder + ".backup"] and w.folders() == [SLOT]
    assert w.sidecar()["state"] == "complete"


def test_lost_reply_to_a_lease_renewal_does_not_lose_the_lock(world: Callable[..., World], proxy: TcpProxy) -> None:
    """The same for a renewal of the lease (a replace conditional on the lock's ETag): the
    retry meets the ETag of the apply's own renewal. The apply still holds the lock; it must
    not decide it lost it (skipping the rest of its actions, leaving the lock behind)."""
    w = world(endpoint=proxy.endpoint)
    proxy.drop_reply_to(f"PUT /{w.bucket}/clickhouse/.reconciler/lock ".encode(), b"If-Match:")
    update = proxy.hold_request(*sidecar_update(w))  # keeps the apply running until a renewal
    apply = w.apply()
    poll("the end of the export", update.caught.is_set, apply)
    poll("a renewal of the lease", lambda: proxy.dropped, apply, timeout=LEASE * 3)
    time.sleep(2)  # the store retries the renewal after its first backoff (0.5-1 s)
    update.release()
    code = apply.finish()
    assert code == 0, apply.text()
    assert w.manifests() == [w.folder + ".backup"]
    assert [v["result"] for v in w.sidecar()["validations"]] == ["ok"]
    assert w.lock() is None
