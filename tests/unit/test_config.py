"""The config package: loading, places of errors, schema, rules, model, digest (docs/config.md)."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from reconciler.config import config_schema, load_config, parse_duration
from reconciler.config.build import redacted
from reconciler.config.yaml_loader import MAX_BYTES
from reconciler.errors import ConfigError, Location
from reconciler.model import (
    CloudProvider,
    Config,
    Provider,
    ValidationLevel,
)

FULL = Path(__file__).parent.parent / "configs" / "full.yaml"

FULL_ENV = {
    "ANALYTICS_DSN": "https://reader:dsn-pass-7f3a@analytics.example.com:8443",
    "CH_KEY_ID": "key-id-51c2",
    "CH_KEY_SECRET": "key-secret-9d4e",
    "STAGING_PASSWORD": "staging-pass-2b8c",
    "AWS_ACCESS_KEY_ID": "AKIA-access-0a1b",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-6e7f",
    "AWS_SESSION_TOKEN": "aws-token-3c4d",
    "GCS_HMAC_KEY": "gcs-hmac-key-8a9b",
    "GCS_HMAC_SECRET": "gcs-hmac-secret-1e2f",
    "AZURE_CONNECTION_STRING": "DefaultEndpointsProtocol=https;AccountKey=conn-secret-5d6e",
    "AZURE_ACCOUNT_KEY": "azure-key-7c8d",
}

# Line numbers matter: the tests below assert positions in these texts.
BASE = """\
version: 1
services:
  analytics:
    dsn: chdb:///tmp/x
buckets:
  primary:
    provider: s3
    bucket: acme-ch-backups
schedules:
  daily:
    service: analytics
    bucket: primary
    cron: "0 3 * * *"
"""

CLOUD = """\
version: 1
services:
  analytics:
    dsn: chdb:///tmp/x
    cloud:
      provider: aws
      region: us-east-1
buckets:
  primary:
    provider: s3
    bucket: acme-ch-backups
    region: us-east-1
schedules:
  daily:
    service: analytics
    bucket: primary
    cron: "0 3 * * *"
"""


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Configs are written as ``cfg.yaml`` in a temporary folder, so places read ``cfg.yaml:L:C``."""
    monkeypatch.chdir(tmp_path)


def load(text: str, env: dict[str, str] | None = None) -> Config:
    Path("cfg.yaml").write_text(text, encoding="utf-8")
    return load_config("cfg.yaml", env or {})


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text, env)
    return info.value.lines()


def one_problem(text: str, env: dict[str, str] | None = None) -> str:
    lines = problems(text, env)
    assert len(lines) == 1, lines
    return lines[0]


# --------------------------------------------------------------------------------------------
# A valid config with every key
# --------------------------------------------------------------------------------------------


def test_full_config_loads_into_the_model() -> None:
    config = load_config(str(FULL), FULL_ENV)
    assert config.path == str(FULL)
    assert config.warnings == ()
    assert set(config.services) == {"analytics", "staging", "scratch", "scratch-too"}

    analytics = config.services["analytics"]
    assert analytics.dsn == FULL_ENV["ANALYTICS_DSN"]
    assert analytics.cloud is not None
    assert analytics.cloud.provider is CloudProvider.AWS
    assert analytics.cloud.region == "us-east-1"
    assert analytics.cloud.tde is False and analytics.cloud.compliance is None
    api = analytics.cloud.api
    assert api is not None
    assert (api.organization_id, api.service_id, api.key_id, api.key_secret, api.url) == (
        "org-123",
        "svc-456",
        "key-id-51c2",
        "key-secret-9d4e",
        "https://api.clickhouse.cloud",
    )
    managed = analytics.cloud.managed_backups
    assert managed is not None
    assert (managed.period_hours, managed.retention_hours, managed.start_time, managed.external_bucket) == (
        24,
        48,
        "03:00",
        "primary",
    )
    assert config.services["staging"].dsn == "https://default:staging-pass-2b8c@staging.example.com:8443"
    assert config.services["scratch"].is_chdb and config.services["scratch"].cloud is None

    primary = config.buckets["primary"]
    assert primary.provider is Provider.S3
    assert (primary.bucket, primary.prefix, primary.region, primary.endpoint) == (
        "acme-ch-backups",
        "clickhouse/prod",
        "us-east-1",
        None,
    )
    assert primary.credentials.access_key_id == "AKIA-access-0a1b"
    assert primary.credentials.secret_access_key == "aws-secret-6e7f"
    assert primary.credentials.session_token == "aws-token-3c4d"
    assert primary.credentials.role_arn == "arn:aws:iam::123456789012:role/clickhouse-backups"
    archive = config.buckets["archive"]
    assert archive.provider is Provider.GCS and archive.prefix == "" and archive.region == "us-central1"
    assert archive.endpoint == "https://storage.googleapis.com"
    assert archive.credentials.hmac_key == "gcs-hmac-key-8a9b"
    assert archive.credentials.hmac_secret == "gcs-hmac-secret-1e2f"
    assert archive.credentials.service_account_file == "/etc/reconciler/gcs.json"
    blob = config.buckets["blob"]
    assert blob.provider is Provider.AZURE and blob.bucket == "ch-backups"
    assert blob.credentials.connection_string == FULL_ENV["AZURE_CONNECTION_STRING"]
    assert blob.credentials.account_name == "acmestorage"
    assert blob.credentials.account_key == "azure-key-7c8d"

    daily = config.schedules["analytics-daily"]
    assert (daily.service, daily.bucket) == ("analytics", "primary")
    assert daily.scope.databases == ("shop", "web") and daily.scope.tables == ()
    assert daily.cron == "0 3 * * *" and daily.every is None
    assert daily.full_every == 7
    assert daily.allow_cross_cloud is False and daily.prune_unmanaged is False
    assert daily.cleanup_after == timedelta(hours=12)
    r = daily.retention
    assert (r.keep_last, r.keep_hourly, r.keep_daily, r.keep_weekly, r.keep_monthly, r.keep_yearly) == (
        7,
        24,
        7,
        4,
        12,
        2,
    )
    assert r.keep_within == timedelta(hours=48) and r.min_valid == 2
    assert daily.validate.after_export is ValidationLevel.CHECKSUMS
    assert daily.validate.checksums_every == timedelta(days=7)
    assert daily.validate.drill is not None
    assert (daily.validate.drill.service, daily.validate.drill.every) == ("scratch", timedelta(days=30))

    tables = config.schedules["staging-tables"]
    assert tables.scope.tables == ("shop.orders", "shop.customers") and tables.scope.databases == ()
    assert tables.every == timedelta(hours=6) and tables.cron is None
    assert tables.prune_unmanaged is True and tables.full_every is None
    assert tables.validate.after_export is None
    assert tables.cleanup_after == timedelta(hours=24)  # the default

    whole = config.schedules["staging-all"]
    assert whole.scope.whole_service and whole.every == timedelta(weeks=2)
    assert whole.retention.is_empty and whole.retention.min_valid == 1
    assert whole.validate.after_export is ValidationLevel.MANIFEST

    into = config.restores["shop-into-staging"]
    assert (into.source.schedule, into.source.service, into.source.backup) == ("analytics-daily", None, "latest")
    assert into.target.service == "staging" and dict(into.target.databases) == {"shop": "shop_restored"}
    assert into.target.new_service is None and into.allow_non_empty_tables is False
    new = config.restores["shop-new-service"]
    assert (new.source.service, new.source.backup) == ("analytics", "20261125T030000Z")
    assert new.target.new_service is not None
    assert new.target.new_service.name == "analytics-restored"
    assert new.target.new_service.region == "us-east-1"
    assert dict(new.target.new_service.extra) == {"tier": "production"}

    assert config.digest.startswith("sha256:") and len(config.digest) == len("sha256:") + 64


def test_defaults_of_a_minimal_config() -> None:
    config = load(BASE)
    assert config.buckets["primary"].prefix == ""
    schedule = config.schedules["daily"]
    assert schedule.scope.whole_service
    assert schedule.cleanup_after == timedelta(hours=24)
    assert schedule.validate.after_export is ValidationLevel.MANIFEST
    assert config.restores == {}


def test_empty_sections_are_allowed() -> None:
    config = load("version: 1\nservices:\nbuckets:\nschedules:\nrestores:\n")
    assert (config.services, config.buckets, config.schedules, config.restores) == ({}, {}, {}, {})


# --------------------------------------------------------------------------------------------
# One bad input, one error line, with its place
# --------------------------------------------------------------------------------------------


def test_not_yaml() -> None:
    # libyaml and PyYAML word the problem differently; the place is the same
    line = one_problem("version: 1\n  bad: indent\n")
    assert line.startswith("error: the file is not valid YAML: mapping values are not allowed ")
    assert line.endswith(" (cfg.yaml:2:6)")


def test_control_character() -> None:
    assert one_problem("version: 1\nx: a\x07b\n") == (
        "error: the file is not valid YAML: character #x0007 is not allowed in YAML text (cfg.yaml:2:5)"
    )


def test_not_utf8() -> None:
    Path("cfg.yaml").write_bytes(b"version: 1\nx: caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_config("cfg.yaml", {})
    assert info.value.lines() == ["error: the config file is not UTF-8 text; save it as UTF-8 (cfg.yaml:2:7)"]


def test_yaml_that_is_a_list() -> None:
    assert one_problem("- version: 1\n") == (
        "error: the config must be a mapping with `version: 1` at the top (cfg.yaml:1:1)"
    )


def test_empty_file() -> None:
    assert one_problem("# nothing here\n") == (
        "error: the config file is empty; the config must be a mapping with `version: 1` at the top (cfg.yaml:1:1)"
    )


def test_missing_file() -> None:
    with pytest.raises(ConfigError) as info:
        load_config("nope.yaml", {})
    assert info.value.lines() == ["error: the config file does not exist; check the path given with -f (nope.yaml)"]


def test_too_large_file() -> None:
    Path("cfg.yaml").write_text("version: 1\n" + "#" * MAX_BYTES + "\n")
    with pytest.raises(ConfigError) as info:
        load_config("cfg.yaml", {})
    assert info.value.lines() == [
        "error: the config file is larger than 1024 KiB; a config is never that big (cfg.yaml)"
    ]


def test_unknown_key() -> None:
    line = one_problem(BASE + "    retension: {keep_last: 1}\n")
    assert line.startswith(
        "error: unknown key `retension` under schedules.daily (did you mean `retention`?); allowed: "
    )
    assert "retention, validate" in line
    assert line.endswith("(cfg.yaml:14:5 at schedules.daily.retension)")


def test_missing_version() -> None:
    assert one_problem(BASE.replace("version: 1\n", "")) == (
        "error: missing required key `version` at the top of the config; add `version: 1` (cfg.yaml:1:1)"
    )


def test_wrong_version() -> None:
    assert one_problem(BASE.replace("version: 1", "version: 2")) == (
        "error: `version` must be 1, got 2 (cfg.yaml:1:10 at version)"
    )


def test_wrong_type() -> None:
    assert one_problem(BASE.replace('cron: "0 3 * * *"', "every: 25")) == (
        "error: `every` must be a string like 6h, got 25 (cfg.yaml:13:12 at schedules.daily.every)"
    )


def test_missing_required_key_points_at_the_mapping() -> None:
    assert one_problem(BASE.replace("    provider: s3\n", "")) == (
        "error: missing required key `provider` under buckets.primary (cfg.yaml:7:5 at buckets.primary)"
    )


def test_schedule_naming_an_unknown_service() -> None:
    assert one_problem(BASE.replace("service: analytics", "service: analytcs")) == (
        "error: service `analytcs` is not defined under `services:`; define it there or fix the name "
        "(defined: analytics) (cfg.yaml:11:14 at schedules.daily.service)"
    )


def test_unknown_bucket() -> None:
    assert one_problem(BASE.replace("bucket: primary", "bucket: secondary")) == (
        "error: bucket `secondary` is not defined under `buckets:`; define it there or fix the name "
        "(defined: primary) (cfg.yaml:12:13 at schedules.daily.bucket)"
    )


def test_both_cron_and_every() -> None:
    assert one_problem(BASE + "    every: 6h\n") == (
        "error: schedule `daily` has both `cron` and `every`; keep exactly one "
        "(cfg.yaml:14:12 at schedules.daily.every)"
    )


def test_neither_cron_nor_every() -> None:
    assert one_problem(BASE.replace('    cron: "0 3 * * *"\n', "")) == (
        'error: schedule `daily` has neither `cron` nor `every`; add one, e.g. `cron: "0 3 * * *"` or `every: 6h` '
        "(cfg.yaml:11:5 at schedules.daily)"
    )


def test_every_25x() -> None:
    assert one_problem(BASE.replace('cron: "0 3 * * *"', "every: 25x")) == (
        "error: `every` must be an integer and one unit, like 30s, 15m, 6h, 7d or 2w, got `25x`; "
        "units are s, m, h, d and w (lowercase) (cfg.yaml:13:12 at schedules.daily.every)"
    )


def test_every_shorter_than_a_minute() -> None:
    assert one_problem(BASE.replace('cron: "0 3 * * *"', "every: 30s")) == (
        "error: `every: 30s` is too short; the shortest is 1m (cfg.yaml:13:12 at schedules.daily.every)"
    )


def test_cron_out_of_range() -> None:
    line = one_problem(BASE.replace("0 3 * * *", "61 * * * *"))
    assert line.startswith("error: `61 * * * *` is not a valid cron expression")
    assert line.endswith("(cfg.yaml:13:11 at schedules.daily.cron)")


@pytest.mark.parametrize("cron", ["0 0 3 * * *", "0 0 3 * * * 2030", "@reboot", "H 3 * * *", "R 3 * * *"])
def test_cron_that_is_not_standard_5_fields(cron: str) -> None:
    line = one_problem(BASE.replace("0 3 * * *", cron))
    assert line.endswith("(cfg.yaml:13:11 at schedules.daily.cron)")


@pytest.mark.parametrize("cron", ["@daily", "@hourly", "*/15 * * * *", "0 3 * * MON-FRI"])
def test_cron_accepted(cron: str) -> None:
    assert load(BASE.replace("0 3 * * *", cron)).schedules["daily"].cron == cron


def test_unset_variable() -> None:
    text = BASE.replace(
        "acme-ch-backups", "acme-ch-backups\n    credentials:\n      secret_access_key: ${AWS_SECRET_ACCESS_KEY}"
    )
    assert one_problem(text) == (
        "error: environment variable AWS_SECRET_ACCESS_KEY is not set; export it before running "
        "(cfg.yaml:10:26 at buckets.primary.credentials.secret_access_key)"
    )


def test_unset_variables_are_all_reported_and_stop_loading() -> None:
    text = BASE.replace("chdb:///tmp/x", "https://u:${PW}@${HOST}:8443") + "    retension: oops\n"
    assert problems(text) == [
        "error: environment variable PW is not set; export it before running (cfg.yaml:4:10 at services.analytics.dsn)",
        "error: environment variable HOST is not set; export it before running "
        "(cfg.yaml:4:10 at services.analytics.dsn)",
    ]


def test_validate_needs_no_environment() -> None:
    """An unset variable is no error for validate: the values that use it are not checked, the
    rest is, and the note names each variable with its first use."""
    from reconciler.config import check_config

    text = (
        BASE.replace("chdb:///tmp/x", "https://u:${PW}@${HOST}:8443")
        .replace("provider: s3", "provider: ${PROVIDER}")
        .replace('cron: "0 3 * * *"', 'cron: "${CRON}"')
    )
    Path("cfg.yaml").write_text(text)
    checked = check_config("cfg.yaml", env={})
    assert checked.unset == (
        ("PW", "cfg.yaml:4:10 at services.analytics.dsn"),
        ("HOST", "cfg.yaml:4:10 at services.analytics.dsn"),
        ("PROVIDER", "cfg.yaml:7:15 at buckets.primary.provider"),
        ("CRON", "cfg.yaml:13:11 at schedules.daily.cron"),
    )
    assert checked.sections == {"services": 1, "buckets": 1, "schedules": 1}
    # everything that does not depend on a missing value is still checked
    Path("cfg.yaml").write_text(text.replace("bucket: primary", "bucket: primry") + "    retension: oops\n")
    with pytest.raises(ConfigError) as info:
        check_config("cfg.yaml", env={})
    lines = info.value.lines()
    assert len(lines) == 2 and "primry" in lines[0] and "retension" in lines[1], lines
    # the commands that connect still refuse the unset variable
    assert problems(text)[0].startswith("error: environment variable PW is not set")


def test_validate_without_environment_from_the_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support.e2e import run

    monkeypatch.delenv("PW", raising=False)
    Path("cfg.yaml").write_text(BASE.replace("chdb:///tmp/x", "https://u:${PW}@host:8443"))
    r = run("validate", "-f", "cfg.yaml")
    assert r.code == 0, r.err
    assert r.out.splitlines() == [
        "cfg.yaml: valid (1 service, 1 bucket, 1 schedule, 0 restores)",
        "note: these variables are not set here, so the values that use them were not checked: "
        "PW (cfg.yaml:4:10 at services.analytics.dsn); plan, apply, drift and status need them",
    ]
    p = run("plan", "-f", "cfg.yaml")
    assert p.code == 1 and p.err.startswith("error: environment variable PW is not set"), p.err


@pytest.mark.parametrize("name", ["bk", "Acme_Bucket"])
def test_bucket_name_s3_refuses(name: str) -> None:
    line = one_problem(BASE.replace("acme-ch-backups", name))
    assert line.startswith(f"error: `{name}` is not a valid S3 bucket name: ")
    assert line.endswith("(cfg.yaml:8:13 at buckets.primary.bucket)")


@pytest.mark.parametrize(
    ("provider", "name", "ok"),
    [
        ("s3", "acme.backups-1", True),
        ("s3", "192.168.1.1", False),
        ("s3", "a..b", False),
        ("s3", "-abc", False),
        ("s3", "a" * 64, False),
        ("azure", "ch-backups", True),
        ("azure", "ch--backups", False),
        ("azure", "ch.backups", False),
        ("gcs", "acme_ch.archive", True),
        ("gcs", "Acme", False),
        ("gcs", "abc_", False),
    ],
)
def test_bucket_names_by_provider(provider: str, name: str, ok: bool) -> None:
    text = BASE.replace("provider: s3", f"provider: {provider}").replace("acme-ch-backups", f'"{name}"')
    if ok:
        assert load(text).buckets["primary"].bucket == name
    else:
        assert one_problem(text).endswith("(cfg.yaml:8:13 at buckets.primary.bucket)")


def test_duplicate_key() -> None:
    assert one_problem(BASE + '    cron: "0 4 * * *"\n') == (
        "error: duplicate key `cron` (first written at line 13); YAML would keep only one, so remove or rename "
        "one of them (cfg.yaml:14:5 at schedules.daily.cron)"
    )


def test_literal_secret() -> None:
    text = BASE.replace("acme-ch-backups", "acme-ch-backups\n    credentials:\n      secret_access_key: hunter2")
    assert one_problem(text) == (
        "error: `secret_access_key` is a literal secret; write `${SOME_VAR}` and set it in the environment "
        "(cfg.yaml:10:26 at buckets.primary.credentials.secret_access_key)"
    )


def test_secret_from_a_variable_with_text_around_is_still_literal() -> None:
    text = BASE.replace("acme-ch-backups", "acme-ch-backups\n    credentials:\n      account_key: pre-${KEY}")
    assert one_problem(text, {"KEY": "k"}).startswith("error: `account_key` is a literal secret")


def test_literal_dsn_password() -> None:
    assert one_problem(BASE.replace("chdb:///tmp/x", "https://default:hunter2@host:8443")) == (
        "error: the DSN of service `analytics` holds a literal password; write it as `${SOME_VAR}` "
        "(e.g. https://user:${CH_PASSWORD}@host:8443) and set it in the environment "
        "(cfg.yaml:4:10 at services.analytics.dsn)"
    )


def test_dsn_password_from_a_variable() -> None:
    config = load(BASE.replace("chdb:///tmp/x", "https://default:${PW}@host:8443"), {"PW": "s3cr3t"})
    assert config.services["analytics"].dsn == "https://default:s3cr3t@host:8443"


def test_tde_service_cannot_be_backed_up() -> None:
    text = CLOUD.replace("region: us-east-1\nbuckets", "region: us-east-1\n      tde: true\nbuckets")
    assert one_problem(text) == (
        "error: service `analytics` has Transparent Data Encryption (cloud.tde: true); ClickHouse Cloud does not "
        "allow it to be backed up, so use another service or remove this (cfg.yaml:16:14 at schedules.daily.service)"
    )


def test_regulated_service_cannot_be_backed_up() -> None:
    text = CLOUD.replace("region: us-east-1\nbuckets", "region: us-east-1\n      compliance: hipaa\nbuckets")
    assert "is a regulated (hipaa) service" in one_problem(text)


def test_cross_cloud_without_allow() -> None:
    text = CLOUD.replace("provider: s3", "provider: gcs")
    assert one_problem(text) == (
        "error: schedule `daily` writes from service `analytics` (aws) into bucket `primary` (gcp): that is "
        "cross-cloud, which ClickHouse Cloud refuses; use a bucket in aws, or set `allow_cross_cloud: true` on "
        "the schedule (SQL path only) (cfg.yaml:16:13 at schedules.daily.bucket)"
    )


def test_cross_cloud_allowed_is_a_warning() -> None:
    config = load(CLOUD.replace("provider: s3", "provider: gcs") + "    allow_cross_cloud: true\n")
    assert config.warnings == (
        "schedule `daily` writes from service `analytics` (aws) into bucket `primary` (gcp): that is cross-cloud; "
        "only the SQL BACKUP path supports it, and transfer between clouds is charged "
        "(cfg.yaml:16:13 at schedules.daily.bucket)",
    )


def test_cross_region_warning() -> None:
    config = load(CLOUD.replace("    region: us-east-1\nschedules", "    region: eu-west-1\nschedules"))
    assert config.warnings == (
        "schedule `daily`: exports to eu-west-1 from us-east-1 incur data transfer charges (service `analytics`, "
        "bucket `primary`); data transfer between regions is charged (cfg.yaml:16:13 at schedules.daily.bucket)",
    )


def test_two_chdb_paths() -> None:
    text = BASE.replace("buckets:", "  other:\n    dsn: chdb:///tmp/y\n  same:\n    dsn: chdb:///tmp/x/\nbuckets:")
    assert one_problem(text) == (
        "error: service `other` uses chdb data path `/tmp/y` but service `analytics` uses `/tmp/x`; one process "
        "runs one chdb engine, so give every chdb service the same path (cfg.yaml:6:10 at services.other.dsn)"
    )


def test_start_time_needs_a_24_hour_period() -> None:
    text = CLOUD.replace(
        "region: us-east-1\nbuckets",
        'region: us-east-1\n      managed_backups:\n        period_hours: 12\n        start_time: "03:00"\nbuckets',
    )
    assert one_problem(text) == (
        "error: `start_time` only applies to a period of 24 hours (period_hours is 12); remove `start_time` or set "
        "`period_hours: 24` (cfg.yaml:10:21 at services.analytics.cloud.managed_backups.start_time)"
    )


def test_managed_backups_values_in_the_api_sets() -> None:
    text = CLOUD.replace(
        "region: us-east-1\nbuckets",
        'region: us-east-1\n      managed_backups:\n        period_hours: 7\n        start_time: "03:30"\nbuckets',
    )
    assert problems(text) == [
        "error: `period_hours` must be one of 6, 8, 12, 16, 20, 24, 36, 48, got 7 "
        "(cfg.yaml:9:23 at services.analytics.cloud.managed_backups.period_hours)",
        "error: `start_time` must be a whole hour in UTC written HH:00, like 03:00, got `03:30` "
        "(cfg.yaml:10:21 at services.analytics.cloud.managed_backups.start_time)",
    ]


def test_several_schema_errors_are_all_reported_sorted_by_line() -> None:
    text = BASE.replace("provider: s3", "provider: ftp").replace("service: analytics", "service: 7")
    text += "    colour: blue\n    retention: {keep_last: -1}\n"
    lines = problems(text)
    assert len(lines) == 4, lines
    assert lines[0] == (
        "error: `provider` must be one of `s3`, `gcs`, `azure`, got `ftp` (cfg.yaml:7:15 at buckets.primary.provider)"
    )
    assert lines[1] == "error: `service` must be a string, got 7 (cfg.yaml:11:14 at schedules.daily.service)"
    assert lines[2].startswith("error: unknown key `colour` under schedules.daily; allowed: service, bucket,")
    assert lines[2].endswith("(cfg.yaml:14:5 at schedules.daily.colour)")
    assert lines[3] == (
        "error: `keep_last` must be at least 0, got -1 (cfg.yaml:15:28 at schedules.daily.retention.keep_last)"
    )


def test_schema_and_rule_errors_together() -> None:
    text = BASE.replace("service: analytics", "service: nope") + "    colour: blue\n"
    lines = problems(text)
    assert [line.rsplit("(", 1)[1] for line in lines] == [
        "cfg.yaml:11:14 at schedules.daily.service)",
        "cfg.yaml:14:5 at schedules.daily.colour)",
    ]


def test_bad_names() -> None:
    assert one_problem(BASE.replace("  daily:", "  Daily:")) == (
        "error: name `Daily` under schedules must be lowercase letters, digits, `-` and `_`, starting with a "
        "letter or digit, at most 63 characters (cfg.yaml:10:3 at schedules.Daily)"
    )


@pytest.mark.parametrize(
    ("scope", "place"),
    [
        ("databases: [shop-db]", "cfg.yaml:14:17 at schedules.daily.databases[0]"),
        ("tables: [shop]", "cfg.yaml:14:14 at schedules.daily.tables[0]"),
        ("tables: ['`shop`.orders']", "cfg.yaml:14:14 at schedules.daily.tables[0]"),
    ],
)
def test_database_and_table_names(scope: str, place: str) -> None:
    assert one_problem(BASE + f"    {scope}\n").endswith(f"({place})")


def test_databases_and_tables_together() -> None:
    assert one_problem(BASE + "    databases: [shop]\n    tables: [shop.orders]\n").endswith(
        "(cfg.yaml:15:13 at schedules.daily.tables)"
    )


@pytest.mark.parametrize(
    ("prefix", "normalised"),
    [("/clickhouse/", "clickhouse"), ("a/b", "a/b"), ("/", ""), ("", "")],
)
def test_prefix_normalised(prefix: str, normalised: str) -> None:
    text = BASE.replace("acme-ch-backups", f"acme-ch-backups\n    prefix: '{prefix}'")
    assert load(text).buckets["primary"].prefix == normalised


@pytest.mark.parametrize("prefix", ["a//b", "a/../b", "./a", "a\\\\b", "caf\u00e9", "a\\tb"])
def test_prefix_refused(prefix: str) -> None:
    text = BASE.replace("acme-ch-backups", f'acme-ch-backups\n    prefix: "{prefix}"')
    assert one_problem(text).endswith("(cfg.yaml:9:13 at buckets.primary.prefix)")


# --------------------------------------------------------------------------------------------
# Restores
# --------------------------------------------------------------------------------------------

RESTORES = """\
restores:
  r:
    from: {schedule: daily}
    to: {service: analytics, databases: {shop: shop_copy}}
"""


def test_restore_refers_to_existing_things() -> None:
    text = BASE + RESTORES.replace("schedule: daily", "schedule: weekly").replace("service: analytics", "service: x")
    assert [line.rsplit("(", 1)[1] for line in problems(text)] == [
        "cfg.yaml:16:22 at restores.r.from.schedule)",
        "cfg.yaml:17:19 at restores.r.to.service)",
    ]


def test_restore_renames_must_be_in_the_schedule() -> None:
    text = BASE + "    databases: [web]\n" + RESTORES
    assert one_problem(text) == (
        "error: database `shop` is not in the backups of schedule `daily` (it backs up: web); rename one of those "
        "(cfg.yaml:18:42 at restores.r.to.databases.shop)"
    )


def test_restore_from_whole_service_schedule_may_rename_any_database() -> None:
    config = load(BASE + RESTORES)
    assert dict(config.restores["r"].target.databases) == {"shop": "shop_copy"}
    assert config.restores["r"].source.backup == "latest"


def test_restore_needs_exactly_one_source() -> None:
    text = BASE + RESTORES.replace("{schedule: daily}", "{schedule: daily, service: analytics}")
    assert "needs exactly one of `from.schedule`, `from.service` and `from.snapshot`" in problems(text)[0]


def test_restore_into_a_tde_service() -> None:
    text = CLOUD.replace("region: us-east-1\nbuckets", "region: us-east-1\n      tde: true\nbuckets")
    text = text.replace("service: analytics\n    bucket", "service: other\n    bucket")
    text = text.replace("buckets:", "  other:\n    dsn: chdb:///tmp/x\nbuckets:") + RESTORES
    assert one_problem(text).endswith("(cfg.yaml:24:19 at restores.r.to.service)")


def test_new_service_from_a_cloud_backup_needs_the_api() -> None:
    text = CLOUD + "restores:\n  r:\n    from: {service: analytics}\n    to: {new_service: {name: copy}}\n"
    assert one_problem(text).endswith("(cfg.yaml:20:21 at restores.r.from.service)")


# --------------------------------------------------------------------------------------------
# YAML reading and ${VAR}
# --------------------------------------------------------------------------------------------


def test_variables_with_text_around_and_escape() -> None:
    text = BASE.replace("acme-ch-backups", "acme-${ENV}-${TEAM}").replace(
        "buckets:\n  primary:\n", "buckets:\n  primary:\n    prefix: 'lit/$${HOME}'\n"
    )
    config = load(text, {"ENV": "prod", "TEAM": "ch"})
    assert config.buckets["primary"].bucket == "acme-prod-ch"
    assert config.buckets["primary"].prefix == "lit/${HOME}"


def test_malformed_variable_reference() -> None:
    line = one_problem(BASE.replace("acme-ch-backups", "acme-${ENV:-x}"))
    assert line.endswith("(cfg.yaml:8:13 at buckets.primary.bucket)")
    assert "`${ENV:-x}` is not a variable reference" in line


def test_non_standard_tag_is_refused() -> None:
    assert one_problem(BASE.replace("chdb:///tmp/x", '!!python/object/apply:os.system ["id"]')) == (
        "error: the tag `!!python/object/apply:os.system` is not allowed; the config takes plain YAML values only "
        "(strings, numbers, booleans, null, lists, mappings) (cfg.yaml:4:10 at services.analytics.dsn)"
    )


def test_alias_bomb() -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for prev, name in zip("abcde", "bcdef", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 10) + "]")
    line = one_problem("\n".join(lines) + "\n")
    assert line.startswith("error: the file expands to too many values (YAML aliases?) (cfg.yaml:")


def test_recursive_alias() -> None:
    assert "nests deeper than 64 levels" in one_problem("version: 1\nservices: &a {x: *a}\n")


def test_deep_nesting() -> None:
    assert one_problem("a: " + "[" * 100 + "]" * 100 + "\n") == (
        "error: the config nests deeper than 64 levels (cfg.yaml:1:67)"
    )


def test_merge_keys_are_supported() -> None:
    text = BASE.replace(
        "schedules:\n  daily:\n    service: analytics\n    bucket: primary\n",
        "schedules:\n  hourly:\n    <<: &common {service: analytics, bucket: primary}\n    every: 1h\n"
        "  daily:\n    <<: *common\n",
    )
    config = load(text)
    assert config.schedules["daily"].bucket == "primary"
    assert config.schedules["hourly"].every == timedelta(hours=1)


# --------------------------------------------------------------------------------------------
# Secrets never leak
# --------------------------------------------------------------------------------------------

LEAKY = """\
version: 1
services:
  analytics:
    dsn: https://default:dsn-literal-pw-1@host:8443
    cloud:
      provider: aws
      region: us-east-1
      api:
        organization_id: o
        service_id: s
        key_id: ${CH_KEY_ID}
        key_secret: api-literal-secret-2
      managed_backups:
        period_hours: ${PERIOD_SECRET}
buckets:
  primary:
    provider: s3
    bucket: acme-ch-backups
    credentials:
      secret_access_key: s3-literal-secret-3
      session_token: 87654321
      hmac_secret: [list-secret-4]
      connection_string: {inner: map-secret-5}
      account_key: ${ACCOUNT_KEY}
      secrit_access_key: typo-secret-6
"""


def test_no_error_message_contains_a_secret() -> None:
    env = {"CH_KEY_ID": "env-key-id-7", "PERIOD_SECRET": "env-secret-8", "ACCOUNT_KEY": "env-secret-9"}
    lines = problems(LEAKY, env)
    assert len(lines) >= 8, lines
    text = "\n".join(lines)
    secrets = [
        "dsn-literal-pw-1",
        "api-literal-secret-2",
        "s3-literal-secret-3",
        "87654321",
        "list-secret-4",
        "map-secret-5",
        "typo-secret-6",
        *env.values(),
    ]
    for secret in secrets:
        assert secret not in text


def test_yaml_errors_do_not_quote_the_line() -> None:
    text = 'version: 1\nbuckets:\n  b:\n    credentials:\n      secret_access_key: "hunter2-secret\n'
    assert "hunter2" not in one_problem(text)


def test_digest_is_stable_secret_free_and_follows_meaning() -> None:
    first = load_config(str(FULL), FULL_ENV)
    rotated_env = {k: v + "-rotated" for k, v in FULL_ENV.items()}
    rotated_env["ANALYTICS_DSN"] = FULL_ENV["ANALYTICS_DSN"].replace("dsn-pass-7f3a", "new-pass")
    rotated = load_config(str(FULL), rotated_env)
    assert first.digest == rotated.digest
    changed = Path("full.yaml")
    changed.write_text(FULL.read_text().replace('cron: "0 3 * * *"', 'cron: "0 4 * * *"'))
    assert load_config("full.yaml", FULL_ENV).digest != first.digest

    data = yaml.safe_load(FULL.read_text())
    data["services"]["analytics"]["dsn"] = FULL_ENV["ANALYTICS_DSN"]
    dumped = json.dumps(redacted(data))
    for secret in FULL_ENV.values():
        assert secret not in dumped


# --------------------------------------------------------------------------------------------
# Public helpers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("6h", timedelta(hours=6)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("0s", timedelta(0)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["25x", "6", "1h30m", "h", "", "-1h", "6 H", "1.5h", "99999999999999w"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_config_schema_is_draft_2020_12_and_closed() -> None:
    schema = config_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["properties"]["version"]["const"] == 1
    assert schema["required"] == ["version"]

    def closed(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node and node.get("title") != "New Cloud service":
                assert node.get("additionalProperties") is False, node.get("title")
            for value in node.values():
                closed(value)
        elif isinstance(node, list):
            for value in node:
                closed(value)

    closed(schema)
    config_schema()["title"] = "changed"
    assert config_schema()["title"] != "changed"


def test_full_config_is_valid_against_the_schema() -> None:
    data = yaml.safe_load(FULL.read_text())
    assert list(Draft202012Validator(config_schema()).iter_errors(data)) == []


def test_config_error_carries_locations() -> None:
    with pytest.raises(ConfigError) as info:
        load(BASE.replace("service: analytics", "service: nope"))
    where = info.value.problems[0].where
    assert where == Location("cfg.yaml", 11, 14, "schedules.daily.service")


def _paths(value: object, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    out = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, path + (index,))
    return out


def test_any_value_of_the_wrong_type_is_a_config_error() -> None:
    """Rules read values defensively: a wrong type anywhere is reported, never a crash or a leak."""
    data = yaml.safe_load(FULL.read_text())
    for i, path in enumerate(_paths(data)):
        wrong = [None, 1, [1], {"k": 1}][i % 4]
        mutated = copy.deepcopy(data)
        parent = mutated
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = wrong
        Path("cfg.yaml").write_text(yaml.safe_dump(mutated))
        try:
            load_config("cfg.yaml", FULL_ENV)
        except ConfigError as exc:
            text = "\n".join(exc.lines())
            assert not [s for s in FULL_ENV.values() if s in text], (path, text)
