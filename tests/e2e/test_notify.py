"""``notify`` end to end: the CLI against chdb and moto, webhooks on loopback (tests/support/webhook.py).

What is checked: which runs tell which webhooks (success and failure of apply, drift of drift and
plan), the JSON they get (text, the run record as written to the bucket, the drift), bounded
retries of a webhook that answers 500 or cannot be reached, that such a webhook is a warning and
never changes the exit code, and that the URL (a secret) appears in no output, file or object.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.model import Bucket
from reconciler.operations import notify
from reconciler.retry import RetryPolicy
from tests.support.e2e import Result, keys, read_json, run, s3_bucket_doc, small_source, write_config
from tests.support.webhook import WebhookReceiver

NOW = "2026-11-25T06:00:00Z"
LATER = "2026-11-28T06:00:00Z"  # two daily slots missed: rpo_violation


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same bounded policy, with short backoffs so that a failing webhook costs little time."""
    monkeypatch.setattr(notify, "POLICY", RetryPolicy(attempts=3, total=10.0, initial=0.05, max_wait=0.1, jitter=0.0))


@pytest.fixture
def hooks() -> Iterator[dict[str, WebhookReceiver]]:
    with (
        WebhookReceiver(token="T1/B1/success-token-8c1e44a0") as ok,
        WebhookReceiver(token="T2/B2/alerts-token-27d9b3f1") as alerts,
    ):
        yield {"ok": ok, "alerts": alerts}


def config(tmp_path: Path, bucket: Bucket, db: str, hooks: list[dict[str, Any]]) -> str:
    return str(
        write_config(
            tmp_path / "config.yaml",
            {
                "services": {"analytics": {"dsn": "${TEST_DSN}"}},
                "buckets": {"primary": s3_bucket_doc(bucket)},
                "schedules": {
                    "daily": {"service": "analytics", "bucket": "primary", "databases": [db], "cron": "0 3 * * *"}
                },
                "notify": hooks,
            },
        )
    )


def no_url_in(urls: list[str], *texts: str) -> None:
    for url in urls:
        secret = url.split("/services/", 1)[1]
        for text in texts:
            assert url not in text and secret not in text


def test_apply_success_and_drift_are_told_to_the_webhooks_that_asked(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    s3_server: Any,
    s3_bucket: Bucket,
    chdb_dsn: str,
    ch: Any,
    hooks: dict[str, WebhookReceiver],
) -> None:
    db = small_source(monkeypatch, s3_server, chdb_dsn, ch, "notify")
    monkeypatch.setenv("OK_HOOK", hooks["ok"].url)
    monkeypatch.setenv("ALERT_HOOK", hooks["alerts"].url)
    cfg = config(
        tmp_path,
        s3_bucket,
        db,
        [{"url": "${OK_HOOK}", "events": ["success"]}, {"url": "${ALERT_HOOK}", "events": ["failure", "drift"]}],
    )
    outputs: list[Result] = []

    applied = run("apply", "-f", cfg, "--now", NOW, "--auto-approve")
    outputs.append(applied)
    assert applied.code == 0, applied.err
    (told,) = hooks["ok"].bodies()
    assert told["event"] == "success" and told["command"] == "apply"
    assert told["text"].startswith("reconciler apply (config.yaml): 2 actions done (1 export, 1 validate)")
    s3 = s3_server.client()
    (run_key,) = [k for k in keys(s3, s3_bucket.bucket, "clickhouse/.reconciler/runs/")]
    assert told["run"] == read_json(s3, s3_bucket.bucket, run_key)  # the run record, as in the bucket
    assert told["run"]["status"] == "ok"
    # the drift the apply's plan saw (no backup yet: the slot before is an rpo_violation)
    assert [d["type"] for d in told["drift"]] == ["rpo_violation"]
    assert hooks["ok"].received[0].headers["Content-Type"] == "application/json"
    assert hooks["alerts"].bodies() == []

    # three days on, slots were missed: drift (exit 2) tells the drift webhook only
    drift = run("drift", "-f", cfg, "--now", LATER, "--format", "json")
    outputs.append(drift)
    assert drift.code == 2, drift.err
    (told,) = hooks["alerts"].bodies()
    assert told["event"] == "drift" and told["command"] == "drift" and told["run"] is None
    assert told["drift"] == drift.json()["drift"]
    assert told["text"].startswith("reconciler drift (config.yaml): 1 drift entry: rpo_violation daily: slot ")
    # a plan that finds drift tells it too; a plan without drift does not
    plan = run("plan", "-f", cfg, "--now", LATER, "--out", str(tmp_path / "plan.json"))
    outputs.append(plan)
    assert plan.code == 0 and [b["command"] for b in hooks["alerts"].bodies()] == ["drift", "plan"]
    quiet = run("plan", "-f", cfg, "--now", NOW)
    outputs.append(quiet)
    assert quiet.code == 0 and len(hooks["alerts"].bodies()) == 2 and len(hooks["ok"].bodies()) == 1

    # the URLs are secrets: in no output, no plan file, no object in the bucket
    objects = [
        s3.get_object(Bucket=s3_bucket.bucket, Key=k)["Body"].read().decode("utf-8", "replace")
        for k in keys(s3, s3_bucket.bucket)
        if not k.endswith((".bin", ".mrk2", ".cmrk2"))
    ]
    texts = [r.out + r.err for r in outputs] + [(tmp_path / "plan.json").read_text()] + objects
    no_url_in([hooks["ok"].url, hooks["alerts"].url], *texts)


def test_a_failed_apply_is_told_with_its_run_record(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    s3_server: Any,
    s3_bucket: Bucket,
    chdb_dsn: str,
    ch: Any,
    hooks: dict[str, WebhookReceiver],
) -> None:
    small_source(monkeypatch, s3_server, chdb_dsn, ch, "notify")
    monkeypatch.setenv("ALERT_HOOK", hooks["alerts"].url)
    cfg = config(tmp_path, s3_bucket, "no_such_database_here", [{"url": "${ALERT_HOOK}"}])  # default events
    applied = run("apply", "-f", cfg, "--now", NOW, "--auto-approve")
    assert applied.code == 1
    (told,) = hooks["alerts"].bodies()
    assert told["event"] == "failure" and told["run"]["status"] == "failed"
    assert told["text"].startswith("reconciler apply failed (config.yaml): 2 of 2 actions not done (export/")
    assert "UNKNOWN_DATABASE" in told["text"]
    assert [a["status"] for a in told["run"]["actions"]] == ["failed", "skipped"]

    # an apply stopped before anything ran (another apply holds the lock) is a failure too, run null
    lock = "clickhouse/.reconciler/lock"
    s3_server.client().put_object(
        Bucket=s3_bucket.bucket,
        Key=lock,
        Body=json.dumps(
            {
                "format_version": "1",
                "lock_id": "other-run",
                "host": "ci-7",
                "pid": 42,
                "started_at": "2026-11-25T05:59:00Z",
                "lease_expires_at": "2099-01-01T00:00:00Z",
            }
        ).encode(),
    )
    held = run("apply", "-f", cfg, "--now", NOW, "--auto-approve")
    assert held.code == 1 and "other-run" in held.err
    told = hooks["alerts"].bodies()[-1]
    assert told["event"] == "failure" and told["run"] is None and "other-run" in told["text"]
    no_url_in([hooks["alerts"].url], applied.out + applied.err, held.out + held.err)


def test_a_failing_webhook_is_retried_then_a_warning_and_the_exit_code_is_unchanged(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    s3_server: Any,
    s3_bucket: Bucket,
    chdb_dsn: str,
    ch: Any,
) -> None:
    db = small_source(monkeypatch, s3_server, chdb_dsn, ch, "notify")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/services/T3/B3/dead-token-0b6f2e91"
    with (
        WebhookReceiver(fail_first=-1, token="T4/B4/broken-token-4411aa") as broken,
        WebhookReceiver(fail_first=2, token="T5/B5/flaky-token-93e0c2") as flaky,
    ):
        monkeypatch.setenv("BROKEN", broken.url)
        monkeypatch.setenv("FLAKY", flaky.url)
        monkeypatch.setenv("DEAD", dead)
        hooks = [{"url": f"${{{n}}}", "events": ["success", "failure"]} for n in ("BROKEN", "FLAKY", "DEAD")]
        cfg = config(tmp_path, s3_bucket, db, hooks)
        applied = run("apply", "-f", cfg, "--now", NOW, "--auto-approve")
        assert applied.code == 0, applied.err  # the run succeeded; its webhooks do not change that
        assert len(broken.received) == 3 and len(flaky.received) == 3  # bounded: 3 attempts each
        assert flaky.bodies()[0] == flaky.bodies()[2] and flaky.bodies()[2]["event"] == "success"
        warnings = [line for line in applied.err.splitlines() if line.startswith("warning: notify")]
        assert warnings == [
            "warning: notify[0]: the success webhook was not told: POST to notify[0] failed 3 times: "
            "answered HTTP 500; the exit code is unchanged",
            "warning: notify[2]: the success webhook was not told: POST to notify[2] failed 3 times: "
            "cannot connect; the exit code is unchanged",
        ]
        # drift with a broken webhook still exits 2, and an unreachable one as well
        drift = run("--debug", "drift", "-f", cfg, "--now", LATER)
        assert drift.code == 2
        no_url_in([broken.url, flaky.url, dead], applied.out + applied.err, drift.out + drift.err)
