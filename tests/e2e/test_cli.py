"""The real command, as a pipeline runs it: a subprocess per call, every exit code of docs/commands.md."""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reconciler.model import Bucket
from tests.support.e2e import s3_bucket_doc, write_config
from tests.support.processes import ROOT, cli

NOW = "2026-11-25T06:00:00Z"

SEED = """
import sys, clickhouse_connect
c = clickhouse_connect.get_client(dsn=sys.argv[1])
c.command("CREATE DATABASE shop")
c.command("CREATE TABLE shop.t (id UInt64) ENGINE = MergeTree ORDER BY id")
c.command("INSERT INTO shop.t SELECT number FROM numbers(1000)")
"""


def rc(env: dict[str, str] | None, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return cli(env, *args, ok=(), timeout=180, stdin=stdin)


def one_error_line(p: subprocess.CompletedProcess[str]) -> str:
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    assert "Traceback" not in p.stderr
    return lines[0]


def test_validate_schema_and_usage_exit_codes(tmp_path: Path) -> None:
    good = ROOT / "examples" / "quickstart.yaml"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "QUICKSTART_DSN": "chdb:///tmp/x",
        "QUICKSTART_S3_ENDPOINT": "http://127.0.0.1:1",
        "QUICKSTART_S3_KEY_ID": "k",
        "QUICKSTART_S3_SECRET": "s3cr3t-value",
    }
    assert rc(env, "validate", "-f", str(good)).returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nservices:\n  a: {dsn: 'chdb:///tmp/x'}\nschedules:\n  s: {service: b, bucket: c, every: 1h}\n"
    )
    p = rc(env, "validate", "-f", str(bad))
    assert p.returncode == 1
    assert all(line.startswith("error: ") for line in p.stderr.strip().splitlines())
    for name in ("config", "plan"):
        s = rc(env, "schema", name)
        assert s.returncode == 0
        assert json.loads(s.stdout) == json.loads((ROOT / "schemas" / f"{name}.v1.json").read_text())
    usage = rc(env, "plan", "-f", str(good), "--no-such-flag")
    assert usage.returncode == 1  # never 2: that means "actions pending"
    one_error_line(usage)
    badnow = rc(env, "plan", "-f", str(good), "--now", "yesterday")
    assert badnow.returncode == 1 and "--now" in one_error_line(badnow)
    missing = rc(env, "validate", "-f", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 1 and "nope.yaml" in one_error_line(missing)


@pytest.mark.slow
def test_plan_apply_drift_status_exit_codes(tmp_path: Path, s3_server: Any, s3_bucket: Bucket) -> None:
    dsn = f"chdb://{tmp_path / 'chdb'}"
    subprocess.run([sys.executable, "-c", SEED, dsn], check=True, timeout=120)
    cfg = str(
        write_config(
            tmp_path / "c.yaml",
            {
                "services": {"analytics": {"dsn": dsn}},
                "buckets": {"primary": s3_bucket_doc(s3_bucket)},
                "schedules": {
                    "daily": {"service": "analytics", "bucket": "primary", "databases": ["shop"], "cron": "0 3 * * *"}
                },
            },
        )
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TEST_S3_KEY": s3_server.access_key,
        "TEST_S3_SECRET": s3_server.secret_key,
    }

    assert rc(env, "plan", "-f", cfg, "--now", NOW).returncode == 0
    assert rc(env, "plan", "-f", cfg, "--now", NOW, "--detailed-exitcode").returncode == 2
    drift = rc(env, "drift", "-f", cfg, "--now", NOW)
    assert drift.returncode == 2 and "rpo_violation" in drift.stdout  # no backup at all yet
    refused = rc(env, "apply", "-f", cfg, "--now", NOW)  # no terminal, no --auto-approve
    assert refused.returncode == 1 and "--auto-approve" in one_error_line(refused)
    applied = rc(env, "apply", "-f", cfg, "--now", NOW, "--auto-approve", "--metrics-file", str(tmp_path / "m.prom"))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    metrics = (tmp_path / "m.prom").read_text()
    assert (
        'clickhouse_backup_backups{schedule="daily",service="analytics",bucket="primary",state="complete"} 1' in metrics
    )
    assert "clickhouse_backup_apply_success 1" in metrics
    assert rc(env, "plan", "-f", cfg, "--now", NOW, "--detailed-exitcode").returncode == 0
    assert rc(env, "drift", "-f", cfg, "--now", NOW).returncode == 0
    status = rc(env, "status", "-f", cfg, "--format", "json")
    assert status.returncode == 0 and json.loads(status.stdout)["runs"]["primary"][0]["status"] == "ok"
    # a due export is not drift; a missed slot is
    assert rc(env, "drift", "-f", cfg, "--now", "2026-11-26T04:00:00Z").returncode == 0
    assert rc(env, "plan", "-f", cfg, "--now", "2026-11-26T04:00:00Z", "--detailed-exitcode").returncode == 2
    assert rc(env, "drift", "-f", cfg, "--now", "2026-11-27T04:00:00Z").returncode == 2
    unlock = rc(env, "force-unlock", "-f", cfg, "--bucket", "primary", "no-such-run")
    assert unlock.returncode == 1 and "no apply lock" in one_error_line(unlock)
    # an error while observing is exit 1 with one line, for plan and drift alike
    env_bad = {**env, "TEST_S3_SECRET": "wrong-secret-value"}
    s3_server.client()  # moto accepts any credentials: use a bucket name the config cannot reach instead
    cfg2 = str(
        write_config(
            tmp_path / "c2.yaml",
            {
                "services": {"analytics": {"dsn": dsn}},
                "buckets": {"primary": {**s3_bucket_doc(s3_bucket), "endpoint": "http://127.0.0.1:9"}},
                "schedules": {
                    "daily": {"service": "analytics", "bucket": "primary", "databases": ["shop"], "cron": "0 3 * * *"}
                },
            },
        )
    )
    down = rc(env_bad, "drift", "-f", cfg2, "--now", NOW)
    assert down.returncode == 2 and "missing_bucket" in down.stdout
    assert "wrong-secret-value" not in down.stdout + down.stderr


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ("plan", "-f", "x.yaml", "--no-such-flag"),
            "error: no such option --no-such-flag (reconciler plan --help lists the options)",
        ),
        (
            ("plan", "-f", "x.yaml", "--formt", "json"),
            "error: no such option --formt; did you mean --format* (reconciler plan --help lists the options)",
        ),
        (("plan",), "error: missing option -f/--file (reconciler plan --help lists the options)"),
        (
            ("force-unlock", "-f", "x.yaml", "--bucket", "b"),
            "error: missing argument LOCK_ID (reconciler force-unlock --help lists the options)",
        ),
        (
            ("plan", "-f", "x.yaml", "--format", "xml"),
            "error: invalid value for --format: 'xml' is not one of 'text', 'json', 'markdown' "
            "(reconciler plan --help lists the options)",
        ),
        (
            ("apply", "-f", "x.yaml", "--parallelism", "0"),
            "error: invalid value for --parallelism: Input should be greater than or equal to 1 "
            "(reconciler apply --help lists the options)",
        ),
        (
            ("plan", "-f", "x.yaml", "--now", "garbage"),
            "error: invalid value for --now: 'garbage' is not an ISO 8601 time such as 2026-11-25T03:00:00Z "
            "(reconciler plan --help lists the options)",
        ),
        (("plan", "-f"), "error: option -f requires an argument (reconciler --help lists the options)"),
        (("frobnicate",), "error: no such command frobnicate (reconciler --help lists the commands)"),
    ],
    ids=[
        "unknown-flag",
        "misspelt-flag",
        "missing-option",
        "missing-argument",
        "bad-choice",
        "out-of-range",
        "bad-time",
        "option-without-value",
        "unknown-command",
    ],
)
def test_usage_mistakes_are_one_line_and_exit_1(args: tuple[str, ...], line: str) -> None:
    from tests.support.e2e import run

    r = run(*args)
    assert r.code == 1  # never 2: a pipeline reads 2 as "actions pending" or "drift"
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and fnmatch.fnmatchcase(lines[0], line), lines
    assert "internal error" not in r.err and "Traceback" not in r.err
