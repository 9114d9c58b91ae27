"""The secret scan (issue 9, part 6): credentials given through ${VAR} never leave the process.

A full cycle — validate, plan --out, plan --format markdown, apply of the saved plan, status,
drift, a failing command, all with --debug and a metrics file — on S3 (moto: any key works, so
distinctive ones are used) and on Azure (Azurite: its real, well-known key, which must not
appear either), with an extra service whose DSN carries a distinctive password and points at a
closed port. Then every text the run produced is searched for every secret: stdout, stderr,
the plan and markdown files, the metrics file, every object left in the bucket (sidecars,
manifests, data, restore and run records, the index) and every object body the reconciler
wrote during the run, including the lock object that is gone by the end.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler import cli, clickhouse
from reconciler.model import Bucket
from reconciler.stores import open_store
from reconciler.stores.azure import AzureStore
from reconciler.stores.s3 import S3Store
from tests.support.e2e import Result, run, s3_bucket_doc, unique, write_config
from tests.support.servers import free_port

NOW = "2026-11-25T06:00:00Z"
SLOT = "20261125T030000Z"
S3_KEY_ID = "AKIA-SECRET-s3-id-5c1d"
S3_SECRET = "SECRET-s3-7f3a9c"
DSN_PASSWORD = "SECRET-dsn-4b8e1f"


@pytest.fixture(autouse=True)
def _no_debug_left_over(monkeypatch: pytest.MonkeyPatch) -> None:
    """An in-process ``--debug`` run leaves ``cli._state["debug"]`` set (see the report): start
    each test without it, and put back what was there after."""
    monkeypatch.setitem(cli._state, "debug", False)


class Writes:
    """Every object body a store writes during the test, whatever the key (the lock too)."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()

    def wrap(self, fn: Callable[..., str]) -> Callable[..., str]:
        def recording(store: Any, key: str, data: bytes, *args: Any, **kwargs: Any) -> str:
            with self._lock:
                self.bodies.append((key, bytes(data)))
            return fn(store, key, data, *args, **kwargs)

        return recording


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> Iterator[Writes]:
    w = Writes()
    for cls in (S3Store, AzureStore):
        for method in ("write", "create", "replace"):
            monkeypatch.setattr(cls, method, w.wrap(getattr(cls, method)))
    yield w


def variants(secret: str) -> list[str]:
    """The forms a secret could leak in: as is, URL-encoded, and its first half."""
    return sorted(
        {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret), secret[: len(secret) // 2]}
    )


def assert_nowhere(secrets: list[str], texts: dict[str, bytes]) -> None:
    assert texts, "nothing to search"
    leaks = [
        (where, form)
        for where, data in texts.items()
        for secret in secrets
        for form in variants(secret)
        if form.encode() in data
    ]
    assert not leaks, f"secrets found: {leaks[:10]}"


def seed(ch: clickhouse.ClickHouse) -> str:
    db = unique("sec")
    ch.command(f"CREATE DATABASE {db}")
    ch.command(f"CREATE TABLE {db}.orders (id UInt64, note String) ENGINE = MergeTree ORDER BY id")
    ch.command(f"INSERT INTO {db}.orders SELECT number, toString(number) FROM numbers(500)")
    return db


def full_cycle(tmp_path: Path, bucket_doc: dict[str, Any], ch: clickhouse.ClickHouse) -> dict[str, bytes]:
    """Run every command (with --debug) and return every text it produced, by where it was."""
    db = seed(ch)
    cfg = str(
        write_config(
            tmp_path / "config.yaml",
            {
                "services": {
                    "analytics": {"dsn": "${TEST_DSN}"},
                    "staging": {"dsn": "${TEST_DSN}"},
                    # distinctive password, closed port: every attempt to reach it fails
                    "remote": {"dsn": f"http://default:${{SEC_DSN_PASSWORD}}@127.0.0.1:{free_port()}"},
                },
                "buckets": {"primary": bucket_doc},
                "schedules": {
                    "daily": {"service": "analytics", "bucket": "primary", "databases": [db], "cron": "0 3 * * *"},
                    "remote-daily": {"service": "remote", "bucket": "primary", "cron": "0 3 * * *"},
                },
                "restores": {
                    "back": {"from": {"schedule": "daily"}, "to": {"service": "staging", "databases": {db: db + "_r"}}}
                },
            },
        )
    )
    plan_file, metrics = tmp_path / "plan.json", tmp_path / "metrics.prom"
    results: dict[str, Result] = {}

    def cli(name: str, *args: str, codes: tuple[int, ...]) -> Result:
        r = run("--debug", *args)
        assert r.code in codes, (name, r.code, r.out, r.err)
        assert "internal error" not in r.err, r.err
        results[name] = r
        return r

    cli("validate", "validate", "-f", cfg, codes=(0,))
    cli(
        "plan",
        "plan",
        "-f",
        cfg,
        "--now",
        NOW,
        "--out",
        str(plan_file),
        "--format",
        "json",
        "--metrics-file",
        str(metrics),
        codes=(0,),
    )
    plan = results["plan"].json()
    assert {d["type"] for d in plan["drift"]} >= {"unreachable_service"}
    assert [a["id"] for a in plan["actions"]][:2] == [
        f"export/analytics/daily/{SLOT}",
        f"validate/analytics/daily/{SLOT}",
    ]
    cli("markdown", "plan", "-f", cfg, "--now", NOW, "--format", "markdown", codes=(0,))
    applied = cli(
        "apply", "apply", "-f", cfg, str(plan_file), "--auto-approve", "--metrics-file", str(metrics), codes=(0, 1)
    )
    assert "failed: restore/back" not in applied.out and "failed: export/analytics" not in applied.out, applied.out
    cli("status", "status", "-f", cfg, "--format", "json", "--now", NOW, codes=(0,))
    assert results["status"].json()["runs"]["primary"], "the apply left a run record"
    cli("status-text", "status", "-f", cfg, "--now", NOW, codes=(0,))
    cli("drift", "drift", "-f", cfg, "--now", NOW, "--metrics-file", str(metrics), codes=(2,))
    cli("drift-json", "drift", "-f", cfg, "--now", NOW, "--format", "json", codes=(2,))
    # errors, with --debug: a stale saved plan (traceback printed) and a bad lock id
    stale = cli("stale-apply", "apply", "-f", cfg, str(plan_file), "--auto-approve", codes=(1,))
    assert "stale" in stale.err and "Traceback" in stale.err
    cli("force-unlock", "force-unlock", "-f", cfg, "--bucket", "primary", "no-such-run", codes=(1,))

    texts: dict[str, bytes] = {}
    for name, r in results.items():
        texts[f"{name}:stdout"] = r.out.encode()
        texts[f"{name}:stderr"] = r.err.encode()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            texts[f"file:{path.name}"] = path.read_bytes()
    texts["markdown-file"] = results["markdown"].out.encode()
    assert texts["file:plan.json"] and texts["file:metrics.prom"]
    return texts


def bucket_objects(bucket: Bucket) -> dict[str, bytes]:
    store = open_store(bucket)
    out = {}
    for obj in store.list(""):
        got = store.read(obj.key)
        assert got is not None
        out[f"object:{obj.key}"] = got[0]
    return out


def check_what_was_written(texts: dict[str, bytes], writes: Writes, objects: dict[str, bytes]) -> None:
    kinds = {key.rsplit("/", 1)[-1] for key in objects}
    assert {".backup", "reconciler.json", "back.json"} <= kinds, kinds  # manifest, sidecar, restore record
    assert any("/.reconciler/runs/" in key for key in objects), "no run record"
    assert any(key.endswith("/.reconciler/lock") for key, _ in writes.bodies), "the lock was never written"
    texts.update(objects)
    texts.update({f"written:{i}:{key}": body for i, (key, body) in enumerate(writes.bodies)})


def test_no_secret_leaves_the_process_s3(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    s3_server: Any,
    s3_bucket: Bucket,
    chdb_dsn: str,
    ch: clickhouse.ClickHouse,
    writes: Writes,
) -> None:
    monkeypatch.setenv("TEST_DSN", chdb_dsn)
    monkeypatch.setenv("TEST_S3_KEY", S3_KEY_ID)
    monkeypatch.setenv("TEST_S3_SECRET", S3_SECRET)
    monkeypatch.setenv("SEC_DSN_PASSWORD", DSN_PASSWORD)
    texts = full_cycle(tmp_path, s3_bucket_doc(s3_bucket), ch)
    check_what_was_written(texts, writes, bucket_objects(s3_bucket))
    assert_nowhere([S3_KEY_ID, S3_SECRET, DSN_PASSWORD], texts)


def test_no_secret_leaves_the_process_azure(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    azure_bucket: Bucket,
    chdb_dsn: str,
    ch: clickhouse.ClickHouse,
    writes: Writes,
) -> None:
    key = azure_bucket.credentials.account_key
    assert key and len(key) > 40
    monkeypatch.setenv("TEST_DSN", chdb_dsn)
    monkeypatch.setenv("SEC_AZ_ACCOUNT", azure_bucket.credentials.account_name or "")
    monkeypatch.setenv("SEC_AZ_KEY", key)
    monkeypatch.setenv("SEC_DSN_PASSWORD", DSN_PASSWORD)
    doc = {
        "provider": "azure",
        "bucket": azure_bucket.bucket,
        "prefix": "clickhouse",
        "endpoint": azure_bucket.endpoint,
        "credentials": {"account_name": "${SEC_AZ_ACCOUNT}", "account_key": "${SEC_AZ_KEY}"},
    }
    texts = full_cycle(tmp_path, doc, ch)
    check_what_was_written(texts, writes, bucket_objects(azure_bucket))
    assert_nowhere([key, DSN_PASSWORD], texts)


# --------------------------------------------------------------------------------------------
# A literal secret is refused, and not repeated
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, where",
    [
        ("secret_access_key", "buckets.primary.credentials.secret_access_key"),
        ("session_token", "buckets.primary.credentials.session_token"),
    ],
)
def test_a_literal_secret_is_refused_by_validate(tmp_path: Path, field: str, where: str) -> None:
    cfg = tmp_path / "literal.yaml"
    cfg.write_text(
        "version: 1\n"
        "buckets:\n"
        "  primary:\n"
        "    provider: s3\n"
        "    bucket: acme-ch-backups\n"
        "    credentials:\n"
        f"      {field}: SECRET-literal-9e8d\n"
    )
    r = run("validate", "-f", str(cfg))
    assert r.code == 1 and r.out == ""
    column = 9 + len(field)  # after `      <field>: `
    assert r.err.splitlines() == [
        f"error: `{field}` is a literal secret; write `${{SOME_VAR}}` and set it in the environment "
        f"({cfg}:7:{column} at {where})"
    ]
    assert "SECRET-literal" not in r.err
