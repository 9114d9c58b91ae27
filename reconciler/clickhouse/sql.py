"""The SQL the reconciler sends to ClickHouse. Pure functions: no I/O, easy to test exactly.

Destinations carry credentials; ``*_sql(..., hide=True)`` renders the same statement with
every secret as ``[HIDDEN]`` for plans, logs and errors.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..model import Bucket, Provider, Scope
from ..redact import HIDDEN

#: what a whole-service backup leaves out: ClickHouse's own databases
SYSTEM_DATABASES = ("system", "information_schema", "INFORMATION_SCHEMA")

#: what ``include_access`` adds, as ClickHouse Cloud's "entire service" backup lists them: users,
#: roles, settings profiles, row policies, quotas and user-defined SQL functions. ClickHouse
#: backs these tables up as access entities (``access*.txt``) and functions (their CREATE
#: queries), not as rows.
ACCESS_TABLES = ("users", "roles", "settings_profiles", "row_policies", "quotas", "functions")

GCS_S3_ENDPOINT = "https://storage.googleapis.com"


def quote_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_ident(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _table(qualified: str) -> str:
    db, _, table = qualified.partition(".")
    return f"{quote_ident(db)}.{quote_ident(table)}"


def object_url(bucket: Bucket, key: str) -> str:
    """The HTTP(S) URL ClickHouse's S3 engine writes to (S3 and GCS's S3-interop API)."""
    key = key.strip("/")
    if bucket.provider == Provider.GCS:
        return f"{(bucket.endpoint or GCS_S3_ENDPOINT).rstrip('/')}/{bucket.bucket}/{key}"
    if bucket.endpoint:
        return f"{bucket.endpoint.rstrip('/')}/{bucket.bucket}/{key}"
    region = bucket.region or "us-east-1"
    return f"https://{bucket.bucket}.s3.{region}.amazonaws.com/{key}"


def destination_sql(bucket: Bucket, key: str, hide: bool = False) -> str:
    """``S3(...)`` / ``AzureBlobStorage(...)`` for a backup folder ``key``."""

    def secret(v: str) -> str:
        return quote_string(HIDDEN if hide else v)

    c = bucket.credentials
    if bucket.provider == Provider.AZURE:
        path = quote_string(key.strip("/"))
        container = quote_string(bucket.bucket)
        if c.connection_string:
            return f"AzureBlobStorage({secret(c.connection_string)}, {container}, {path})"
        account_url = bucket.endpoint or f"https://{c.account_name}.blob.core.windows.net"
        return (
            f"AzureBlobStorage({quote_string(account_url)}, {container}, {path}, "
            f"{quote_string(c.account_name or '')}, {secret(c.account_key or '')})"
        )
    url = quote_string(object_url(bucket, key))
    if bucket.provider == Provider.GCS:
        if c.hmac_key and c.hmac_secret:
            return f"S3({url}, {quote_string(c.hmac_key)}, {secret(c.hmac_secret)})"
        return f"S3({url})"
    if c.access_key_id and c.secret_access_key:
        if c.session_token:
            return (
                f"S3({url}, {quote_string(c.access_key_id)}, {secret(c.secret_access_key)}, {secret(c.session_token)})"
            )
        return f"S3({url}, {quote_string(c.access_key_id)}, {secret(c.secret_access_key)})"
    if c.role_arn:
        return f"S3({url}, extra_credentials(role_arn = {quote_string(c.role_arn)}))"
    return f"S3({url})"


def _settings(pairs: Mapping[str, str]) -> str:
    return " SETTINGS " + ", ".join(f"{k} = {v}" for k, v in pairs.items()) if pairs else ""


def _everything(access: bool) -> str:
    """The whole service: every database but ClickHouse's own, and with ``access`` the access
    entities and functions first, as ClickHouse Cloud's "entire service" command writes it."""
    everything = "ALL EXCEPT DATABASES " + ", ".join(quote_ident(d) for d in SYSTEM_DATABASES)
    if not access:
        return everything
    return ", ".join(f"TABLE {quote_ident('system')}.{quote_ident(t)}" for t in ACCESS_TABLES) + ", " + everything


def backup_sql(
    scope: Scope, destination: str, operation_id: str, base: str | None = None, storage_class: str | None = None
) -> str:
    """``BACKUP <scope> TO <destination> SETTINGS id = ..., [base_backup = ...,] [s3_storage_class = ...] ASYNC``."""
    if scope.databases:
        what = ", ".join(f"DATABASE {quote_ident(d)}" for d in scope.databases)
    elif scope.tables:
        what = ", ".join(f"TABLE {_table(t)}" for t in scope.tables)
    else:
        what = _everything(scope.access)
    settings = {"id": quote_string(operation_id)}
    if base:
        settings["base_backup"] = base
    if storage_class:
        settings["s3_storage_class"] = quote_string(storage_class)
    return f"BACKUP {what} TO {destination}{_settings(settings)} ASYNC"


def restore_sql(
    scope: Scope,
    renames: Mapping[str, str],
    source: str,
    operation_id: str,
    allow_non_empty_tables: bool = False,
    base: str | None = None,
    same_credentials_for_base: bool = False,
) -> str:
    """``RESTORE <scope> [AS ...] FROM <source> ... ASYNC``.

    ``same_credentials_for_base``: the bases named in the manifests (a copy's name its base's copy
    without a credential) are read with the source's S3 credentials
    (``use_same_s3_credentials_for_base_backup``).

    ``renames`` maps source database names to target ones. When it is given, only the renamed
    databases (or their tables) are restored; otherwise everything the backup's scope holds,
    under the same names: for a backup made with ``include_access``, its users, roles, settings
    profiles, row policies, quotas and functions too. ClickHouse's defaults then apply
    (``create_access`` and ``create_function`` create-if-not-exists: an entity of the same name
    already on the service is kept as it is; ``update_access_entities_dependents``).
    """
    if scope.tables:
        tables = [t for t in scope.tables if not renames or t.partition(".")[0] in renames]
        parts = []
        for t in tables:
            db, _, table = t.partition(".")
            target = renames.get(db, db)
            parts.append(
                f"TABLE {_table(t)}" + (f" AS {quote_ident(target)}.{quote_ident(table)}" if target != db else "")
            )
        what = ", ".join(parts)
    elif scope.databases or renames:
        dbs = [d for d in (scope.databases or tuple(renames)) if not renames or d in renames]
        what = ", ".join(
            f"DATABASE {quote_ident(d)}" + (f" AS {quote_ident(renames[d])}" if renames.get(d, d) != d else "")
            for d in dbs
        )
    else:
        what = _everything(scope.access)
    settings = {"id": quote_string(operation_id)}
    if allow_non_empty_tables:
        settings["allow_non_empty_tables"] = "true"
    if base:
        settings["base_backup"] = base
    if same_credentials_for_base:
        settings["use_same_s3_credentials_for_base_backup"] = "1"
    return f"RESTORE {what} FROM {source}{_settings(settings)} ASYNC"


def create_database_sql(name: str) -> str:
    """The database a table-scope RESTORE writes into: ``RESTORE TABLE a.t AS b.t`` does not create
    ``b`` (``RESTORE DATABASE`` does). No engine is named, so the server's default applies
    (``default_database_engine``: Atomic on ClickHouse 26.9 and chdb 4.4, as a restored database
    has), and ClickHouse Cloud's own default there."""
    return f"CREATE DATABASE IF NOT EXISTS {quote_ident(name)}"


def operations_sql(ids: list[str]) -> str:
    cols = "id, name, status, error, start_time, end_time, num_files, total_size, num_entries, uncompressed_size"
    return f"SELECT {cols} FROM system.backups WHERE id IN ({', '.join(quote_string(i) for i in ids)})"
