"""Restore a ClickHouse Cloud backup into a new service through the Cloud API.

1. A service of the new name that exists already in the organization is adopted (an earlier
   apply created it and died before recording it, or another apply is doing the same); else
   ``POST /services`` with ``backupId`` and the source's provider, region and tier.
2. Wait until ClickHouse Cloud reports it ``running`` (or ``idle``), polling every
   ``WAIT.interval`` seconds for at most ``WAIT.timeout`` seconds.
3. Record it like any restore, in ``<prefix>/.reconciler/restores/<name>.json`` of the source's
   external bucket, else its first schedule's bucket (none: not recorded; the plan warned).

The new service's password, which the API returns once, is never printed or stored: set one in
the ClickHouse Cloud console (or through the API) to use the service.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import redact
from ..bucket import layout
from ..bucket.records import RestoreDone
from ..cloud.api import CloudApiClient
from ..cloud.settings import record_bucket
from ..errors import ReconcilerError
from ..model import CloudRestoreAction, Outcome, OutcomeStatus
from .context import ApplyContext

READY_STATES = frozenset({"running", "idle"})
FAILED_STATES = frozenset({"failed", "stopped", "stopping", "terminating", "terminated", "softdeleting", "softdeleted"})


@dataclass
class Wait:
    """How the executor waits for the new service (tests make it short)."""

    interval: float = 10.0
    timeout: float = 30 * 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    monotonic: Callable[[], float] = field(default=time.monotonic, repr=False)


WAIT = Wait()


def run_cloud_restore(ctx: ApplyContext, action: CloudRestoreAction) -> Outcome:
    """Everything but the backup id is taken from the config and from the API now, not from the
    plan (a saved plan is a file: it may have been edited); the backup must be a ``done`` backup
    of the declared source service."""
    started = ctx.clock()
    name = action.restore
    declared = ctx.config.restores[name]
    source = declared.source.service
    target = declared.target.new_service
    cloud = ctx.config.services[source].cloud if source else None
    if source is None or target is None or cloud is None or cloud.api is None:
        raise ReconcilerError(f"restore {name} is not a restore of a Cloud service into a new service in the config")
    if not action.backup:
        raise ReconcilerError(f"restore {name}: the plan names no Cloud backup")
    client = ctx.conns.cloud_api(source)
    backups = {str(b.get("id")): b for b in client.list_backups(cloud.api.service_id)}
    if backups.get(action.backup, {}).get("status") != "done":
        raise ReconcilerError(f"restore {name}: {action.backup} is not a done backup of service {source}")
    facts = client.get_service(cloud.api.service_id)
    ns: dict[str, Any] = {
        "name": target.name,
        "provider": facts.get("provider"),
        "region": facts.get("region"),
        "tier": facts.get("tier"),
        "extra": dict(target.extra),
    }

    def failed(detail: str) -> Outcome:
        return Outcome(action.id, OutcomeStatus.FAILED, detail, started, ctx.clock())

    existing = next((s for s in client.list_services() if s.get("name") == ns["name"] and s.get("id")), None)
    if existing is not None:
        service_id = str(existing["id"])
        how = "adopted the existing service"
    else:
        body: dict[str, Any] = dict(ns.get("extra") or {})
        body.update({"name": ns["name"], "provider": ns.get("provider"), "region": ns.get("region")})
        if ns.get("tier"):
            body["tier"] = ns["tier"]
        body["backupId"] = action.backup
        created = client.create_service({k: v for k, v in body.items() if v is not None})
        if created.password:
            redact.register([created.password])
        service_id = str(created.service["id"])
        how = "created the service"

    state = _wait_ready(ctx, action, client, service_id)
    if state not in READY_STATES:
        if state in FAILED_STATES:
            return failed(f"{how} {ns['name']} ({service_id}) but ClickHouse Cloud reports it {state}")
        return failed(
            f"{how} {ns['name']} ({service_id}) but it is still {state or 'not ready'} after "
            f"{WAIT.timeout:.0f}s; the next apply waits for it again (it is adopted, not created twice)"
        )

    finished = ctx.clock()
    bucket_name = record_bucket(ctx.config, source)
    recorded = ""
    if bucket_name:
        bucket = ctx.config.buckets[bucket_name]
        record = RestoreDone(
            restore=name,
            backup=action.backup,
            spec_digest=declared.spec_digest(),
            done_at=finished,
            run_id=ctx.run_id,
            source={
                "service": source,
                "cloud_service_id": cloud.api.service_id,
                "cloud_backup_id": action.backup,
                "backup_name": action.backup_name,
                "backup_started_at": action.backup_started_at,
            },
            target={"new_service": ns["name"], "cloud_service_id": service_id},
        )
        key = layout.restore_key(bucket, name)
        ctx.conns.store(bucket_name).write(key, record.encode())
        recorded = f"; recorded in {bucket.url(key)}"
    detail = (
        f"{how} {ns['name']} ({service_id}) from Cloud backup {action.backup}; it is {state}{recorded}; "
        "its password is not shown: set one in the ClickHouse Cloud console"
    )
    return Outcome(action.id, OutcomeStatus.DONE, detail, started, finished, {"cloud_service_id": service_id})


def _wait_ready(ctx: ApplyContext, action: CloudRestoreAction, client: CloudApiClient, service_id: str) -> str | None:
    deadline = WAIT.monotonic() + WAIT.timeout
    state: str | None = None
    while True:
        state = client.get_service(service_id).get("state")
        state = str(state) if state else None
        ctx.console.action_progress(action, state or "unknown")
        if state in READY_STATES or state in FAILED_STATES or WAIT.monotonic() >= deadline:
            return state
        WAIT.sleep(min(WAIT.interval, max(0.0, deadline - WAIT.monotonic())))
