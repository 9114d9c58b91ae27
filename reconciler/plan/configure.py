"""``configure`` actions and ``config_drift``: a Cloud service's settings against the desired
``managed_backups``. Pure.

- ``configure/<service>/backupConfiguration``: PATCH of the declared fields that differ (a
  field that is not declared is not managed).
- ``configure/<service>/backupBucket``: POST when the service has no external bucket, PATCH
  when the non-secret fields differ from the declared bucket. The secrets (GCP HMAC secret,
  Azure connection string) are never returned by the API, so a changed secret cannot be seen;
  they are sent, from the config at apply time, with every POST/PATCH.
- No DELETE is ever planned: a bucket set on the service while the config declares none is
  ``config_drift`` only. Removing it stops ClickHouse Cloud from exporting into the customer's
  bucket, which the reconciler will not infer from a missing key.

A declared ``cloud:`` fact that ClickHouse Cloud contradicts is an error (the whole plan stops):
every rule of the config was checked against the declared facts.
"""

from __future__ import annotations

from typing import Any

from deepdiff import DeepDiff
from deepdiff.helper import NotPresent

from ..cloud.rules import check_facts, external_bucket_problem
from ..cloud.settings import (
    BACKUP_BUCKET,
    BACKUP_CONFIGURATION,
    HIDDEN,
    SENSITIVE_FIELDS,
    bucket_body,
    comparable,
    desired_settings,
    shown,
)
from ..errors import ReconcilerError
from ..model import Action, CloudState, Config, ConfigureAction, Drift, DriftType, Observed
from ..model.targets import Selection
from .ids import configure_id


def decide_configure(config: Config, observed: Observed, sel: Selection) -> tuple[list[Action], list[Drift], list[str]]:
    """(actions, drift, warnings)."""
    actions: list[Action] = []
    drift: list[Drift] = []
    warnings: list[str] = []
    for name in sorted(sel.services):
        service = config.services[name]
        if not (service.cloud and service.cloud.api):
            continue
        st = observed.cloud.get(name)
        if not isinstance(st, CloudState):
            continue
        if not st.reachable:
            drift.append(Drift(DriftType.UNREACHABLE_SERVICE, f"ClickHouse Cloud API: {st.error}", service=name))
            continue
        if st.facts is not None:
            check_facts(config, name, st.facts)
        mb = service.cloud.managed_backups
        if mb is None:
            continue
        _settings(name, mb, st, actions, drift)
        problem = external_bucket_problem(config, name, st.facts)
        if problem:
            raise ReconcilerError(problem, where=config.path)
        _bucket(config, name, mb.external_bucket, st, actions, drift, warnings)
    return actions, drift, warnings


def _settings(name: str, mb: Any, st: CloudState, actions: list[Action], drift: list[Drift]) -> None:
    want = desired_settings(mb)
    if not want:
        return
    have_all = st.settings.to_api() if st.settings else {}
    have = {k: have_all.get(k) for k in want}
    changes = field_changes(have, want)
    if not changes:
        return
    for key, ch in changes.items():
        drift.append(
            Drift(
                DriftType.CONFIG_DRIFT,
                f"{BACKUP_CONFIGURATION}.{key} is {_v(ch['before'])} in ClickHouse Cloud; "
                f"managed_backups wants {_v(ch['after'])}",
                service=name,
            )
        )
    actions.append(
        ConfigureAction(
            id=configure_id(name, BACKUP_CONFIGURATION),
            service=name,
            reason=f"the backup configuration differs from managed_backups: {_listed(changes)}",
            setting=BACKUP_CONFIGURATION,
            method="PATCH",
            before=have,
            after=want,
            changes=changes,
        )
    )


def _bucket(
    config: Config,
    name: str,
    declared: str | None,
    st: CloudState,
    actions: list[Action],
    drift: list[Drift],
    warnings: list[str],
) -> None:
    have_body = st.bucket.to_api() if st.bucket else None
    if not declared:
        if st.bucket is not None:
            drift.append(
                Drift(
                    DriftType.CONFIG_DRIFT,
                    f"{BACKUP_BUCKET} is set ({st.bucket.provider} {st.bucket.location()}) but managed_backups "
                    "declares no external_bucket; the reconciler never removes it on its own: declare it as "
                    "managed_backups.external_bucket, or remove it in the ClickHouse Cloud console",
                    service=name,
                )
            )
        return
    bucket = config.buckets[declared]
    region = st.facts.region if st.facts else None
    if bucket.region and region and bucket.region.lower() != region.lower():
        warnings.append(
            f"service {name}: ClickHouse Cloud's exports to {bucket.region} from {region} incur data transfer "
            f"charges (external_bucket {declared})"
        )
    body, missing = bucket_body(bucket, name, with_secrets=False)
    want = comparable(body)
    have = comparable(have_body) if have_body else None
    if have == want:
        return
    if missing:
        warnings.append(
            f"service {name}: bucket {declared} cannot be set as its external backup bucket: it needs "
            + "; ".join(missing)
        )
        drift.append(
            Drift(
                DriftType.CONFIG_DRIFT,
                f"{BACKUP_BUCKET} is not bucket {declared}, and it cannot be configured "
                f"(bucket {declared} needs {'; '.join(missing)})",
                service=name,
                bucket=declared,
            )
        )
        return
    changes = field_changes(have or {}, want)
    if have is None:
        method = "POST"
        reason = f"the service has no external backup bucket; set bucket {declared} ({_where(body)})"
        drift.append(
            Drift(
                DriftType.CONFIG_DRIFT,
                f"{BACKUP_BUCKET} is not set; managed_backups wants bucket {declared}",
                service=name,
                bucket=declared,
            )
        )
    else:
        method = "PATCH"
        reason = f"the external backup bucket differs from bucket {declared}: {_listed(changes)}"
        for key, ch in changes.items():
            drift.append(
                Drift(
                    DriftType.CONFIG_DRIFT,
                    f"{BACKUP_BUCKET}.{key} is {_v(ch['before'])} in ClickHouse Cloud; bucket {declared} "
                    f"wants {_v(ch['after'])}",
                    service=name,
                    bucket=declared,
                )
            )
    actions.append(
        ConfigureAction(
            id=configure_id(name, BACKUP_BUCKET),
            service=name,
            bucket=declared,
            reason=reason,
            setting=BACKUP_BUCKET,
            method=method,
            before=shown(have_body),
            after=shown(body),
            changes=changes,
        )
    )


def field_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per top-level field that differs: ``{"before": x, "after": y}`` (deepdiff); a
    sensitive field shows ``[HIDDEN]`` on both sides."""
    diff = DeepDiff(before, after, ignore_numeric_type_changes=True, view="tree")
    out: dict[str, dict[str, Any]] = {}
    for levels in diff.values():
        for level in levels:
            path = level.path(output_format="list")
            if not path:
                continue
            key = str(path[0])
            old = None if isinstance(level.t1, NotPresent) else before.get(key)
            new = None if isinstance(level.t2, NotPresent) else after.get(key)
            if old == new:
                continue
            if key in SENSITIVE_FIELDS:
                old = HIDDEN if old is not None else None
                new = HIDDEN if new is not None else None
            out[key] = {"before": old, "after": new}
    return dict(sorted(out.items()))


def _v(value: Any) -> str:
    return "not set" if value is None else str(value)


def _listed(changes: dict[str, dict[str, Any]]) -> str:
    parts = []
    for key, ch in changes.items():
        if key in SENSITIVE_FIELDS:
            parts.append(f"{key} differs (value hidden)")
        else:
            parts.append(f"{key} {_v(ch['before'])} → {_v(ch['after'])}")
    return ", ".join(parts)


def _where(body: dict[str, Any]) -> str:
    return f"{body['bucketProvider']} {body.get('bucketPath') or body.get('containerName')}"
