"""The per-schedule index: the schedule's sidecars in one object, so that a plan costs one
listing and one small read per schedule instead of a read per backup (docs/bucket-layout.md).

    <prefix>/.reconciler/index/<service>/<schedule>.json

The bucket stays the truth. A plan lists the schedule's prefix (which shows every folder, whether
ClickHouse's manifest is there, the sizes, and each sidecar's ETag) and takes a sidecar's content
from the index only when the index recorded that very ETag; any other folder's sidecar is read
from the bucket. So a sidecar changed behind the reconciler's back, a tampered or stale index,
or one that is missing, costs reads, never a wrong plan. Each apply writes the index afresh for
the schedules it touched (and for those whose index was missing or stale).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

INDEX_FORMAT_VERSION = 1


@dataclass(slots=True)
class IndexEntry:
    sidecar_etag: str
    sidecar: dict[str, Any] | None  # the sidecar's JSON; None when it did not parse
    sidecar_problem: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"sidecar_etag": self.sidecar_etag, "sidecar": self.sidecar}
        if self.sidecar_problem:
            out["sidecar_problem"] = self.sidecar_problem
        return out

    @classmethod
    def from_json(cls, d: Any) -> IndexEntry:
        if not isinstance(d, dict):
            raise ValueError("index entry is not an object")
        etag, sidecar, problem = d.get("sidecar_etag"), d.get("sidecar"), d.get("sidecar_problem")
        if not isinstance(etag, str):
            raise ValueError("index entry has no sidecar_etag")
        if sidecar is not None and not isinstance(sidecar, dict):
            raise ValueError("index entry sidecar is not an object")
        if problem is not None and not isinstance(problem, str):
            raise ValueError("index entry sidecar_problem is not a string")
        return cls(etag, sidecar, problem)


@dataclass
class ScheduleIndex:
    service: str
    schedule: str
    entries: dict[str, IndexEntry] = field(default_factory=dict)

    def encode(self) -> bytes:
        doc = {
            "format_version": INDEX_FORMAT_VERSION,
            "service": self.service,
            "schedule": self.schedule,
            "backups": {name: e.to_json() for name, e in sorted(self.entries.items())},
        }
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes, service: str, schedule: str) -> ScheduleIndex:
        """``ValueError`` for anything malformed or not this schedule's (a tampered index is
        ignored and rebuilt, never trusted)."""
        try:
            doc = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"index is not JSON: {e}") from None
        if not isinstance(doc, dict) or doc.get("format_version") != INDEX_FORMAT_VERSION:
            raise ValueError("index has an unknown format_version")
        if (doc.get("service"), doc.get("schedule")) != (service, schedule):
            raise ValueError("index names another schedule")
        backups = doc.get("backups")
        if not isinstance(backups, dict):
            raise ValueError("index backups is not an object")
        return cls(service, schedule, {str(k): IndexEntry.from_json(v) for k, v in backups.items()})
