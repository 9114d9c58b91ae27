"""The exact SQL sent to ClickHouse, per provider and credential form (pure)."""

from __future__ import annotations

from reconciler.clickhouse.sql import backup_sql, create_database_sql, destination_sql, restore_sql
from reconciler.model import Bucket, Credentials, Provider, Scope

KEY = "clickhouse/analytics/daily/20261125T030000Z/"


def s3(**creds: str) -> Bucket:
    return Bucket(
        "primary", Provider.S3, "acme-ch-backups", "clickhouse", "eu-west-1", credentials=Credentials(**creds)
    )


def test_s3_credential_forms() -> None:
    url = "'https://acme-ch-backups.s3.eu-west-1.amazonaws.com/clickhouse/analytics/daily/20261125T030000Z'"
    assert (
        destination_sql(s3(access_key_id="AKIA1", secret_access_key="sekret"), KEY) == f"S3({url}, 'AKIA1', 'sekret')"
    )
    assert (
        destination_sql(s3(access_key_id="AKIA1", secret_access_key="sekret"), KEY, hide=True)
        == f"S3({url}, 'AKIA1', '[HIDDEN]')"
    )
    assert (
        destination_sql(s3(access_key_id="ASIA1", secret_access_key="sekret", session_token="tok"), KEY, hide=True)
        == f"S3({url}, 'ASIA1', '[HIDDEN]', '[HIDDEN]')"
    )
    assert (
        destination_sql(s3(role_arn="arn:aws:iam::123456789012:role/ch"), KEY)
        == f"S3({url}, extra_credentials(role_arn = 'arn:aws:iam::123456789012:role/ch'))"
    )
    assert destination_sql(s3(), KEY) == f"S3({url})"  # ClickHouse's own (environment) credentials
    endpoint = Bucket("primary", Provider.S3, "bkt", endpoint="http://127.0.0.1:9000/")
    assert destination_sql(endpoint, "a/b/") == "S3('http://127.0.0.1:9000/bkt/a/b')"


def test_gcs_is_written_through_the_s3_interop_api_with_hmac() -> None:
    gcs = Bucket(
        "primary",
        Provider.GCS,
        "acme-gcs",
        "clickhouse",
        credentials=Credentials(hmac_key="GOOG1", hmac_secret="hsecret"),
        gcs_json_endpoint="http://127.0.0.1:4443",
    )
    dest = destination_sql(gcs, KEY)
    assert dest == (
        "S3('https://storage.googleapis.com/acme-gcs/clickhouse/analytics/daily/20261125T030000Z', 'GOOG1', 'hsecret')"
    )
    assert destination_sql(gcs, KEY, hide=True).endswith("'GOOG1', '[HIDDEN]')")
    assert backup_sql(Scope(databases=("shop",)), destination_sql(gcs, KEY, hide=True), "op-1") == (
        "BACKUP DATABASE `shop` TO S3('https://storage.googleapis.com/acme-gcs/clickhouse/analytics/daily/"
        "20261125T030000Z', 'GOOG1', '[HIDDEN]') SETTINGS id = 'op-1' ASYNC"
    )
    assert restore_sql(
        Scope(databases=("shop",)), {"shop": "shop_restored"}, destination_sql(gcs, KEY, hide=True), "op-2"
    ) == (
        "RESTORE DATABASE `shop` AS `shop_restored` FROM S3('https://storage.googleapis.com/acme-gcs/clickhouse/"
        "analytics/daily/20261125T030000Z', 'GOOG1', '[HIDDEN]') SETTINGS id = 'op-2' ASYNC"
    )


def test_azure_forms() -> None:
    cs = Bucket(
        "primary",
        Provider.AZURE,
        "ch-backups",
        "clickhouse",
        credentials=Credentials(connection_string="DefaultEndpointsProtocol=https;AccountName=a;AccountKey=k=="),
    )
    assert destination_sql(cs, KEY, hide=True) == (
        "AzureBlobStorage('[HIDDEN]', 'ch-backups', 'clickhouse/analytics/daily/20261125T030000Z')"
    )
    key = Bucket(
        "primary",
        Provider.AZURE,
        "ch-backups",
        "clickhouse",
        credentials=Credentials(account_name="acct", account_key="k=="),
    )
    assert destination_sql(key, KEY) == (
        "AzureBlobStorage('https://acct.blob.core.windows.net', 'ch-backups', "
        "'clickhouse/analytics/daily/20261125T030000Z', 'acct', 'k==')"
    )


def test_scopes_and_settings() -> None:
    d = "S3('u')"
    assert backup_sql(Scope(), d, "x") == (
        "BACKUP ALL EXCEPT DATABASES `system`, `information_schema`, `INFORMATION_SCHEMA` TO S3('u') SETTINGS id = 'x' ASYNC"  # noqa: E501 (an exact expected string)
    )
    assert backup_sql(Scope(tables=("shop.orders", "shop.customers")), d, "x", base="S3('b')") == (
        "BACKUP TABLE `shop`.`orders`, TABLE `shop`.`customers` TO S3('u') SETTINGS id = 'x', base_backup = S3('b') ASYNC"  # noqa: E501 (an exact expected string)
    )
    assert restore_sql(Scope(tables=("shop.orders",)), {"shop": "s2"}, d, "y", allow_non_empty_tables=True) == (
        "RESTORE TABLE `shop`.`orders` AS `s2`.`orders` FROM S3('u') SETTINGS id = 'y', allow_non_empty_tables = true ASYNC"  # noqa: E501 (an exact expected string)
    )
    # RESTORE TABLE ... AS does not create `s2`: the reconciler does first, with the server's default engine
    assert create_database_sql("s2") == "CREATE DATABASE IF NOT EXISTS `s2`"
    assert restore_sql(Scope(databases=("a", "b")), {"a": "a2"}, d, "z") == (
        "RESTORE DATABASE `a` AS `a2` FROM S3('u') SETTINGS id = 'z' ASYNC"
    )
    assert restore_sql(Scope(), {}, d, "z").startswith("RESTORE ALL EXCEPT DATABASES `system`")
    assert "'it\\'s'" in backup_sql(Scope(), d, "it's")  # quoting


def test_include_access_backs_up_and_restores_what_the_cloud_entire_service_command_does() -> None:
    """ClickHouse Cloud's "entire service" backup: TABLE system.users, system.roles,
    system.settings_profiles, system.row_policies, system.quotas, system.functions, then ALL
    EXCEPT ClickHouse's own databases. Restored the same way when nothing is renamed."""
    d = "S3('u')"
    access = "TABLE `system`.`users`, TABLE `system`.`roles`, TABLE `system`.`settings_profiles`, " + (
        "TABLE `system`.`row_policies`, TABLE `system`.`quotas`, TABLE `system`.`functions`, "
    )
    everything = "ALL EXCEPT DATABASES `system`, `information_schema`, `INFORMATION_SCHEMA`"
    whole = Scope(access=True)
    assert backup_sql(whole, d, "x") == f"BACKUP {access}{everything} TO S3('u') SETTINGS id = 'x' ASYNC"
    assert restore_sql(whole, {}, d, "y") == f"RESTORE {access}{everything} FROM S3('u') SETTINGS id = 'y' ASYNC"
    # renamed databases (and drills, which rename into scratch databases) restore no access entity:
    # grants, row policies and quotas name the original databases
    assert (
        restore_sql(whole, {"shop": "shop2"}, d, "z")
        == "RESTORE DATABASE `shop` AS `shop2` FROM S3('u') SETTINGS id = 'z' ASYNC"
    )  # noqa: E501
    # what a sidecar and a plan file record, and read back
    assert whole.to_json() == {"all": True, "access": True} and Scope.from_json(whole.to_json()) == whole
    assert Scope().to_json() == {"all": True} and Scope.from_json({"databases": ["a"], "access": True}).access is False
