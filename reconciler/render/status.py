"""``status``: the inventory per schedule, as a JSON-ready document. Pure: renderers format it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..cloud.settings import declared_bucket_of, shown
from ..model import BackupState, CloudState, Config, Observed, iso
from ..model.slots import latest_slot, previous_slot, slot_name
from .snapshot_status import snapshot_status
from .words import ago, describe_schedule, duration, human_size


def status_report(config: Config, observed: Observed, now: datetime) -> dict[str, Any]:
    schedules = []
    for name in sorted(config.schedules):
        s = config.schedules[name]
        bucket = config.buckets[s.bucket]
        inv = observed.schedules.get(name)
        entry: dict[str, Any] = {
            "schedule": name,
            "service": s.service,
            "bucket": s.bucket,
            "cadence": describe_schedule(s),
            "location": None,
            "reachable": inv is not None,
        }
        if inv is None:
            state = observed.buckets.get(s.bucket)
            entry["error"] = state.error if state else "not observed"
            schedules.append(entry)
            continue
        entry["location"] = bucket.url(inv.prefix)
        latest = latest_slot(s, now)
        previous = previous_slot(s, latest)
        complete = [b for b in inv.backups if b.state == BackupState.COMPLETE and b.kind is not None]
        newest = complete[-1] if complete else None
        if newest is None or newest.slot is None:
            health = "no backup"
        elif newest.slot >= latest:
            health = "on schedule"
        elif newest.slot >= previous:
            health = f"due (slot {slot_name(latest)})"
        else:
            health = f"late (missed slot {slot_name(previous)})"
        entry.update(
            {
                "latest_slot": slot_name(latest),
                "newest_complete": newest.name if newest else None,
                "newest_complete_age": ago(newest.slot, now) if newest and newest.slot else None,
                "newest_complete_age_seconds": int((now - newest.slot).total_seconds())
                if newest and newest.slot
                else None,
                "health": health,
                "backup_count": len(inv.backups),
                "complete_count": len(complete),
                "total_size": sum(b.total_size for b in inv.backups),
                "backups": [
                    {
                        "name": b.name,
                        "state": b.state.value,
                        "kind": b.kind,
                        "base": b.base,
                        "chain": inv.chain_of(b.base),
                        "size": b.total_size,
                        "files": b.num_files,
                        "validation": _validation(b),
                        "strongest_passed": _strongest(b),
                        "error": b.error,
                        **_copies(b.name, observed.copies.get(name, {}), s.copies),
                    }
                    for b in inv.backups
                ],
            }
        )
        schedules.append(entry)
    doc = {"now": iso(now), "schedules": schedules, "cloud": cloud_status(config, observed.cloud)}
    if observed.snapshots:
        doc["snapshots"] = snapshot_status(config, observed)
    return doc


def _copies(name: str, copies: Mapping[str, Any], declared: Any) -> dict[str, Any]:
    """Per copy bucket the state of this backup's copy there (``ok``: complete and its last
    validation passed), and how many copies are valid; nothing for a schedule without copies."""
    if not declared:
        return {}
    out: dict[str, str] = {}
    for c in declared:
        inv = copies.get(c.bucket)
        found = inv.find(name) if inv is not None else None
        if inv is None:
            out[c.bucket] = "unknown"
        elif found is None:
            out[c.bucket] = "missing"
        elif found.state == BackupState.COMPLETE and found.broken:
            out[c.bucket] = "broken"
        elif found.state == BackupState.COMPLETE and found.validated:
            out[c.bucket] = "ok"
        else:
            out[c.bucket] = found.state.value
    return {"copies": out, "valid_copies": sum(1 for v in out.values() if v == "ok")}


def _validation(b: Any) -> dict[str, Any] | None:
    last = b.last_validation()
    if last is None:
        return None
    return {"level": last.level.value, "result": last.result.value, "at": iso(last.at), "detail": last.detail}


def _strongest(b: Any) -> dict[str, Any] | None:
    v = b.strongest_passed()
    return None if v is None else {"level": v.level.value, "at": iso(v.at)}


__all__ = ["status_report", "human_size", "duration"]


def cloud_status(config: Config, cloud: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``cloud`` part of ``status``: per Cloud service, its settings and backups."""
    out: list[dict[str, Any]] = []
    for name in sorted(cloud):
        st = cloud[name]
        if not isinstance(st, CloudState):
            continue
        entry: dict[str, Any] = {"service": name, "service_id": st.service_id, "reachable": st.reachable}
        if not st.reachable:
            entry["error"] = st.error
            out.append(entry)
            continue
        entry["facts"] = st.facts.to_json() if st.facts else None
        entry["backup_configuration"] = st.settings.to_api() if st.settings else None
        entry["backup_bucket"] = shown(st.bucket.to_api()) if st.bucket else None
        entry["backup_bucket_declared"] = declared_bucket_of(config, st.bucket)
        entry["backups"] = [
            {
                "id": b.id,
                "name": b.name,
                "status": b.status,
                "type": b.type,
                "started_at": iso(b.started_at) if b.started_at else None,
                "finished_at": iso(b.finished_at) if b.finished_at else None,
                "size": b.size_bytes,
                "duration_seconds": b.duration_seconds,
                "location": b.bucket.location() if b.bucket else None,
                "bucket": declared_bucket_of(config, b.bucket),
                "in_declared_bucket": declared_bucket_of(config, b.bucket) is not None,
            }
            for b in st.backups
        ]
        out.append(entry)
    return out


# --------------------------------------------------------------------------------------------
