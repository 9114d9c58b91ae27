"""A tampered bucket (issue 9, part 5): objects in a schedule's prefix and in ``.reconciler/``
that the reconciler did not write, or that were changed behind its back.

Each is reported (``unmanaged_backup`` drift with the reason, a failed validation, a warning)
and never trusted blindly: a garbage lock is not a live holder, a tampered sidecar does not make
a folder deletable unless the schedule says ``prune_unmanaged``, a tampered manifest fails
validation with a message that says why. And nothing crashes: plan/drift/status exit 0 or 2,
never 1 with a traceback. Real S3 server (moto) and the session's chdb engine.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler import cli
from reconciler.apply.validate import check_backup
from reconciler.bucket.records import read_lock, read_restore_record
from reconciler.bucket.sidecar import Sidecar
from reconciler.model import UTC, Bucket, Scope, Validation, ValidationLevel, ValidationResult, iso
from reconciler.model.slots import parse_backup_name
from reconciler.stores import open_store
from tests.support.e2e import Result, keys, read_json, run, s3_bucket_doc, write_config

NOW = "2026-11-25T06:00:00Z"
LATEST = "20261125T030000Z"
PREFIX = "clickhouse/analytics/daily/"
LOCK = "clickhouse/.reconciler/lock"
MIB = 1024 * 1024
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_debug_left_over(monkeypatch: pytest.MonkeyPatch) -> None:
    """An in-process ``--debug`` run leaves ``cli._state["debug"]`` set (see the report): start
    each test without it, and put back what was there after."""
    monkeypatch.setitem(cli._state, "debug", False)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, s3_server: Any, chdb_dsn: str) -> None:
    monkeypatch.setenv("TEST_S3_KEY", s3_server.access_key)
    monkeypatch.setenv("TEST_S3_SECRET", s3_server.secret_key)
    monkeypatch.setenv("TEST_DSN", chdb_dsn)


class Bench:
    """A config on the test bucket, and helpers to put objects into it."""

    def __init__(self, tmp_path: Path, s3: Any, bucket: Bucket) -> None:
        self.tmp_path, self.s3, self.bucket = tmp_path, s3, bucket
        self.cfg = self.config()

    def config(self, restores: bool = False, **schedule: Any) -> str:
        doc: dict[str, Any] = {
            "services": {"analytics": {"dsn": "${TEST_DSN}"}, "staging": {"dsn": "${TEST_DSN}"}},
            "buckets": {"primary": s3_bucket_doc(self.bucket)},
            "schedules": {"daily": {"service": "analytics", "bucket": "primary", "cron": "0 3 * * *", **schedule}},
        }
        if restores:
            doc["restores"] = {"again": {"from": {"schedule": "daily"}, "to": {"service": "staging"}}}
        return str(write_config(self.tmp_path / "config.yaml", doc))

    def put(self, key: str, body: bytes | str) -> None:
        self.s3.put_object(Bucket=self.bucket.bucket, Key=key, Body=body.encode() if isinstance(body, str) else body)

    def sidecar(self, name: str, state: str = "complete", validated: bool | None = None, **over: Any) -> bytes:
        slot = parse_backup_name(name)
        assert slot is not None
        validations: tuple[Validation, ...] = ()
        if validated is not None:
            result = ValidationResult.OK if validated else ValidationResult.FAILED
            validations = (Validation(ValidationLevel.MANIFEST, slot[0] + timedelta(minutes=5), result, "as written"),)
        sc = Sidecar(
            service="analytics",
            schedule="daily",
            backup=name,
            slot=slot[0],
            kind="full",
            base=None,
            scope=Scope(),
            location=f"s3://{self.bucket.bucket}/{PREFIX}{name}/",
            operation_id=f"op-{name}",
            state=state,  # type: ignore[arg-type]  # also states no reconciler writes
            operation_status="BACKUP_CREATED" if state == "complete" else None,
            started_at=slot[0],
            finished_at=slot[0] + timedelta(minutes=1),
            run_id="20261125T030000Z-000000",
            validations=validations,
        )
        doc = sc.to_json()
        doc.update(over)
        return json.dumps(doc).encode()

    def good_backup(self, name: str, validated: bool | None = True) -> None:
        """A complete backup whose manifest lists one file, present with its size."""
        self.put(PREFIX + name + "/.backup", manifest([("data/part.bin", 3)]))
        self.put(PREFIX + name + "/data/part.bin", b"abc")
        self.put(PREFIX + name + "/reconciler.json", self.sidecar(name, validated=validated))

    def listing(self) -> dict[str, int]:
        return keys(self.s3, self.bucket.bucket)


def manifest(files: list[tuple[str, int]]) -> str:
    items = "".join(f"<file><name>{n}</name><size>{s}</size><checksum>00</checksum></file>" for n, s in files)
    return f"<config><version>1</version><uuid>u</uuid><contents>{items}</contents></config>"


@pytest.fixture
def bench(tmp_path: Path, env: None, s3_server: Any, s3_bucket: Bucket) -> Bench:
    return Bench(tmp_path, s3_server.client(), s3_bucket)


def sane(r: Result, *codes: int) -> Result:
    """Exit code among ``codes``, no traceback, no internal error, nothing unprintable."""
    assert r.code in codes, (r.code, r.out, r.err)
    for text in (r.out, r.err):
        assert "Traceback" not in text and "internal error" not in text, text
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text, text
    return r


def plan_json(cfg: str) -> dict[str, Any]:
    return sane(run("plan", "-f", cfg, "--now", NOW, "--format", "json"), 0).json()  # type: ignore[no-any-return]


def drift_of(doc: dict[str, Any], kind: str) -> dict[str, str]:
    return {d["backup"]: d["detail"] for d in doc["drift"] if d["type"] == kind}


# --------------------------------------------------------------------------------------------
# Sidecars and folders
# --------------------------------------------------------------------------------------------

#: folder -> (how its sidecar is tampered, the reason the plan must give)
TAMPERED: dict[str, tuple[Any, str]] = {
    "20261102T030000Z": (b"{not json", "malformed sidecar: not JSON"),
    "20261103T030000Z": ({"service": 5}, "malformed sidecar: expected a string, got int"),
    "20261104T030000Z": (b" " * (4 * MIB + 1), f"sidecar is {4 * MIB + 1} bytes, not a reconciler record"),
    "20261105T030000Z": (
        {"schedule": "weekly"},
        "sidecar names analytics/weekly/20261105T030000Z, not the folder it is in",
    ),
    "20261106T030000Z": ({"format_version": 2}, "sidecar format_version 2 is not one this reconciler reads (1)"),
    "20261107T030000Z": (b"[" * 200_000, "malformed sidecar: not JSON (maximum recursion depth exceeded"),
    "20261108T030000Z": ({"service": "analytics\x1b[2J"}, "malformed sidecar: 'analytics\\x1b[2J' is not a name"),
    "20261109T030000Z": ({"validations": {"level": "manifest"}}, "malformed sidecar: expected a list, got dict"),
    "20261110T030000Z": ({"chain": "20261101T030000Z"}, "malformed sidecar: expected a list, got str"),
    "20261111T030000Z": (
        {"state": "done"},
        "malformed sidecar: 'done' is not one of in_progress, complete, failed, pruning",
    ),
    "20261112T030000Z": (b"\xff\xfe\x00garbage", "malformed sidecar: not JSON"),
    "20261113T030000Z": (b"null", "malformed sidecar: a JSON NoneType, not an object"),
}


def tamper(bench: Bench) -> None:
    bench.good_backup(LATEST)  # the latest slot is fine: no export is due
    # no sidecar at all, and a manifest that is not XML: unmanaged, reported without a reason
    bench.put(PREFIX + "20261101T030000Z/.backup", "this is not XML")
    bench.put(PREFIX + "20261101T030000Z/data/x.bin", b"x")
    for name, (how, _) in TAMPERED.items():
        bench.put(PREFIX + name + "/.backup", manifest([]))
        body = how if isinstance(how, bytes) else bench.sidecar(name, validated=True, **how)
        bench.put(PREFIX + name + "/reconciler.json", body)
    # a well-formed sidecar whose recorded error would rewrite the terminal
    bench.put(
        PREFIX + "20261114T030000Z/reconciler.json",
        bench.sidecar(
            "20261114T030000Z",
            state="failed",
            operation={"id": "op-x", "status": "BACKUP_FAILED", "error": "boom\x1b]0;owned\x07\x1b[2J\u202eevil"},
        ),
    )
    # objects outside any folder, and a folder name that is no slot
    bench.put(PREFIX + "stray-object", "x")
    bench.put(PREFIX + "not-a-slot/reconciler.json", b"{}")


def test_tampered_sidecars_are_reported_never_trusted(bench: Bench) -> None:
    tamper(bench)
    before = bench.listing()
    doc = plan_json(bench.cfg)

    unmanaged = drift_of(doc, "unmanaged_backup")
    assert set(unmanaged) == {"20261101T030000Z", "not-a-slot", *TAMPERED}
    assert unmanaged["20261101T030000Z"] == (
        "20261101T030000Z has no reconciler sidecar; it is reported, never deleted unless prune_unmanaged"
    )
    for name, (_, reason) in TAMPERED.items():
        assert reason in unmanaged[name], (name, unmanaged[name])
        # a sidecar that cannot be read may be another (newer) reconciler's: never deleted, even
        # with prune_unmanaged
        assert unmanaged[name].endswith("; it is reported, never deleted")
        assert "holds a sidecar this reconciler cannot read" in unmanaged[name]
    failed = drift_of(doc, "failed_backup")
    assert failed == {"20261114T030000Z": "20261114T030000Z failed: boom\\x1b]0;owned\\x07\\x1b[2J\\u202eevil"}

    # nothing is done to them: no prune, no validate, no export (the latest slot is complete)
    assert [a["id"] for a in doc["actions"]] == ["prune/analytics/daily/20261114T030000Z"]  # the failed attempt only
    assert all(a["backup"] not in unmanaged for a in doc["actions"])

    status = sane(run("status", "-f", bench.cfg, "--format", "json", "--now", NOW), 0).json()
    states = {b["name"]: (b["state"], b["error"]) for b in status["schedules"][0]["backups"]}
    assert states[LATEST] == ("complete", None)
    for name, (_, reason) in TAMPERED.items():
        assert states[name][0] == "unmanaged" and reason in states[name][1]
    assert status["schedules"][0]["newest_complete"] == LATEST

    text = sane(run("status", "-f", bench.cfg, "--now", NOW), 0)
    assert "20261107T030000Z" in text.out
    drift = sane(run("drift", "-f", bench.cfg, "--now", NOW), 2)
    assert "unmanaged" in drift.out and "20261108T030000Z" in drift.out
    drift_json = sane(run("drift", "-f", bench.cfg, "--now", NOW, "--format", "json"), 2).json()
    assert drift_of(drift_json, "unmanaged_backup") == unmanaged
    sane(run("plan", "-f", bench.cfg, "--now", NOW, "--format", "markdown"), 0)
    assert bench.listing() == before  # observing never writes


def test_folders_with_unreadable_sidecars_are_never_pruned(bench: Bench) -> None:
    """With prune_unmanaged, folders without a sidecar are pruned; folders whose sidecar cannot be
    read (tampered, or another, newer reconciler's) are kept and reported, and the good backup
    stays."""
    tamper(bench)
    cfg = bench.config(prune_unmanaged=True)
    doc = plan_json(cfg)
    pruned = {a["backup"]: a["reason"] for a in doc["actions"] if a["type"] == "prune"}
    assert set(pruned) == {"20261101T030000Z", "20261114T030000Z"}  # not-a-slot holds an unreadable sidecar
    assert pruned["20261101T030000Z"] == "no reconciler sidecar, and the schedule sets prune_unmanaged: true"
    assert LATEST not in pruned and not set(pruned) & set(TAMPERED)

    r = sane(run("apply", "-f", cfg, "--now", NOW, "--auto-approve"), 0)
    assert "Apply complete" in r.out and " 0 failed" in r.out, r.out
    left = {k[len(PREFIX) :].split("/")[0] for k in bench.listing() if k.startswith(PREFIX)}
    assert left == {LATEST, "stray-object", "not-a-slot", *TAMPERED}


# --------------------------------------------------------------------------------------------
# Manifests: validation says what is wrong
# --------------------------------------------------------------------------------------------

ENTITY_BOMB = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    + "]><config><version>&lol9;</version></config>"
)

#: what the .backup holds -> the start of the failed validation's detail
MANIFESTS: dict[str, tuple[str | bytes, str]] = {
    "not-xml": ("this is not a manifest", "manifest is not valid XML: syntax error: line 1, column 0"),
    "wrong-root": ("<backup><version>1</version></backup>", "manifest root element is <backup>, expected <config>"),
    "wrong-types": (
        "<config><version>1</version><contents><file><name>data/part.bin</name><size>three</size></file></contents></config>",
        "manifest size of data/part.bin is not a number: 'three'",
    ),
    "negative-size": (manifest([("data/part.bin", -3)]), "manifest gives file data/part.bin a negative size"),
    "missing-files": (manifest([("data/part.bin", 3), ("data/gone.bin", 10)]), "data/gone.bin is missing"),
    "wrong-size": (manifest([("data/part.bin", 4)]), "data/part.bin is 3 bytes, the manifest says 4"),
    "ten-mib": (
        "<config><version>1</version><contents>"
        + "".join(f"<file><name>data/f{i:07d}.bin</name><size>1</size></file>" for i in range(200_000))
        + "</contents></config>",
        "data/f0000000.bin is missing; data/f0000001.bin is missing",
    ),
    "entity-bomb": (ENTITY_BOMB, "manifest is not valid XML: limit on input amplification factor"),
    "external-entity": (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><config><version>&e;</version></config>',
        "manifest is not valid XML: undefined entity &e;",
    ),
    "binary": (bytes(range(256)) * 64, "manifest is not valid XML: "),
    "control-chars-in-name": (manifest([("data/x&#10;y", 1)]), "data/x\\ny is missing"),
}


@pytest.mark.parametrize("case", sorted(set(MANIFESTS) - {"ten-mib"}))  # that one goes through apply below
def test_manifest_check_of_a_tampered_manifest(bench: Bench, case: str) -> None:
    """The `manifest` level on each tampered .backup: a failure that says why, never an exception."""
    content, detail = MANIFESTS[case]
    bench.good_backup(LATEST, validated=None)
    bench.put(PREFIX + LATEST + "/.backup", content)
    ok, got, _, _ = check_backup(open_store(bench.bucket), PREFIX + LATEST + "/")
    assert not ok and got.startswith(detail), got
    assert got.isprintable() and len(got) < 1000


@pytest.mark.parametrize("case", ["wrong-types", "ten-mib"])
def test_validation_of_a_tampered_manifest_fails_clearly(bench: Bench, case: str) -> None:
    content, detail = MANIFESTS[case]
    bench.good_backup(LATEST, validated=None)  # complete, never validated: the plan validates it
    bench.put(PREFIX + LATEST + "/.backup", content)
    if case == "ten-mib":
        assert len(content) > 10 * 1000 * 1000
    doc = plan_json(bench.cfg)
    assert [a["id"] for a in doc["actions"]] == [f"validate/analytics/daily/{LATEST}"]

    r = sane(run("apply", "-f", bench.cfg, "--now", NOW, "--auto-approve"), 1)
    assert f"failed: validate/analytics/daily/{LATEST}: {detail}" in r.out, r.out
    assert "1 failed" in r.out
    recorded = read_json(bench.s3, bench.bucket.bucket, PREFIX + LATEST + "/reconciler.json")["validations"]
    assert [(v["level"], v["result"]) for v in recorded] == [("manifest", "failed")]
    assert recorded[0]["detail"].startswith(detail)

    after = plan_json(bench.cfg)
    broken = drift_of(after, "broken_backup")
    assert broken[LATEST].startswith(f"{LATEST} failed validation: {detail}")
    assert bench.listing().get(LOCK) is None  # released


# --------------------------------------------------------------------------------------------
# The lock
# --------------------------------------------------------------------------------------------

GARBAGE_LOCKS: dict[str, bytes] = {
    "not-json": b"\x00\x01garbage",
    "json-list": b"[1, 2, 3]",
    "wrong-types": json.dumps(
        {"lock_id": 5, "host": ["h"], "pid": "x", "started_at": 0, "lease_expires_at": 1}
    ).encode(),
    "huge-pid": b'{"lock_id": "r", "host": "h", "pid": 1e400, "started_at": "2026-11-25T03:00:00Z", '
    b'"lease_expires_at": "2999-01-01T00:00:00Z"}',
    "escape-in-id": json.dumps(
        {
            "lock_id": "r\x1b[2J",
            "host": "h",
            "pid": 1,
            "started_at": "2026-11-25T03:00:00Z",
            "lease_expires_at": "2999-01-01T00:00:00Z",
        }
    ).encode(),
    "nested": b"[" * 200_000,
    "empty": b"",
}


def test_a_garbage_lock_reads_as_expired(bench: Bench) -> None:
    store = open_store(bench.bucket)
    for case, body in GARBAGE_LOCKS.items():
        bench.put(LOCK, body)
        lock = read_lock(store, LOCK)
        assert lock is not None, case
        assert (lock.lock_id, lock.host, lock.lease_expires_at) == ("(unreadable lock object)", "?", EPOCH), case


@pytest.mark.parametrize("case", ["not-json", "escape-in-id"])
def test_a_garbage_lock_is_not_a_live_holder(bench: Bench, case: str) -> None:
    bench.good_backup(LATEST)
    bench.put(LOCK, GARBAGE_LOCKS[case])
    assert plan_json(bench.cfg)["actions"] == []

    r = sane(run("apply", "-f", bench.cfg, "--now", NOW, "--auto-approve"), 0)
    assert "Nothing to do." in r.out
    assert "took over the lock of bucket primary from run (unreadable lock object)" in r.err
    assert LOCK not in bench.listing()  # taken over, then released


def test_a_forged_live_lock_blocks_until_force_unlock(bench: Bench) -> None:
    """A well-formed lock is a holder (until its lease ends, or force-unlock): that is its job."""
    bench.good_backup(LATEST)
    started = datetime(2026, 11, 25, 3, tzinfo=UTC)
    bench.put(
        LOCK,
        json.dumps(
            {
                "lock_id": "forged-run",
                "host": "elsewhere",
                "pid": 7,
                "started_at": iso(started),
                "lease_expires_at": "2999-01-01T00:00:00Z",
            }
        ),
    )
    blocked = sane(run("apply", "-f", bench.cfg, "--now", NOW, "--auto-approve"), 1)
    assert "another apply holds the lock" in blocked.err and "run forced-run" not in blocked.err
    assert "run forged-run on elsewhere (pid 7)" in blocked.err
    assert "force-unlock --bucket primary forged-run" in blocked.err
    sane(run("force-unlock", "-f", bench.cfg, "--bucket", "primary", "forged-run"), 0)
    sane(run("apply", "-f", bench.cfg, "--now", NOW, "--auto-approve"), 0)


# --------------------------------------------------------------------------------------------
# Restore records and run records
# --------------------------------------------------------------------------------------------

RESTORE_KEY = "clickhouse/.reconciler/restores/again.json"


GARBAGE_RECORDS = [
    b"garbage",
    b"[" * 200_000,
    json.dumps({"restore": "again", "backup": 5}).encode(),
    b"{}",
    json.dumps({"restore": "again", "backup": LATEST, "spec_digest": "x", "done_at": 5, "run_id": "r"}).encode(),
    json.dumps(
        {"restore": "again\x1b[2J", "backup": LATEST, "spec_digest": "x", "done_at": NOW, "run_id": "r"}
    ).encode(),
]


def test_a_garbage_restore_record_reads_as_none(bench: Bench) -> None:
    store = open_store(bench.bucket)
    for body in GARBAGE_RECORDS:
        bench.put(RESTORE_KEY, body)
        assert read_restore_record(store, RESTORE_KEY) is None, body[:80]


def test_a_garbage_restore_record_does_not_crash_the_plan(bench: Bench) -> None:
    bench.good_backup(LATEST)
    cfg = bench.config(restores=True)
    bench.put(RESTORE_KEY, b"[" * 200_000)
    doc = plan_json(cfg)
    assert doc["actions"] == []  # not run twice: the warning says how to run it again
    sane(run("drift", "-f", cfg, "--now", NOW), 0)


def test_a_garbage_restore_record_is_reported(bench: Bench) -> None:
    bench.good_backup(LATEST)
    cfg = bench.config(restores=True)
    bench.put(RESTORE_KEY, b"garbage")
    doc = plan_json(cfg)
    assert any("again" in w and "record" in w for w in doc["warnings"]), doc["warnings"]


def test_garbage_run_records_are_shown_as_unreadable(bench: Bench) -> None:
    bench.good_backup(LATEST)
    runs = "clickhouse/.reconciler/runs/"
    bench.put(runs + "20261125T040000Z-aaaaaa.json", b"garbage")
    bench.put(runs + "20261125T041000Z-bbbbbb.json", json.dumps({"run_id": "x\x1b[2J", "status": "ok"}))
    bench.put(
        runs + "20261125T042000Z-cccccc.json", json.dumps({"run_id": "r", "status": "ok", "summary": {"done": "\x1b"}})
    )
    bench.put(runs + "20261125T043000Z-dddddd.json", b"[" * 200_000)
    status = sane(run("status", "-f", bench.cfg, "--format", "json", "--now", NOW), 0).json()
    assert [r["status"] for r in status["runs"]["primary"]] == ["unreadable"] * 4
    sane(run("status", "-f", bench.cfg, "--now", NOW), 0)
