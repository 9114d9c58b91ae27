"""ClickHouse Cloud API: the client against the local API server, and plan/apply/drift/status
round trips through the CLI (in-process, with the session's one chdb engine as the services'
DSN and moto's S3 server for the restore records)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.apply import cloud_restore
from reconciler.cloud import api as cloud_api
from reconciler.cloud.api import CloudApiClient, CloudApiError
from reconciler.errors import TemporaryError
from reconciler.retry import RetryPolicy
from reconciler.schemas import validate_plan
from tests.support.cloud_api_server import KEY_ID, KEY_SECRET, ORG_ID, CloudApiServer
from tests.support.e2e import read_json, run, s3_bucket_doc, write_config
from tests.support.servers import free_port

FAST = RetryPolicy(attempts=3, total=10.0, initial=0.01, max_wait=0.05, jitter=0.01)
ROLE_ARN = "arn:aws:iam::123456789012:role/clickhouse-backups"
HMAC_KEY = "GOOG1EHMACKEYID0123456789ABCDEF"
HMAC_SECRET = "hmacSecret/0123456789abcdefghijSECRET"


def client(server: CloudApiServer, secret: str = KEY_SECRET, **kw: Any) -> CloudApiClient:
    return CloudApiClient(server.url, ORG_ID, KEY_ID, secret, retry=kw.pop("retry", FAST), **kw)


# --------------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------------


def test_wrong_key_is_a_clear_error_without_the_secret(cloud_api_server: CloudApiServer) -> None:
    sid = cloud_api_server.add_service("analytics")
    wrong = "wrongSecretValue-0123456789"
    with pytest.raises(CloudApiError) as err:
        client(cloud_api_server, secret=wrong).get_service(sid)
    e = err.value
    assert e.status == 401 and e.request_id
    assert f"requestId {e.request_id}" in e.message and "key_secret" in e.message
    assert wrong not in str(e) and KEY_SECRET not in str(e)
    assert len(cloud_api_server.calls()) == 1  # a refused key is not retried


def test_429_then_success(cloud_api_server: CloudApiServer) -> None:
    sid = cloud_api_server.add_service("analytics")
    cloud_api_server.fault(429, times=2)
    got = client(cloud_api_server).get_backup_configuration(sid)
    assert got["backupPeriodInHours"] == 24
    assert len(cloud_api_server.calls("GET", "/backupConfiguration")) == 3


def test_500_until_the_retries_are_used_up(cloud_api_server: CloudApiServer) -> None:
    sid = cloud_api_server.add_service("analytics")
    cloud_api_server.fault(500, times=5, error="backend exploded")
    with pytest.raises(TemporaryError) as err:
        client(cloud_api_server).list_backups(sid)
    text = str(err.value)
    assert "failed 3 times" in text and "500" in text and "backend exploded" in text and "requestId " in text
    assert KEY_SECRET not in text and KEY_ID not in text


def test_a_slow_answer_times_out_and_is_retried(cloud_api_server: CloudApiServer) -> None:
    sid = cloud_api_server.add_service("analytics")
    cloud_api_server.fault(delay=1.0)
    c = client(cloud_api_server, timeout=(2.0, 0.3))
    assert c.get_service(sid)["id"] == sid  # the second attempt answers at once
    cloud_api_server.fault(delay=1.0, times=3)
    with pytest.raises(TemporaryError, match="failed 3 times: no answer .* within the timeout"):
        c.get_service(sid)


def test_create_service_is_not_retried_after_a_500(cloud_api_server: CloudApiServer) -> None:
    sid = cloud_api_server.add_service("analytics")
    backup = cloud_api_server.add_backup(sid)
    cloud_api_server.fault(500, path="/services")
    body = {"name": "copy", "provider": "aws", "region": "us-east-1", "backupId": backup}
    with pytest.raises(CloudApiError, match="may have been carried out"):
        client(cloud_api_server).create_service(body)
    assert len(cloud_api_server.calls("POST")) == 1
    cloud_api_server.fault(429, path="/services")  # throttled: nothing happened, retried
    created = client(cloud_api_server).create_service(body)
    assert created.service["state"] == "provisioning" and created.password
    assert created.password not in repr(created)


def test_backup_bucket_none_and_secrets_never_returned(cloud_api_server: CloudApiServer) -> None:
    sid = cloud_api_server.add_service("analytics", provider="gcp", region="us-central1")
    c = client(cloud_api_server)
    assert c.get_backup_bucket(sid) is None
    body = {
        "bucketProvider": "GCP",
        "bucketPath": "https://storage.googleapis.com/b/p",
        "accessKeyId": HMAC_KEY,
        "secretAccessKey": HMAC_SECRET,
    }
    c.create_backup_bucket(sid, body)
    got = c.get_backup_bucket(sid)
    assert got is not None and got["accessKeyId"] == HMAC_KEY and "secretAccessKey" not in got
    with pytest.raises(CloudApiError, match="400 .*secretAccessKey"):  # PATCH always needs the secret
        c.update_backup_bucket(sid, {"bucketProvider": "GCP", "bucketPath": "https://storage.googleapis.com/b/q"})


# --------------------------------------------------------------------------------------------
# Through the CLI
# --------------------------------------------------------------------------------------------


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, s3_server: Any, chdb_dsn: str, cloud_api_server: CloudApiServer) -> None:
    monkeypatch.setenv("TEST_S3_KEY", s3_server.access_key)
    monkeypatch.setenv("TEST_S3_SECRET", s3_server.secret_key)
    monkeypatch.setenv("TEST_DSN", chdb_dsn)
    monkeypatch.setenv("CH_KEY_ID", KEY_ID)
    monkeypatch.setenv("CH_KEY_SECRET", KEY_SECRET)
    monkeypatch.setenv("CH_API_URL", cloud_api_server.url)
    monkeypatch.setenv("TEST_HMAC_KEY", HMAC_KEY)
    monkeypatch.setenv("TEST_HMAC_SECRET", HMAC_SECRET)
    monkeypatch.setattr(cloud_api, "DEFAULT_API_POLICY", FAST)
    monkeypatch.setattr(cloud_restore, "WAIT", cloud_restore.Wait(interval=0.01, timeout=10.0))


def api_doc(service_id: str, url: str = "${CH_API_URL}") -> dict[str, Any]:
    return {
        "organization_id": ORG_ID,
        "service_id": service_id,
        "key_id": "${CH_KEY_ID}",
        "key_secret": "${CH_KEY_SECRET}",
        "url": url,
    }


def aws_config(
    path: Path,
    service_id: str,
    s3_bucket: Any,
    managed: dict[str, Any] | None = None,
    restores: dict[str, Any] | None = None,
    region: str = "us-east-1",
    url: str = "${CH_API_URL}",
) -> str:
    cloud: dict[str, Any] = {"provider": "aws", "region": region, "api": api_doc(service_id, url)}
    if managed is not None:
        cloud["managed_backups"] = managed
    bucket = s3_bucket_doc(s3_bucket)
    bucket["credentials"]["role_arn"] = ROLE_ARN
    doc: dict[str, Any] = {
        "services": {"analytics": {"dsn": "${TEST_DSN}", "cloud": cloud}},
        "buckets": {"primary": bucket},
    }
    if restores:
        doc["restores"] = restores
    return str(write_config(path, doc))


def service_creations(server: CloudApiServer) -> list[Any]:
    return [c for c in server.calls("POST") if c[1].endswith("/services")]


def drift_types(result: Any) -> list[str]:
    return [d["type"] for d in result.json()["drift"]]


def test_configure_round_trip_and_a_change_behind_the_back(
    tmp_path: Path, env: None, s3_bucket: Any, cloud_api_server: CloudApiServer
) -> None:
    server = cloud_api_server
    sid = server.add_service("analytics")
    svc = server.services[sid]

    # what the service has already: no drift, nothing to do
    cfg = aws_config(tmp_path / "c.yaml", sid, s3_bucket, {"period_hours": 24, "retention_hours": 24})
    r = run("drift", "-f", cfg)
    assert r.code == 0, r.out + r.err
    assert run("plan", "-f", cfg, "--detailed-exitcode").code == 0

    # the config asks for more: two configure actions, config_drift until applied
    cfg = aws_config(
        tmp_path / "c.yaml", sid, s3_bucket, {"period_hours": 12, "retention_hours": 48, "external_bucket": "primary"}
    )
    plan = run("plan", "-f", cfg, "--format", "json")
    assert plan.code == 0, plan.err
    doc = plan.json()
    assert validate_plan(doc) is None
    acts = {a["id"]: a for a in doc["actions"]}
    assert set(acts) == {"configure/analytics/backupBucket", "configure/analytics/backupConfiguration"}
    conf = acts["configure/analytics/backupConfiguration"]
    assert conf["setting"] == "backupConfiguration" and conf["method"] == "PATCH"
    assert conf["changes"] == {
        "backupPeriodInHours": {"before": 24, "after": 12},
        "backupRetentionPeriodInHours": {"before": 24, "after": 48},
    }
    bucket_act = acts["configure/analytics/backupBucket"]
    assert bucket_act["method"] == "POST" and bucket_act["bucket"] == "primary" and bucket_act["before"] is None
    assert bucket_act["after"]["iamRoleArn"] == "[HIDDEN]"
    assert bucket_act["after"]["bucketPath"].endswith(f"/{s3_bucket.bucket}/clickhouse/analytics/_cloud")
    assert ROLE_ARN not in plan.out
    d = run("drift", "-f", cfg, "--format", "json")
    assert d.code == 2 and set(drift_types(d)) == {"config_drift"} and len(drift_types(d)) == 3

    applied = run("apply", "-f", cfg, "--auto-approve")
    assert applied.code == 0, applied.out + applied.err
    assert "2 done, 0 failed" in applied.out
    assert svc.backup_configuration["backupPeriodInHours"] == 12
    assert svc.backup_configuration["backupRetentionPeriodInHours"] == 48
    assert svc.backup_bucket is not None and svc.backup_bucket["iamRoleArn"] == ROLE_ARN  # taken from the config
    assert run("drift", "-f", cfg).code == 0
    assert run("plan", "-f", cfg, "--detailed-exitcode").code == 0

    # someone changes the retention and the bucket path in the console
    svc.backup_configuration["backupRetentionPeriodInHours"] = 24
    svc.backup_bucket["bucketPath"] = "https://elsewhere.s3.amazonaws.com/x"
    d = run("drift", "-f", cfg, "--format", "json")
    assert d.code == 2, d.out + d.err
    details = [x["detail"] for x in d.json()["drift"]]
    assert any("backupRetentionPeriodInHours is 24 in ClickHouse Cloud; managed_backups wants 48" in x for x in details)
    assert any(x.startswith("backupBucket.bucketPath is https://elsewhere") for x in details)
    text = run("plan", "-f", cfg)
    assert "~ configure analytics/backupBucket" in text.out and "bucketPath https://elsewhere" in text.out
    applied = run("apply", "-f", cfg, "--auto-approve")
    assert applied.code == 0, applied.out + applied.err
    assert [c[0] for c in server.calls(contains="/backupBucket") if c[0] != "GET"] == ["POST", "PATCH"]
    assert run("drift", "-f", cfg).code == 0

    # a bucket the config does not declare is drift, never deleted
    cfg = aws_config(tmp_path / "c.yaml", sid, s3_bucket, {"period_hours": 12, "retention_hours": 48})
    d = run("drift", "-f", cfg, "--format", "json")
    assert d.code == 2 and "never removes it" in d.json()["drift"][0]["detail"]
    assert run("plan", "-f", cfg, "--detailed-exitcode").code == 0
    assert not server.calls("DELETE")


def test_a_saved_plan_is_applied_exactly_or_refused_as_stale(
    tmp_path: Path, env: None, s3_bucket: Any, cloud_api_server: CloudApiServer
) -> None:
    sid = cloud_api_server.add_service("analytics")
    cfg = aws_config(tmp_path / "c.yaml", sid, s3_bucket, {"period_hours": 12, "external_bucket": "primary"})
    saved = tmp_path / "plan.json"
    assert run("plan", "-f", cfg, "--out", str(saved)).code == 0
    cloud_api_server.services[sid].backup_configuration["backupRetentionPeriodInHours"] = 72  # changed meanwhile
    stale = run("apply", "-f", cfg, str(saved))
    assert stale.code == 1 and "stale" in stale.err
    assert run("plan", "-f", cfg, "--out", str(saved)).code == 0
    applied = run("apply", "-f", cfg, str(saved))
    assert applied.code == 0, applied.out + applied.err
    assert cloud_api_server.services[sid].backup_configuration["backupPeriodInHours"] == 12
    assert run("drift", "-f", cfg).code == 0


def test_gcs_bucket_secret_is_sent_at_apply_and_never_shown(
    tmp_path: Path, env: None, cloud_api_server: CloudApiServer
) -> None:
    server = cloud_api_server
    sid = server.add_service("events", provider="gcp", region="us-central1")
    cfg = str(
        write_config(
            tmp_path / "g.yaml",
            {
                "services": {
                    "events": {
                        "dsn": "${TEST_DSN}",
                        "cloud": {
                            "provider": "gcp",
                            "region": "us-central1",
                            "api": api_doc(sid),
                            "managed_backups": {"external_bucket": "archive"},
                        },
                    }
                },
                "buckets": {
                    "archive": {
                        "provider": "gcs",
                        "bucket": "acme-archive",
                        "prefix": "ch",
                        "region": "us-central1",
                        "credentials": {"hmac_key": "${TEST_HMAC_KEY}", "hmac_secret": "${TEST_HMAC_SECRET}"},
                    }
                },
            },
        )
    )
    plan = run("plan", "-f", cfg, "--format", "json")
    assert plan.code == 0, plan.err
    (act,) = plan.json()["actions"]
    assert act["after"] == {
        "bucketProvider": "GCP",
        "bucketPath": "https://storage.googleapis.com/acme-archive/ch/events/_cloud",
        "accessKeyId": "[HIDDEN]",
        "secretAccessKey": "(set)",
    }
    applied = run("apply", "-f", cfg, "--auto-approve")
    assert applied.code == 0, applied.out + applied.err
    (post,) = server.calls("POST", "/backupBucket")
    assert post[2]["secretAccessKey"] == HMAC_SECRET and post[2]["accessKeyId"] == HMAC_KEY
    for out in (plan.out, plan.err, applied.out, applied.err):
        assert HMAC_SECRET not in out and HMAC_KEY not in out and KEY_SECRET not in out
    assert run("drift", "-f", cfg).code == 0


def test_a_contradicted_cloud_fact_is_one_clear_error(
    tmp_path: Path, env: None, s3_bucket: Any, cloud_api_server: CloudApiServer
) -> None:
    sid = cloud_api_server.add_service("analytics", region="eu-west-1")
    cfg = aws_config(tmp_path / "c.yaml", sid, s3_bucket, region="us-east-1")
    for command in ("plan", "drift"):
        r = run(command, "-f", cfg)
        assert r.code == 1
        lines = r.err.strip().splitlines()
        assert len(lines) == 1, r.err
        assert lines[0].startswith(
            "error: service analytics: the config says region us-east-1 but ClickHouse Cloud reports eu-west-1 "
            "(fix cloud.region)"
        )
    # TDE reported by the Cloud: the Cloud rules then refuse the restore out of it, and say so
    sid = cloud_api_server.add_service("secure", tde=True)
    cfg = aws_config(
        tmp_path / "c.yaml",
        sid,
        s3_bucket,
        restores={
            "copy": {"from": {"service": "analytics", "backup": "latest"}, "to": {"new_service": {"name": "copy"}}}
        },
    )
    r = run("plan", "-f", cfg)
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1
    assert "the config says tde false but ClickHouse Cloud reports true (fix cloud.tde)" in r.err
    assert "does not allow to be backed up or restored (restore copy)" in r.err


def test_an_unreachable_api_is_drift_not_a_traceback(tmp_path: Path, env: None, s3_bucket: Any) -> None:
    cfg = aws_config(
        tmp_path / "c.yaml",
        "0b7c0c2e-0000-4000-8000-000000000000",
        s3_bucket,
        {"period_hours": 24},
        url=f"http://127.0.0.1:{free_port()}",
    )
    r = run("drift", "-f", cfg, "--format", "json")
    assert r.code == 2, r.out + r.err
    (d,) = r.json()["drift"]
    assert d["type"] == "unreachable_service" and d["service"] == "analytics"
    assert "ClickHouse Cloud API" in d["detail"] and "cannot connect" in d["detail"]
    assert run("plan", "-f", cfg, "--detailed-exitcode").code == 0
    status = run("status", "-f", cfg, "--format", "json")
    assert status.code == 0 and status.json()["cloud"][0]["reachable"] is False


def test_restore_into_a_new_service(
    tmp_path: Path, env: None, s3_bucket: Any, s3_server: Any, cloud_api_server: CloudApiServer
) -> None:
    from datetime import UTC, datetime, timedelta

    server = cloud_api_server
    sid = server.add_service("analytics", tier="production")
    now = datetime.now(UTC).replace(microsecond=0)
    server.add_backup(sid, started_at=now - timedelta(days=1))
    newest = server.add_backup(sid, started_at=now - timedelta(hours=3), type="incremental")
    server.add_backup(sid, status="in_progress", started_at=now - timedelta(minutes=5))
    server.add_backup(sid, status="error", started_at=now - timedelta(minutes=50))
    restores = {
        "analytics-copy": {
            "from": {"service": "analytics", "backup": "latest"},
            "to": {"new_service": {"name": "analytics-copy"}},
        }
    }
    cfg = aws_config(tmp_path / "c.yaml", sid, s3_bucket, {"external_bucket": "primary"}, restores=restores)
    server.services[sid].backup_bucket = None

    plan = run("plan", "-f", cfg, "--format", "json")
    assert plan.code == 0, plan.err
    doc = plan.json()
    assert validate_plan(doc) is None
    restore = next(a for a in doc["actions"] if a["type"] == "restore")
    assert restore["id"] == "restore/analytics-copy" and restore["restore"] == "analytics-copy"
    assert restore["backup"] == newest and restore["record_bucket"] == "primary"
    assert restore["new_service"] == {
        "name": "analytics-copy",
        "provider": "aws",
        "region": "us-east-1",
        "tier": "production",
        "extra": {},
    }
    text = run("plan", "-f", cfg)
    assert f"< restore   analytics-copy (Cloud backup {newest} of analytics → new service analytics-copy)" in text.out

    applied = run("apply", "-f", cfg, "--auto-approve")
    assert applied.code == 0, applied.out + applied.err
    (created,) = server.by_name("analytics-copy")
    assert created.restored_from == newest and created.state == "running"
    assert server.passwords and all(p not in applied.out + applied.err for p in server.passwords)
    record = read_json(s3_server.client(), s3_bucket.bucket, "clickhouse/.reconciler/restores/analytics-copy.json")
    assert record["backup"] == newest
    assert record["to"] == {"new_service": "analytics-copy", "cloud_service_id": created.id}

    again = run("apply", "-f", cfg, "--auto-approve")
    assert again.code == 0 and "Nothing to do" in again.out, again.out + again.err
    assert len(service_creations(server)) == 1 and len(server.by_name("analytics-copy")) == 1
    assert run("plan", "-f", cfg, "--detailed-exitcode").code == 0


def test_restore_adopts_a_service_left_by_a_crashed_apply_and_refuses_another_region(
    tmp_path: Path, env: None, s3_bucket: Any, cloud_api_server: CloudApiServer
) -> None:
    server = cloud_api_server
    sid = server.add_service("analytics")
    server.add_backup(sid)
    left = server.add_service("analytics-copy", state="provisioning", polls_to_running=2)
    restores = {
        "analytics-copy": {
            "from": {"service": "analytics", "backup": "latest"},
            "to": {"new_service": {"name": "analytics-copy"}},
        }
    }
    cfg = aws_config(tmp_path / "c.yaml", sid, s3_bucket, {"external_bucket": "primary"}, restores=restores)
    plan = run("plan", "-f", cfg)
    assert "exists already" in plan.out and "adopted, not created again" in plan.out
    applied = run("apply", "-f", cfg, "--auto-approve", "--target", "analytics-copy")
    assert applied.code == 0, applied.out + applied.err
    assert not service_creations(server) and server.services[left].state == "running"
    assert run("plan", "-f", cfg, "--target", "analytics-copy", "--detailed-exitcode").code == 0

    restores["other-region"] = {
        "from": {"service": "analytics", "backup": "latest"},
        "to": {"new_service": {"name": "copy-eu", "region": "eu-west-1"}},
    }
    cfg = aws_config(tmp_path / "c.yaml", sid, s3_bucket, {"external_bucket": "primary"}, restores=restores)
    plan = run("plan", "-f", cfg, "--target", "other-region", "--format", "json")
    assert plan.json()["actions"] == []
    assert any("to.new_service.region is eu-west-1" in w for w in plan.json()["warnings"])


def test_status_shows_cloud_backups_and_which_are_in_a_declared_bucket(
    tmp_path: Path, env: None, s3_bucket: Any, cloud_api_server: CloudApiServer
) -> None:
    server = cloud_api_server
    sid = server.add_service("analytics")
    path = f"{s3_bucket.endpoint}/{s3_bucket.bucket}/clickhouse/analytics/_cloud"
    in_bucket = server.add_backup(sid, bucket={"bucketProvider": "AWS", "bucketPath": path, "iamRoleArn": ROLE_ARN})
    elsewhere = server.add_backup(
        sid, bucket={"bucketProvider": "AWS", "bucketPath": "https://other.s3.amazonaws.com/x"}
    )
    internal = server.add_backup(sid)
    cfg = aws_config(tmp_path / "c.yaml", sid, s3_bucket)
    r = run("status", "-f", cfg, "--format", "json")
    assert r.code == 0, r.err
    (c,) = r.json()["cloud"]
    marks = {b["id"]: (b["in_declared_bucket"], b["bucket"]) for b in c["backups"]}
    assert marks == {in_bucket: (True, "primary"), elsewhere: (False, None), internal: (False, None)}
    assert ROLE_ARN not in r.out
    text = run("status", "-f", cfg)
    assert f"in bucket primary  {in_bucket}" in text.out
    assert f"in ClickHouse Cloud storage  {internal}" in text.out
    assert "(not a declared bucket)" in text.out
    assert json.dumps(c)  # JSON-ready
