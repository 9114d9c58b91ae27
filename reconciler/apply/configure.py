"""``configure``: PATCH/POST a Cloud service's backup settings through the Cloud API (the
planner never plans a DELETE of the backup bucket: see plan/configure.py).

The request body is built again here, from the config: the plan carries no secret (its bucket
secrets read ``(set)``), and a saved plan is refused as stale when the config changed since it
was made, so the non-secret fields are the ones that were reviewed.
"""

from __future__ import annotations

from ..cloud.settings import BACKUP_BUCKET, BACKUP_CONFIGURATION, bucket_body, desired_settings, shown
from ..errors import ReconcilerError
from ..model import ConfigureAction, Outcome, OutcomeStatus
from .context import ApplyContext


def run_configure(ctx: ApplyContext, action: ConfigureAction) -> Outcome:
    started = ctx.clock()
    assert action.service is not None
    service = ctx.config.services[action.service]
    cloud = service.cloud
    if cloud is None or cloud.api is None:
        raise ReconcilerError(f"service {action.service} has no cloud.api in the config")
    setting = action.setting
    method = action.method
    client = ctx.conns.cloud_api(action.service)
    sid = cloud.api.service_id
    changed = ", ".join(sorted(action.changes)) or "all fields"

    if setting == BACKUP_CONFIGURATION:
        if cloud.managed_backups is None:
            raise ReconcilerError(f"service {action.service} no longer declares managed_backups")
        body = desired_settings(cloud.managed_backups)
        client.update_backup_configuration(sid, body)
        detail = f"PATCH {BACKUP_CONFIGURATION}: {changed}"
    elif setting == BACKUP_BUCKET and method in ("POST", "PATCH"):
        name = cloud.managed_backups.external_bucket if cloud.managed_backups else None
        if not name or name != action.bucket:
            raise ReconcilerError(
                f"service {action.service}: the config's external_bucket is {name or 'not set'}, the plan's "
                f"{action.bucket}; run plan again"
            )
        body, missing = bucket_body(ctx.config.buckets[name], action.service, with_secrets=True)
        if missing:
            raise ReconcilerError(f"bucket {name} needs " + "; ".join(missing))
        if shown(body) != (dict(action.after) if action.after is not None else None):
            raise ReconcilerError(f"bucket {name} differs from what the plan shows; run plan again")
        if method == "POST":
            client.create_backup_bucket(sid, body)
        else:
            client.update_backup_bucket(sid, body)
        detail = f"{method} {BACKUP_BUCKET} (bucket {name}): {changed}"
    else:
        raise ReconcilerError(f"unknown configure action: setting {setting!r}, method {method!r}")
    return Outcome(action.id, OutcomeStatus.DONE, detail, started, ctx.clock(), {"setting": setting, "method": method})
