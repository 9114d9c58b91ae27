"""``notify`` without a network: the config form, the secret URL, the events and their text."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from reconciler import redact
from reconciler.config import load_config
from reconciler.model import ApplyResult, Drift, DriftType, Outcome, OutcomeStatus, Plan
from reconciler.operations.notify import apply_event, drift_event

URL = "https://hooks.slack.com/services/T0AAAA/B0BBBB/xyzSecretToken123"

DOC = """version: 1
services: {analytics: {dsn: "chdb:///tmp/x"}}
buckets: {primary: {provider: s3, bucket: acme-ch-backups}}
schedules: {daily: {service: analytics, bucket: primary, cron: "0 3 * * *"}}
notify:
  - url: ${HOOK}
  - url: ${OTHER}
    events: [success]
"""


def load(tmp_path: Path, url: str = URL):  # type: ignore[no-untyped-def]
    p = tmp_path / "c.yaml"
    p.write_text(DOC)
    return load_config(str(p), env={"HOOK": url, "OTHER": "http://127.0.0.1:9/x/other-token-1234"})


def test_the_url_is_a_secret_and_events_default_to_failure_and_drift(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert [h.events for h in config.notify] == [("failure", "drift"), ("success",)]
    assert URL in config.secrets() and "/services/T0AAAA/B0BBBB/xyzSecretToken123" in config.secrets()
    assert "xyzSecret" not in repr(config.notify)
    # the digest a saved plan records neither holds the URL nor changes when it is rotated
    assert load(tmp_path, URL.replace("123", "456")).digest == config.digest
    redact.register(config.secrets())
    assert redact.redact(f"POST {URL} failed; path /services/T0AAAA/B0BBBB/xyzSecretToken123") == (
        "POST [HIDDEN] failed; path [HIDDEN]"
    )


def _plan(*drift: Drift) -> Plan:
    now = datetime(2026, 11, 25, 6, tzinfo=UTC)
    return Plan(now, "sha256:c", "sha256:s", (), drift)


def test_events_and_their_short_text(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert drift_event(config, _plan(), "drift") is None  # no drift: nothing to tell
    rpo = Drift(DriftType.RPO_VIOLATION, "slot 20261124T030000Z has passed", schedule="daily")
    e = drift_event(config, _plan(rpo, rpo, rpo, rpo), "plan")
    assert e is not None and e.kind == "drift" and len(e.drift) == 4
    assert e.text == (
        "reconciler plan (c.yaml): 4 drift entries: rpo_violation daily: slot 20261124T030000Z has passed; "
        "rpo_violation daily: slot 20261124T030000Z has passed; rpo_violation daily: slot 20261124T030000Z "
        "has passed and 1 more"
    )
    failed = ApplyResult(
        "r1",
        (Outcome("export/analytics/daily/X", OutcomeStatus.FAILED, "BACKUP_FAILED: " + "x" * 600),),
        {"run_id": "r1", "status": "failed"},
    )
    e = apply_event(config, failed, None)
    assert e.kind == "failure" and e.run == {"run_id": "r1", "status": "failed"} and len(e.text) == 400
    assert apply_event(config, None, None).text == "reconciler apply (c.yaml): nothing to do"
    e = apply_event(config, None, None, error=f"bucket primary is locked by run x ({URL})")
    redact.register(config.secrets())
    assert e.kind == "failure" and URL not in json.loads(e.payload())["text"]
