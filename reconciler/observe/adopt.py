"""Observe what adoption needs (``adopt_unmanaged``): the manifest of each unmanaged folder of an
adopting schedule (one read each), and for a whole-service schedule the service's databases."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..bucket import layout
from ..clickhouse.manifest_facts import manifest_facts
from ..clickhouse.sql import SYSTEM_DATABASES
from ..connections import Connections
from ..errors import ReconcilerError
from ..model import BackupState, Config, ScheduleInventory, ServiceState
from ..model.adoption import ManifestFacts
from ..redact import redact

__all__ = ["observe_adoptable"]


def observe_adoptable(
    config: Config,
    conns: Connections,
    schedules: Iterable[str],
    inventories: Mapping[str, ScheduleInventory],
    services: Mapping[str, ServiceState],
) -> tuple[dict[str, dict[str, ManifestFacts]], dict[str, tuple[str, ...]]]:
    """(per schedule: facts per unmanaged folder with a manifest, per service: its databases)."""
    facts: dict[str, dict[str, ManifestFacts]] = {}
    databases: dict[str, tuple[str, ...]] = {}
    for name in sorted(schedules):
        s = config.schedules[name]
        inv = inventories.get(name)
        if not s.adopt_unmanaged or inv is None:
            continue
        folders = [b for b in inv.backups if b.state == BackupState.UNMANAGED and not b.foreign and b.has_manifest]
        if not folders:
            continue
        bucket = config.buckets[s.bucket]
        store = conns.store(s.bucket)
        path = layout.schedule_prefix(bucket, s.service, name)
        mine: dict[str, ManifestFacts] = {}
        for b in folders:
            try:
                got = store.read(path + b.name + "/" + layout.MANIFEST)
            except ReconcilerError as e:
                mine[b.name] = ManifestFacts(problem=f"its manifest cannot be read ({redact(e.message)})")
                continue
            if got is not None:
                mine[b.name] = manifest_facts(got[0], path)
        facts[name] = mine
        state = services.get(s.service)
        if s.scope.whole_service and s.service not in databases and state is not None and state.reachable:
            try:
                dbs = conns.clickhouse(s.service).databases()
            except ReconcilerError:
                continue
            databases[s.service] = tuple(sorted(d for d in dbs if d not in SYSTEM_DATABASES))
    return facts, databases
