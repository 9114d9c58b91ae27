"""Observe ClickHouse Cloud services through the Cloud API (services with ``cloud.api``).

Reads only. A service whose API cannot be read gets a ``CloudState`` with ``error`` set (the
plan reports it as ``unreachable_service``); nothing is raised.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..bucket import layout
from ..bucket.records import read_restore_record
from ..cloud.rules import ServiceFacts
from ..cloud.settings import BackupBucketInfo, comparable, record_bucket
from ..connections import Connections
from ..errors import ReconcilerError
from ..model import BackupSettings, CloudBackup, CloudState, Config, RestoreRecord
from ..redact import redact

PARALLELISM = 4


def observe_cloud(config: Config, conns: Connections, services: Iterable[str]) -> dict[str, Any]:
    """service name -> CloudState, for the selected services that declare ``cloud.api``."""
    names = sorted(n for n in services if n in config.services and _has_api(config, n))
    if not names:
        return {}
    with ThreadPoolExecutor(min(PARALLELISM, len(names)), thread_name_prefix="cloud-api") as pool:
        states = list(pool.map(lambda n: _observe_one(config, conns, n), names))
    return {s.service: s for s in states}


def _has_api(config: Config, name: str) -> bool:
    cloud = config.services[name].cloud
    return cloud is not None and cloud.api is not None


def _observe_one(config: Config, conns: Connections, name: str) -> CloudState:
    cloud = config.services[name].cloud
    assert cloud is not None and cloud.api is not None
    sid = cloud.api.service_id
    restores = sorted(n for n, r in config.restores.items() if r.source.service == name and r.target.new_service)
    try:
        client = conns.cloud_api(name)
        facts = ServiceFacts.from_api(client.get_service(sid))
        settings = BackupSettings.from_api(client.get_backup_configuration(sid))
        raw_bucket = client.get_backup_bucket(sid)
        backups = tuple(CloudBackup.from_api(b) for b in client.list_backups(sid))
        org: dict[str, str] = {}
        if restores:
            org = {str(s["name"]): str(s.get("id") or "") for s in client.list_services() if s.get("name")}
    except ReconcilerError as e:
        return CloudState(name, sid, error=redact(e.message), restore_source=bool(restores))
    records, errors = _restore_records(config, conns, name, restores)
    return CloudState(
        service=name,
        service_id=sid,
        facts=facts,
        settings=settings,
        bucket=BackupBucketInfo.from_api(raw_bucket) if raw_bucket else None,
        backups=backups,
        restore_source=bool(restores),
        org_services=org,
        restores=records,
        restore_errors=errors,
    )


def _restore_records(
    config: Config, conns: Connections, service: str, restores: list[str]
) -> tuple[dict[str, RestoreRecord], dict[str, str]]:
    records: dict[str, RestoreRecord] = {}
    errors: dict[str, str] = {}
    bucket = record_bucket(config, service)
    if bucket is None:
        return records, errors
    for name in restores:
        try:
            rec = read_restore_record(conns.store(bucket), layout.restore_key(config.buckets[bucket], name))
        except ReconcilerError as e:
            errors[name] = f"bucket {bucket}: {redact(e.message)}"
            continue
        if rec is not None:
            records[name] = rec
    return records, errors


def cloud_digest(cloud: Mapping[str, Any]) -> Any:
    """What of the Cloud state a saved plan depends on (JSON-serialisable). The service's
    running state is left out (idle scaling changes it all day); its backups count only for a
    service that Cloud restores are made from."""
    out: dict[str, Any] = {}
    for name in sorted(cloud):
        st = cloud[name]
        if not isinstance(st, CloudState):
            continue
        doc: dict[str, Any] = {"reachable": st.reachable}
        if st.reachable:
            f = st.facts
            doc["facts"] = [f.id, f.provider, f.region, f.tde, f.compliance, f.tier] if f else None
            doc["settings"] = st.settings.to_api() if st.settings else None
            doc["bucket"] = comparable(st.bucket.to_api()) if st.bucket else None
            if st.restore_source:
                doc["backups"] = [[b.id, b.status] for b in st.backups]
                doc["org_services"] = sorted(st.org_services.items())
                doc["restores"] = {n: [r.backup, r.spec_digest] for n, r in sorted(st.restores.items())}
                doc["restore_errors"] = sorted(st.restore_errors)
        out[name] = doc
    return out
