"""Turn a checked document into ``model.Config``, and compute its digest.

Runs only on a document that passed the schema and the rules, so it may index without
guarding; defaults that the model does not already carry are applied here.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from reconciler.config.durations import parse_duration
from reconciler.config.rules import normalize_prefix, parse_before, parse_date
from reconciler.config.yaml_loader import Document
from reconciler.model import (
    Bucket,
    CloudApi,
    CloudFacts,
    CloudProvider,
    Config,
    CopyTarget,
    Credentials,
    Drill,
    Immutability,
    LockMode,
    ManagedBackups,
    NewService,
    Notify,
    Provider,
    Restore,
    RestoreSource,
    RestoreTarget,
    Retention,
    Schedule,
    Scope,
    Service,
    Snapshot,
    ValidatePolicy,
    ValidationLevel,
)

#: docs/config.md: failed/abandoned attempts are pruned after this unless the schedule says otherwise
DEFAULT_CLEANUP_AFTER = timedelta(hours=24)

#: what stands for a secret in the digested form of the config
REDACTED = "<redacted>"

_DSN_PASSWORD = re.compile(r"(://[^:@/?#]*:)([^@/?#]+)(@)")
_DSN_QUERY_PASSWORD = re.compile(r"([?&]password=)([^&#]*)", re.IGNORECASE)


def build_config(doc: Document, warnings: Sequence[str] = ()) -> Config:
    data: dict[str, Any] = doc.data
    return Config(
        path=doc.file,
        services={n: _service(n, v) for n, v in (data.get("services") or {}).items()},
        buckets={n: _bucket(n, v) for n, v in (data.get("buckets") or {}).items()},
        schedules={n: _schedule(n, v) for n, v in (data.get("schedules") or {}).items()},
        restores={n: _restore(n, v) for n, v in (data.get("restores") or {}).items()},
        digest=config_digest(data),
        warnings=tuple(warnings),
        snapshots={n: _snapshot(n, v) for n, v in (data.get("snapshots") or {}).items()},
        notify=tuple(_notify(v) for v in (data.get("notify") or ())),
    )


def _notify(spec: dict[str, Any]) -> Notify:
    events = spec.get("events")
    return Notify(url=spec["url"].strip(), events=tuple(events) if events else Notify.events)


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


def _service(name: str, spec: dict[str, Any]) -> Service:
    cloud = spec.get("cloud")
    return Service(name=name, dsn=spec["dsn"], cloud=_cloud(cloud) if cloud is not None else None)


def _cloud(spec: dict[str, Any]) -> CloudFacts:
    api = spec.get("api")
    managed = spec.get("managed_backups")
    return CloudFacts(
        provider=CloudProvider(spec["provider"]),
        region=spec["region"],
        tde=bool(spec.get("tde", False)),
        compliance=spec.get("compliance"),
        api=CloudApi(**api) if api is not None else None,
        managed_backups=_managed(managed) if managed is not None else None,
    )


def _managed(spec: dict[str, Any]) -> ManagedBackups:
    return ManagedBackups(
        period_hours=_int(spec.get("period_hours")),
        retention_hours=_int(spec.get("retention_hours")),
        start_time=spec.get("start_time"),
        external_bucket=spec.get("external_bucket"),
    )


def _bucket(name: str, spec: dict[str, Any]) -> Bucket:
    # `gcs_json_endpoint` is accepted by the schema but model.Bucket has no field for it yet.
    return Bucket(
        name=name,
        provider=Provider(spec["provider"]),
        bucket=spec["bucket"],
        prefix=normalize_prefix(spec.get("prefix") or "")[0],
        region=spec.get("region"),
        endpoint=spec.get("endpoint"),
        gcs_json_endpoint=spec.get("gcs_json_endpoint"),
        credentials=Credentials(**(spec.get("credentials") or {})),
        storage_class=spec.get("storage_class"),
        immutability=_immutability(spec["immutability"]) if spec.get("immutability") is not None else None,
        price_per_gib_month=float(spec["price_per_gib_month"]) if spec.get("price_per_gib_month") is not None else None,
    )


def _immutability(spec: dict[str, Any]) -> Immutability:
    return Immutability(
        mode=LockMode(spec["mode"]), days=int(spec["days"]), recover_deleted=bool(spec.get("recover_deleted", False))
    )


def _duration(value: str | None) -> timedelta | None:
    return parse_duration(value) if value is not None else None


def _int(value: Any) -> int | None:
    """JSON Schema's integer admits 7.0; the model wants 7."""
    return int(value) if value is not None else None


def _retention(retention: dict[str, Any]) -> Retention:
    return Retention(
        keep_last=_int(retention.get("keep_last")),
        keep_hourly=_int(retention.get("keep_hourly")),
        keep_daily=_int(retention.get("keep_daily")),
        keep_weekly=_int(retention.get("keep_weekly")),
        keep_monthly=_int(retention.get("keep_monthly")),
        keep_yearly=_int(retention.get("keep_yearly")),
        keep_within=_duration(retention.get("keep_within")),
        min_valid=int(retention.get("min_valid", 1)),
        min_age=_duration(retention.get("min_age")),
    )


def _copy(spec: dict[str, Any]) -> CopyTarget:
    retention = spec.get("retention")
    return CopyTarget(
        bucket=spec["bucket"],
        validate=ValidationLevel(spec.get("validate", "manifest")),
        retention=_retention(retention) if retention is not None else None,
    )


def _schedule(name: str, spec: dict[str, Any]) -> Schedule:
    retention = spec.get("retention") or {}
    validate = spec.get("validate") or {}
    drill = validate.get("drill")
    after_export = validate.get("after_export", "manifest")
    cron, cleanup = spec.get("cron"), spec.get("cleanup_after")
    return Schedule(
        name=name,
        service=spec["service"],
        bucket=spec["bucket"],
        scope=Scope(
            tuple(spec.get("databases") or ()),
            tuple(spec.get("tables") or ()),
            access=bool(spec.get("include_access", False)),
        ),
        cron=cron.strip() if cron is not None else None,
        every=_duration(spec.get("every")),
        full_every=_int((spec.get("incremental") or {}).get("full_every")),
        allow_cross_cloud=bool(spec.get("allow_cross_cloud", False)),
        prune_unmanaged=bool(spec.get("prune_unmanaged", False)),
        adopt_unmanaged=bool(spec.get("adopt_unmanaged", False)),
        cleanup_after=parse_duration(cleanup) if cleanup is not None else DEFAULT_CLEANUP_AFTER,
        retention=_retention(retention),
        validate=ValidatePolicy(
            after_export=None if after_export == "none" else ValidationLevel(after_export),
            checksums_every=_duration(validate.get("checksums_every")),
            drill=Drill(drill["service"], parse_duration(drill["every"])) if drill is not None else None,
        ),
        copies=tuple(_copy(c) for c in spec.get("copies") or ()),
    )


def _restore(name: str, spec: dict[str, Any]) -> Restore:
    source, target = spec["from"], spec["to"]
    new_service = target.get("new_service")
    backup = source.get("backup", "latest")
    before = parse_before(backup["before"]) if isinstance(backup, dict) else None
    return Restore(
        name=name,
        source=RestoreSource(
            schedule=source.get("schedule"),
            service=source.get("service"),
            backup="latest" if isinstance(backup, dict) else backup,
            snapshot=source.get("snapshot"),
            before=before,
            bucket=source.get("bucket"),
        ),
        target=RestoreTarget(
            service=target.get("service"),
            databases=dict(target.get("databases") or {}),
            new_service=_new_service(new_service) if new_service is not None else None,
        ),
        allow_non_empty_tables=bool(spec.get("allow_non_empty_tables", False)),
    )


def _snapshot(name: str, spec: dict[str, Any]) -> Snapshot:
    keep_until = spec.get("keep_until")
    return Snapshot(
        name=name,
        service=spec["service"],
        bucket=spec["bucket"],
        scope=Scope(
            tuple(spec.get("databases") or ()),
            tuple(spec.get("tables") or ()),
            access=bool(spec.get("include_access", False)),
        ),
        keep_until=parse_date(keep_until) if keep_until is not None else None,
    )


def _new_service(spec: dict[str, Any]) -> NewService:
    extra = {k: v for k, v in spec.items() if k not in ("name", "region")}
    return NewService(name=spec["name"], region=spec.get("region"), extra=extra)


# --------------------------------------------------------------------------------------------
# Digest
# --------------------------------------------------------------------------------------------


def redact_dsn(dsn: str) -> str:
    """The DSN with its password (in the user part or a ``password=`` parameter) replaced."""
    dsn = _DSN_PASSWORD.sub(lambda m: m.group(1) + REDACTED + m.group(3), dsn)
    return _DSN_QUERY_PASSWORD.sub(lambda m: m.group(1) + REDACTED, dsn)


def redacted(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of the parsed config with every secret replaced by ``REDACTED``."""
    out: dict[str, Any] = json.loads(json.dumps(data))
    for service in (out.get("services") or {}).values():
        if isinstance(service.get("dsn"), str):
            service["dsn"] = redact_dsn(service["dsn"])
        api = (service.get("cloud") or {}).get("api") or {}
        for key in ("key_id", "key_secret"):
            if key in api:
                api[key] = REDACTED
    for hook in out.get("notify") or ():
        if isinstance(hook, dict) and "url" in hook:
            hook["url"] = REDACTED
    for bucket in (out.get("buckets") or {}).values():
        credentials = bucket.get("credentials") or {}
        for key in credentials:
            credentials[key] = REDACTED
    return out


def config_digest(data: dict[str, Any]) -> str:
    """``sha256:<hex>`` of the canonical JSON of the config, secrets replaced.

    A saved plan records it: the digest changes when the config's meaning changes (so a
    stale plan is refused) but is computed without any secret, so it leaks none and does
    not change when a credential is rotated.
    """
    text = json.dumps(redacted(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
