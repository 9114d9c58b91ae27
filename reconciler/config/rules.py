"""Semantic rules of the config (docs/config.md): what the schema cannot say about one value alone.

References between sections, cron, bucket names, prefixes, ClickHouse Cloud's constraints,
literal secrets, one chdb engine per process. The rules run even when the schema found
problems, so a user sees every mistake at once; each rule therefore reads values
defensively and stays silent about a value of the wrong type (the schema reported it).
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from croniter import croniter

from reconciler.cloud.rules import restriction
from reconciler.config.durations import DURATION_PATTERN, parse_duration
from reconciler.config.schema import LITERAL_SECRET_FIELDS
from reconciler.config.yaml_loader import WHOLE_VAR, Document, Path, non_ascii_note, quoted
from reconciler.errors import ReconcilerError
from reconciler.model import STORE_CLOUD, UTC, CloudProvider, Provider

CRON_ALIASES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
MIN_EVERY = timedelta(minutes=1)
#: the periods the Cloud API accepts (the schema reports others; this rule only pairs them)
PERIOD_HOURS = (6, 8, 12, 16, 20, 24, 36, 48)
#: croniter's Jenkins-style `H` (hashed) and `R` (random) fields: slots must be deterministic
_NONSTANDARD_CRON = re.compile(r"(?<![A-Za-z])[HhRr](?![A-Za-z])")
#: a cron must have a tick before and after this time (croniter looks decades each way)
_CRON_PROBE = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Findings:
    problems: list[ReconcilerError] = field(default_factory=list)
    warnings: list[tuple[tuple[int, int], str]] = field(default_factory=list)

    def sorted_warnings(self) -> tuple[str, ...]:
        return tuple(text for _, text in sorted(self.warnings))


class _Checker:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.found = Findings()
        self.services = _section(doc, "services")
        self.buckets = _section(doc, "buckets")
        self.schedules = _section(doc, "schedules")
        self.restores = _section(doc, "restores")
        self.snapshots = _section(doc, "snapshots")

    def error(self, path: Path, message: str, at_key: bool = False) -> None:
        self.found.problems.append(ReconcilerError(message, self.doc.location(path, at_key)))

    def warn(self, path: Path, message: str) -> None:
        where = self.doc.location(path)
        self.found.warnings.append(((where.line, where.column), f"{message} ({where})"))

    def ref(self, path: Path, kind: str, section: dict[str, Any]) -> str | None:
        """The name at ``path`` if it names an entry of ``section``; else report it."""
        name = self.doc.get(path)
        if not isinstance(name, str) or not name:
            return None
        if name in section:
            return name
        known = ", ".join(quoted(k) for k in sorted(section)) or "none"
        self.error(
            path,
            f"{kind} `{quoted(name)}` is not defined under `{kind}s:`; define it there or fix the name "
            f"(defined: {known}){non_ascii_note(name)}",
        )
        return None


def check_rules(doc: Document) -> Findings:
    """All semantic problems and warnings of a document whose values are expanded."""
    c = _Checker(doc)
    for name in c.services:
        _check_service(c, name)
    _check_chdb_paths(c)
    for name in c.buckets:
        _check_bucket(c, name)
    for name in c.schedules:
        _check_schedule(c, name)
        _check_compliance(c, name)
    for name in c.snapshots:
        _check_snapshot(c, name)
    for name in c.restores:
        _check_restore(c, name)
    for i, hook in enumerate(_list(doc.get(("notify",)))):
        _check_notify(c, i, _map(hook))
    return c.found


# --------------------------------------------------------------------------------------------
# Small readers: None / {} for anything of another type
# --------------------------------------------------------------------------------------------


def _section(doc: Document, key: str) -> dict[str, Any]:
    value = doc.get((key,))
    return value if isinstance(value, dict) else {}


def _map(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _duration(value: Any) -> timedelta | None:
    """A parsed duration, or None (absent, or malformed: the schema reported that)."""
    if not isinstance(value, str):
        return None
    try:
        return parse_duration(value)
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------
# Services
# --------------------------------------------------------------------------------------------


def _check_service(c: _Checker, name: str) -> None:
    path: Path = ("services", name)
    service = _map(c.services[name])
    if isinstance(service.get("dsn"), str):
        _check_dsn_password(c, path + ("dsn",), name)
    cloud = _map(service.get("cloud"))
    api_path = path + ("cloud", "api", "key_secret")
    if "key_secret" in _map(cloud.get("api")):
        _require_env(c, api_path)
    managed = _map(cloud.get("managed_backups"))
    mb_path = path + ("cloud", "managed_backups")
    period = managed.get("period_hours")
    if managed.get("start_time") is not None and period in PERIOD_HOURS and period != 24:
        c.error(
            mb_path + ("start_time",),
            f"`start_time` only applies to a period of 24 hours (period_hours is {managed['period_hours']}); "
            "remove `start_time` or set `period_hours: 24`",
        )
    if "external_bucket" in managed:
        c.ref(mb_path + ("external_bucket",), "bucket", c.buckets)


def _check_dsn_password(c: _Checker, path: Path, service: str) -> None:
    """A password inside a DSN must come from ``${VAR}``, checked on the text as written."""
    if path in c.doc.from_env:
        return
    raw = c.doc.raw.get(path, "")
    match = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://([^@/?#]*)@", raw)
    password = match.group(1).partition(":")[2] if match else ""
    query = re.search(r"[?&]password=([^&#]*)", raw)
    for value in (password, query.group(1) if query else ""):
        if value and not WHOLE_VAR.fullmatch(value):
            c.error(
                path,
                f"the DSN of service `{service}` holds a literal password; write it as `${{SOME_VAR}}` "
                "(e.g. https://user:${CH_PASSWORD}@host:8443) and set it in the environment",
            )
            return


def _chdb_path(dsn: str) -> str:
    rest = dsn[len("chdb:") :]
    if rest.startswith("//"):
        rest = rest[2:]
    rest = rest.split("?", 1)[0]
    return os.path.normpath(rest) if rest else ":memory:"


def _check_chdb_paths(c: _Checker) -> None:
    """One chdb engine per process (checked on ClickHouse 26.9, chdb 4.4): every chdb service must
    share one data path."""
    first: tuple[str, str] | None = None
    for name, service in c.services.items():
        dsn = _str(_map(service).get("dsn"))
        if not dsn or not dsn.startswith("chdb:"):
            continue
        data_path = _chdb_path(dsn)
        if first is None:
            first = (name, data_path)
        elif data_path != first[1]:
            c.error(
                ("services", name, "dsn"),
                f"service `{name}` uses chdb data path `{quoted(data_path)}` but service `{first[0]}` uses "
                f"`{quoted(first[1])}`; one process runs one chdb engine, so give every chdb service the same path",
            )


def _require_env(c: _Checker, path: Path) -> None:
    """A secret field must be exactly one ``${VAR}``: a literal would end up in Git."""
    value = c.doc.get(path)
    if isinstance(value, str) and path not in c.doc.from_env:
        c.error(
            path,
            f"`{path[-1]}` is a literal secret; write `${{SOME_VAR}}` and set it in the environment",
        )


def _is_restricted(service: dict[str, Any]) -> str | None:
    """Why ClickHouse Cloud allows no backup/restore of this service, or None (the rule is
    cloud.rules.restriction; here it reads the declared facts and names the key)."""
    cloud = _map(service.get("cloud"))
    why = restriction(cloud.get("tde") is True, cloud.get("compliance"))
    if why and cloud.get("tde") is True:
        return f"{why} (cloud.tde: true)"
    return why


def _check_not_restricted(c: _Checker, path: Path, service_name: str, role: str) -> None:
    why = _is_restricted(_map(c.services.get(service_name)))
    if why:
        c.error(
            path,
            f"service `{service_name}` {why}; ClickHouse Cloud does not allow it to be {role}, "
            "so use another service or remove this",
        )


# --------------------------------------------------------------------------------------------
# Buckets
# --------------------------------------------------------------------------------------------


def bucket_name_problem(provider: str, name: str) -> str | None:
    """Why ``name`` is not a valid bucket (container) name for ``provider``, or None."""
    kind = {"s3": "S3 bucket", "gcs": "GCS bucket", "azure": "Azure container"}.get(provider)
    if kind is None:
        return None
    shown = quoted(name)
    if not 3 <= len(name) <= 63:
        return f"`{shown}` is not a valid {kind} name: it must be 3 to 63 characters long"
    allowed = {
        "s3": ("a-z0-9.-", "lowercase letters, digits, dots and hyphens"),
        "gcs": ("a-z0-9._-", "lowercase letters, digits, dots, hyphens and underscores"),
        "azure": ("a-z0-9-", "lowercase letters, digits and hyphens"),
    }[provider]
    if not re.fullmatch(f"[{allowed[0]}]+", name):
        return f"`{shown}` is not a valid {kind} name: use only {allowed[1]}"
    if not (name[0].isalnum() and name[-1].isalnum()):
        return f"`{shown}` is not a valid {kind} name: it must start and end with a letter or digit"
    if provider == "s3" and ".." in name:
        return f"`{shown}` is not a valid S3 bucket name: it must not contain `..`"
    if provider == "azure" and "--" in name:
        return f"`{shown}` is not a valid Azure container name: it must not contain `--`"
    if provider == "s3":
        try:
            ipaddress.IPv4Address(name)
        except ValueError:
            return None
        return f"`{shown}` is not a valid S3 bucket name: it must not look like an IP address"
    return None


def normalize_prefix(prefix: str) -> tuple[str, str | None]:
    """``/a/b/`` -> ``a/b``, and why the prefix cannot be used (or None).

    Keys are built as ``<prefix>/<service>/...``; an empty, ``.`` or ``..`` segment would make
    two spellings of one folder (or escape it on stores that normalise paths).
    """
    value = prefix.strip("/")
    if "\\" in prefix:
        return value, "the prefix must not contain backslashes; separate folders with `/`"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in prefix):
        return value, "the prefix must not contain control characters"
    if not prefix.isascii():
        return value, "the prefix must be ASCII (letters, digits, `-`, `_`, `.` and `/`)"
    if value and any(seg in ("", ".", "..") for seg in value.split("/")):
        return value, "the prefix must not have empty, `.` or `..` folders (like `a//b` or `a/../b`)"
    return value, None


def _check_bucket(c: _Checker, name: str) -> None:
    path: Path = ("buckets", name)
    bucket = _map(c.buckets[name])
    provider, bucket_name = _str(bucket.get("provider")), _str(bucket.get("bucket"))
    if provider and bucket_name is not None:
        problem = bucket_name_problem(provider, bucket_name)
        if problem:
            c.error(path + ("bucket",), problem)
    prefix = _str(bucket.get("prefix"))
    if prefix is not None:
        problem = normalize_prefix(prefix)[1]
        if problem:
            c.error(path + ("prefix",), problem)
    credentials = _map(bucket.get("credentials"))
    for key in credentials:
        if key in LITERAL_SECRET_FIELDS:
            _require_env(c, path + ("credentials", key))
    if provider in ("gcs", "azure"):
        for key, what in (("immutability", "immutability (object lock)"), ("storage_class", "storage_class")):
            if key in bucket:
                c.error(
                    path + (key,),
                    f"`{key}` is not supported yet for {provider} buckets: {what} is supported on s3 only; "
                    "remove it, or use an s3 bucket",
                    at_key=True,
                )


# --------------------------------------------------------------------------------------------
# Schedules
# --------------------------------------------------------------------------------------------


def cron_problem(expr: str) -> str | None:
    """Why ``expr`` is not a cron the reconciler plans with (5 fields or an @alias), or None."""
    text = expr.strip()
    shown = quoted(text)
    example = 'write 5 fields (minute hour day-of-month month day-of-week), e.g. "0 3 * * *"'
    if text.startswith("@"):
        if text.lower() in CRON_ALIASES and croniter.is_valid(text):
            return None
        return f"`{shown}` is not a schedule the reconciler can plan; {example}, or use @hourly, @daily, @weekly, ..."
    fields = text.split()
    if len(fields) != 5:
        return f"the cron expression has {len(fields)} fields; {example}"
    if _NONSTANDARD_CRON.search(text):
        return f"`{shown}` uses H or R, which make slots unpredictable; {example}"
    if not croniter.is_valid(text):
        return f"`{shown}` is not a valid cron expression (a value out of range?); {example}"
    try:  # valid fields can still name no date at all (31 February): planning would fail on it
        croniter(text, _CRON_PROBE).get_next(datetime)
        croniter(text, _CRON_PROBE).get_prev(datetime)
    except Exception:
        return f"`{shown}` never fires: no date matches it (like 30 February); {example}"
    return None


def _check_schedule(c: _Checker, name: str) -> None:
    path: Path = ("schedules", name)
    if not isinstance(c.schedules[name], dict):
        return
    schedule: dict[str, Any] = c.schedules[name]
    service = c.ref(path + ("service",), "service", c.services)
    bucket = c.ref(path + ("bucket",), "bucket", c.buckets)
    if service:
        _check_not_restricted(c, path + ("service",), service, "backed up")
    _check_timing(c, path, schedule)
    if "databases" in schedule and "tables" in schedule:
        c.error(path + ("tables",), f"schedule `{name}` lists both `databases` and `tables`; keep one of them")
    _check_include_access(c, path, schedule)
    for key in ("every", "cleanup_after", "keep_within", "min_age", "checksums_every", "drill_every"):
        _check_duration(c, path, key)
    validate = _map(schedule.get("validate"))
    drill = _map(validate.get("drill"))
    if "service" in drill:
        drill_service = c.ref(path + ("validate", "drill", "service"), "service", c.services)
        if drill_service:
            _check_not_restricted(c, path + ("validate", "drill", "service"), drill_service, "restored into")
    if service and bucket:
        _check_clouds(c, path, schedule, service, bucket)
    _check_copies(c, path, schedule, bucket)


def _same_place(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two bucket entries that name one place (provider, endpoint, bucket and prefix)."""
    return (
        all((a.get(k) or "") == (b.get(k) or "") for k in ("provider", "endpoint", "bucket"))
        and normalize_prefix(_str(a.get("prefix")) or "")[0] == normalize_prefix(_str(b.get("prefix")) or "")[0]
    )


def _check_copies(c: _Checker, path: Path, schedule: dict[str, Any], bucket: str | None) -> None:
    """Each copy names a declared bucket, another than the schedule's, once."""
    seen: set[str] = set()
    for i, entry in enumerate(_list(schedule.get("copies"))):
        at = path + ("copies", i)
        if not isinstance(entry, dict):
            continue
        copy = c.ref(at + ("bucket",), "bucket", c.buckets)
        within = entry.get("retention")
        if isinstance(within, dict) and isinstance(within.get("keep_within"), str):
            td = _duration(within["keep_within"])
            if td is not None and td <= timedelta(0):
                c.error(at + ("retention", "keep_within"), "`keep_within` must be longer than zero")
        if not copy:
            continue
        if copy in seen:
            c.error(
                at + ("bucket",), f"bucket `{copy}` is listed twice in the copies of schedule `{path[-1]}`; keep one"
            )
        seen.add(copy)
        if bucket and (copy == bucket or _same_place(_map(c.buckets[copy]), _map(c.buckets[bucket]))):
            c.error(
                at + ("bucket",),
                f"schedule `{path[-1]}` copies into bucket `{copy}`, the place it backs up to; "
                "a copy goes to another bucket (another region or cloud): name a different one",
            )


def _check_include_access(c: _Checker, path: Path, schedule: dict[str, Any]) -> None:
    """Access entities belong to the whole service: ClickHouse Cloud backs them up only with it."""
    if schedule.get("include_access") is not True:
        return
    narrowed = [k for k in ("databases", "tables") if k in schedule]
    kind = "snapshot" if path[0] == "snapshots" else "schedule"
    if narrowed:
        c.error(
            path + ("include_access",),
            f"`include_access` backs up the users, roles, settings profiles, row policies, quotas and functions "
            f"of the whole service, but {kind} `{path[-1]}` lists `{narrowed[0]}`; remove `{narrowed[0]}` to "
            "back up the whole service, or remove `include_access`",
        )


_DURATION_PATHS: dict[str, Path] = {
    "every": ("every",),
    "cleanup_after": ("cleanup_after",),
    "keep_within": ("retention", "keep_within"),
    "min_age": ("retention", "min_age"),
    "checksums_every": ("validate", "checksums_every"),
    "drill_every": ("validate", "drill", "every"),
}


def _check_duration(c: _Checker, path: Path, key: str) -> None:
    """A duration of the right form must also be in range: not too long to compute with, and
    not zero (except cleanup_after: prune failures at once; `every` has its own minimum)."""
    rel = _DURATION_PATHS[key]
    value = c.doc.get(path + rel)
    if isinstance(value, str) and re.match(DURATION_PATTERN, value.strip()):
        try:
            parse_duration(value)
        except ValueError as e:
            c.error(path + rel, str(e))
            return
    td = _duration(value)
    if td is not None and td <= timedelta(0) and key not in ("cleanup_after", "every"):
        c.error(path + rel, f"`{rel[-1]}` must be longer than zero")


def _check_timing(c: _Checker, path: Path, schedule: dict[str, Any]) -> None:
    name = path[-1]
    if "cron" in schedule and "every" in schedule:
        c.error(path + ("every",), f"schedule `{name}` has both `cron` and `every`; keep exactly one")
    elif "cron" not in schedule and "every" not in schedule:
        c.error(
            path, f'schedule `{name}` has neither `cron` nor `every`; add one, e.g. `cron: "0 3 * * *"` or `every: 6h`'
        )
    cron = _str(schedule.get("cron"))
    if cron is not None:
        problem = cron_problem(cron)
        if problem:
            c.error(path + ("cron",), problem)
    every = _duration(schedule.get("every"))
    if every is not None and every < MIN_EVERY:
        c.error(path + ("every",), f"`every: {quoted(str(schedule['every']))}` is too short; the shortest is 1m")


def _check_clouds(c: _Checker, path: Path, schedule: dict[str, Any], service: str, bucket: str) -> None:
    """Cross-cloud is refused (or a warning when allowed); cross-region is a warning."""
    kind = "snapshot" if path[0] == "snapshots" else "schedule"
    cloud = _map(_map(c.services[service]).get("cloud"))
    bucket_spec = _map(c.buckets[bucket])
    try:
        service_cloud = CloudProvider(cloud.get("provider"))
        store_cloud = STORE_CLOUD[Provider(bucket_spec.get("provider"))]
    except ValueError:
        return  # self-managed service, or a provider the schema already refused
    where = path + ("bucket",)
    if service_cloud != store_cloud:
        what = (
            f"{kind} `{path[-1]}` writes from service `{service}` ({service_cloud.value}) into bucket "
            f"`{bucket}` ({store_cloud.value}): that is cross-cloud"
        )
        if schedule.get("allow_cross_cloud") is True:
            c.warn(where, f"{what}; only the SQL BACKUP path supports it, and transfer between clouds is charged")
        else:
            c.error(
                where,
                f"{what}, which ClickHouse Cloud refuses; use a bucket in {service_cloud.value}, "
                "or set `allow_cross_cloud: true` on the schedule (SQL path only)",
            )
        return
    service_region, bucket_region = _str(cloud.get("region")), _str(bucket_spec.get("region"))
    if service_region and bucket_region and service_region.lower() != bucket_region.lower():
        c.warn(
            where,
            f"{kind} `{path[-1]}`: exports to {bucket_region} from {service_region} incur data transfer charges "
            f"(service `{service}`, bucket `{bucket}`); data transfer between regions is charged",
        )


# --------------------------------------------------------------------------------------------
# Restores
# --------------------------------------------------------------------------------------------


def _check_restore(c: _Checker, name: str) -> None:
    path: Path = ("restores", name)
    restore = _map(c.restores[name])
    source, target = _map(restore.get("from")), _map(restore.get("to"))
    from_path, to_path = path + ("from",), path + ("to",)
    kinds = [k for k in ("schedule", "service", "snapshot") if k in source]
    if isinstance(restore.get("from"), dict) and len(kinds) != 1:
        c.error(from_path, f"restore `{name}` needs exactly one of `from.schedule`, `from.service` and `from.snapshot`")
    _check_restore_backup(c, from_path, source)
    if isinstance(restore.get("to"), dict):
        if ("service" in target) == ("new_service" in target):
            c.error(to_path, f"restore `{name}` needs exactly one of `to.service` and `to.new_service`")
        if "new_service" in target and "databases" in target:
            c.error(to_path + ("databases",), "`databases` renames apply to `to.service` only; remove it")
    schedule = c.ref(from_path + ("schedule",), "schedule", c.schedules) if "schedule" in source else None
    from_service = c.ref(from_path + ("service",), "service", c.services) if "service" in source else None
    to_service = c.ref(to_path + ("service",), "service", c.services) if "service" in target else None
    snapshot = c.ref(from_path + ("snapshot",), "snapshot", c.snapshots) if "snapshot" in source else None
    if snapshot and "new_service" in target:
        c.error(
            to_path + ("new_service",),
            "a new service can only be created from a ClickHouse Cloud backup; restore the snapshot into an "
            "existing `to.service`",
        )
    if from_service:
        _check_not_restricted(c, from_path + ("service",), from_service, "restored from")
        if not _map(_map(_map(c.services[from_service]).get("cloud")).get("api")):
            c.error(
                from_path + ("service",),
                f"restoring from service `{from_service}` uses its ClickHouse Cloud backups; "
                "give the service `cloud.api` so the reconciler can reach them",
            )
    if to_service:
        _check_not_restricted(c, to_path + ("service",), to_service, "restored into")
    if "schedule" in source and "new_service" in target and "service" not in source:
        c.error(
            to_path + ("new_service",),
            "a new service can only be created from a ClickHouse Cloud backup; use `from: {service: ...}`, "
            "or restore the schedule's backup into an existing `to.service`",
        )
    if "service" in source and "service" in target and "schedule" not in source:
        c.error(
            to_path + ("service",),
            "a ClickHouse Cloud backup can only be restored into a new service; use `to: {new_service: {name: ...}}`",
        )
    if schedule:
        _check_renames(c, to_path, target, schedule)
    if snapshot:
        _check_renames(c, to_path, target, snapshot, "snapshot")
    if "bucket" in source:
        _check_restore_bucket(c, from_path, source, schedule)


def _check_restore_bucket(c: _Checker, from_path: Path, source: dict[str, Any], schedule: str | None) -> None:
    """``from.bucket`` names one of the schedule's copy buckets."""
    copy = c.ref(from_path + ("bucket",), "bucket", c.buckets)
    if "schedule" not in source:
        c.error(from_path + ("bucket",), "`from.bucket` reads a schedule's copy; it needs `from.schedule`")
        return
    if not copy or not schedule:
        return
    copies = [_str(_map(e).get("bucket")) for e in _list(_map(c.schedules[schedule]).get("copies"))]
    if copy not in copies:
        listed = ", ".join(f"`{quoted(b)}`" for b in copies if b) or "none"
        c.error(
            from_path + ("bucket",),
            f"bucket `{quoted(copy)}` holds no copies of schedule `{schedule}` (its copies: {listed}); "
            f"add `copies: [{{bucket: {quoted(copy)}}}]` to the schedule or name one of its copy buckets",
        )


def _check_renames(c: _Checker, to_path: Path, target: dict[str, Any], schedule: str, kind: str = "schedule") -> None:
    """Renamed databases must be in the backup: a schedule's (or snapshot's) listed databases (or tables')."""
    scope = _map((c.snapshots if kind == "snapshot" else c.schedules)[schedule])
    databases = [d for d in _list(scope.get("databases")) if isinstance(d, str)]
    if not databases:
        tables = [t for t in _list(scope.get("tables")) if isinstance(t, str)]
        databases = sorted({t.split(".", 1)[0] for t in tables})
    if not databases:
        return  # the whole service: any database may be in it
    for source_db in _map(target.get("databases")):
        if source_db not in databases:
            c.error(
                to_path + ("databases", source_db),
                f"database `{quoted(source_db)}` is not in the backups of {kind} `{schedule}` "
                f"(it backs up: {', '.join(databases)}); rename one of those",
                at_key=True,
            )


def _check_restore_backup(c: _Checker, from_path: Path, source: dict[str, Any]) -> None:
    """``backup: {before: T}`` needs a timestamp with its zone, and a schedule to choose from; a
    snapshot is one backup and takes no ``backup``."""
    backup = source.get("backup")
    if "snapshot" in source and "backup" in source:
        c.error(
            from_path + ("backup",),
            "a snapshot is one backup: `from.backup` does not apply to `from.snapshot`; remove it",
        )
        return
    if not isinstance(backup, dict) or "before" not in backup:
        return
    where = from_path + ("backup", "before")
    if "service" in source:
        c.error(where, "`backup: {before: T}` chooses among a schedule's backups; use it with `from.schedule`")
        return
    value = backup.get("before")
    if isinstance(value, str):
        try:
            parse_before(value)
        except ValueError as e:
            c.error(where, str(e))


def parse_before(text: str) -> datetime:
    """``backup: {before: T}``: an ISO 8601 timestamp with its zone (``Z`` for UTC); ValueError says why not."""
    value = text.strip()
    example = "write it like 2026-11-20T12:00:00Z"
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})", value):
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}([T ][0-9:.]+)?", value):
            raise ValueError(f"`{quoted(value)}` has no time zone; add one (`Z` for UTC): {example}")
        raise ValueError(f"`{quoted(value)}` is not a timestamp; {example}")
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"`{quoted(value)}` is not a valid date and time; {example}") from None
    return t.astimezone(UTC)


def parse_date(text: str) -> date:
    """``keep_until``: a calendar date ``YYYY-MM-DD``; ValueError says why not."""
    value = text.strip()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError(f"`{quoted(value)}` is not a date; write it as YYYY-MM-DD, e.g. 2027-01-31")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"`{quoted(value)}` is not a date of the calendar; write it as YYYY-MM-DD, e.g. 2027-01-31"
        ) from None


# --------------------------------------------------------------------------------------------
# Snapshots
# --------------------------------------------------------------------------------------------


def _check_snapshot(c: _Checker, name: str) -> None:
    path: Path = ("snapshots", name)
    if not isinstance(c.snapshots[name], dict):
        return
    snapshot: dict[str, Any] = c.snapshots[name]
    service = c.ref(path + ("service",), "service", c.services)
    bucket = c.ref(path + ("bucket",), "bucket", c.buckets)
    if service:
        _check_not_restricted(c, path + ("service",), service, "backed up")
    if "databases" in snapshot and "tables" in snapshot:
        c.error(path + ("tables",), f"snapshot `{name}` lists both `databases` and `tables`; keep one of them")
    _check_include_access(c, path, snapshot)
    keep_until = snapshot.get("keep_until")
    if isinstance(keep_until, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", keep_until):  # else the schema said
        try:
            parse_date(keep_until)
        except ValueError as e:
            c.error(path + ("keep_until",), str(e))
    if service and bucket:
        _check_clouds(c, path, snapshot, service, bucket)


# --------------------------------------------------------------------------------------------
# Notifications
# --------------------------------------------------------------------------------------------


def _check_notify(c: _Checker, index: int, hook: dict[str, Any]) -> None:
    """A webhook URL is http(s). Its value is a secret: no message quotes it."""
    url = _str(hook.get("url"))
    if url is None:
        return
    scheme = url.strip().partition("://")[0].lower() if "://" in url else ""
    if scheme not in ("http", "https") or not url.strip().partition("://")[2].strip("/"):
        c.error(
            ("notify", index, "url"),
            "a webhook `url` must be an http:// or https:// URL (its value is not shown: it is a secret); "
            "give it the webhook's URL, best through `${SOME_VAR}` (e.g. `url: ${SLACK_WEBHOOK_URL}`)",
        )


# --------------------------------------------------------------------------------------------
# Compliance: min_age against what retention can keep, storage classes that cannot be read
# --------------------------------------------------------------------------------------------

#: S3 classes whose objects must be restored before they can be read (docs/compliance.md)
COLD_STORAGE_CLASSES = ("GLACIER", "DEEP_ARCHIVE")
_RULE_PERIODS = {
    "keep_hourly": timedelta(hours=1),
    "keep_daily": timedelta(days=1),
    "keep_weekly": timedelta(weeks=1),
    "keep_monthly": timedelta(days=31),
    "keep_yearly": timedelta(days=366),
}


def schedule_interval(schedule: dict[str, Any]) -> timedelta | None:
    """The time between two slots: `every`, or the mean gap of the cron's next ten ticks."""
    every = _duration(schedule.get("every"))
    if every is not None:
        return every
    cron = _str(schedule.get("cron"))
    if cron is None or cron_problem(cron):
        return None
    it = croniter(cron.strip(), _CRON_PROBE)
    ticks = [it.get_next(datetime) for _ in range(11)]
    return (ticks[-1] - ticks[0]) / 10


def retention_horizon(retention: dict[str, Any], interval: timedelta | None) -> timedelta | None:
    """The longest age the rules can keep a backup to (about), or None when they keep everything."""
    spans: list[timedelta] = []
    step = interval or timedelta(0)
    n = retention.get("keep_last")
    if isinstance(n, int) and n > 0 and interval is not None:
        spans.append(interval * n)
    for rule, period in _RULE_PERIODS.items():
        n = retention.get(rule)
        if isinstance(n, int) and n > 0:
            spans.append(max(period, step) * n)
    within = _duration(retention.get("keep_within"))
    if within is not None and within > timedelta(0):
        spans.append(within + step)
    if not spans:
        return None  # no rule: everything is kept
    return max(spans)


def _check_compliance(c: _Checker, name: str) -> None:
    path: Path = ("schedules", name)
    schedule = _map(c.schedules[name])
    retention = _map(schedule.get("retention"))
    min_age = _duration(retention.get("min_age"))
    if min_age is not None and min_age > timedelta(0):
        horizon = retention_horizon(retention, schedule_interval(schedule))
        if horizon is not None and min_age > horizon:
            c.warn(
                path + ("retention", "min_age"),
                f"schedule `{name}`: min_age={retention['min_age']} is longer than its retention rules keep a backup "
                f"(about {_days(horizon)}); every backup is kept for min_age, which stores more than the rules say",
            )
    bucket = _map(c.buckets.get(_str(schedule.get("bucket")) or ""))
    storage_class = _str(bucket.get("storage_class"))
    if bucket.get("provider") == "s3" and storage_class in COLD_STORAGE_CLASSES:
        validate = _map(schedule.get("validate"))
        if validate.get("after_export", "manifest") != "none" or "checksums_every" in validate or "drill" in validate:
            c.error(
                path + ("validate",) if "validate" in schedule else path + ("bucket",),
                f"bucket `{schedule.get('bucket')}` writes with storage_class {storage_class}, whose objects cannot "
                f"be read until restored, so schedule `{name}` cannot validate its backups; set "
                "`validate: {after_export: none}` without checksums_every or drill, or use another storage_class "
                "(e.g. GLACIER_IR or STANDARD_IA)",
            )


def _days(td: timedelta) -> str:
    days = td.total_seconds() / 86400
    return f"{days:.0f}d" if days >= 1 else f"{td.total_seconds() / 3600:.0f}h"
