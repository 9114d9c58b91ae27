"""Restores of a ClickHouse Cloud backup into a new service (``from: {service: ...}``). Pure.

The Cloud API creates the new service from the backup (``backupId``) in the source's region
and tier only, so those are taken from the source service; a ``to.new_service.region`` that
differs is refused. ``backup: latest`` is resolved now, to the newest ``done`` Cloud backup;
otherwise ``backup`` names a backup by id or by ``backupName``.

Done-ness: the restore record ``<prefix>/.reconciler/restores/<name>.json`` in the source
service's external bucket (else its first schedule's bucket), as for SQL restores. With no such
bucket the restore cannot be recorded: a service of the new name that exists in the
organization then counts as done (and a warning says the restore is not recorded).
"""

from __future__ import annotations

from ..cloud.settings import record_bucket
from ..model import Action, CloudBackup, CloudRestoreAction, CloudState, Config, Observed, Restore, iso
from .ids import restore_id


def decide_cloud_restore(restore: Restore, config: Config, observed: Observed) -> tuple[Action | None, str | None]:
    """(action, warning)."""
    name = restore.name
    source = restore.source.service
    target = restore.target.new_service
    if source is None or target is None:
        return None, f"restore {name}: a ClickHouse Cloud backup can only be restored into a new service"
    st = observed.cloud.get(source)
    if not isinstance(st, CloudState):
        return None, f"restore {name}: service {source} has no cloud.api, so its Cloud backups cannot be read"
    if not st.reachable:
        return None, f"restore {name}: the ClickHouse Cloud API of service {source} cannot be reached: {st.error}"
    if name in st.restore_errors:
        return None, f"restore {name}: its record cannot be read ({st.restore_errors[name]}); nothing is planned"

    digest = restore.spec_digest()
    record = st.restores.get(name)
    if record is not None and record.spec_digest == digest:
        return None, None
    bucket = record_bucket(config, source)
    existing = st.org_services.get(target.name)
    if bucket is None and existing:
        return None, (
            f"restore {name}: service {target.name} exists ({existing}); as service {source} has no external "
            "bucket and no schedule, the restore is not recorded, and the existing service counts as done"
        )

    facts = st.facts
    if facts is None:
        return None, f"restore {name}: ClickHouse Cloud reported nothing about service {source}"
    if target.region and facts.region and target.region.lower() != facts.region.lower():
        return None, (
            f"restore {name}: to.new_service.region is {target.region} but the backup's service {source} is in "
            f"{facts.region}; ClickHouse Cloud restores a backup only into the same region and tier, so nothing "
            "is planned: remove to.new_service.region or set it to " + facts.region
        )

    backup = _choose(st, restore.source.backup)
    if backup is None:
        what = "complete (done) backup" if restore.source.backup == "latest" else f"backup {restore.source.backup}"
        return None, f"restore {name}: ClickHouse Cloud has no {what} of service {source} to restore"

    new_service = {
        "name": target.name,
        "provider": facts.provider,
        "region": facts.region,
        "tier": facts.tier,
        "extra": dict(target.extra),
    }
    when = f" of {iso(backup.started_at)}" if backup.started_at else ""
    why = (
        f"declared restore not done yet: Cloud backup {backup.id}{when} of service {source} into new service "
        f"{target.name} ({facts.region}{', ' + facts.tier if facts.tier else ''})"
    )
    if record is not None:
        why = f"declaration changed since it was done on {record.done_at:%Y-%m-%d %H:%M}Z from {record.backup}: " + why
    if existing:
        why += f"; service {target.name} exists already ({existing}): it is adopted, not created again"
    warning = None
    if bucket is None:
        warning = (
            f"restore {name}: service {source} has no external bucket and no schedule, so this restore will not be "
            "recorded; the existing service of that name is what marks it done"
        )
    action = CloudRestoreAction(
        id=restore_id(name),
        service=source,
        backup=backup.id,
        bucket=bucket,
        restore=name,
        from_service=source,
        source_service_id=st.service_id,
        backup_name=backup.name,
        backup_started_at=iso(backup.started_at) if backup.started_at else None,
        new_service=new_service,
        existing_service_id=existing,
        record_bucket=bucket,
        spec_digest=digest,
        reason=why,
    )
    return action, warning


def _choose(st: CloudState, wanted: str) -> CloudBackup | None:
    done = st.done_backups()
    if wanted == "latest":
        return done[0] if done else None
    return next((b for b in done if wanted in (b.id, b.name)), None)
