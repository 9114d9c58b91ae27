"""``status``: the inventory per schedule, as a JSON-ready document. Pure: renderers format it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .cloud import cloud_status
from .model import BackupState, Config, Observed, iso
from .plan.schedules import chain_of
from .plan.words import ago, describe_schedule, duration
from .slots import latest_slot, previous_slot, slot_name


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
                        "chain": chain_of(inv, b.base),
                        "size": b.total_size,
                        "files": b.num_files,
                        "validation": _validation(b),
                        "strongest_passed": _strongest(b),
                        "error": b.error,
                    }
                    for b in inv.backups
                ],
            }
        )
        schedules.append(entry)
    return {"now": iso(now), "schedules": schedules, "cloud": cloud_status(config, observed.cloud)}


def _validation(b: Any) -> dict[str, Any] | None:
    last = b.last_validation()
    if last is None:
        return None
    return {"level": last.level.value, "result": last.result.value, "at": iso(last.at), "detail": last.detail}


def _strongest(b: Any) -> dict[str, Any] | None:
    v = b.strongest_passed()
    return None if v is None else {"level": v.level.value, "at": iso(v.at)}


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


__all__ = ["status_report", "human_size", "duration"]
