"""The per-schedule index: per backup folder the facts a plan needs, in one object, so that a
plan costs one delimiter listing of the folder names and one small read per schedule, whatever
the number of backups and of files in them (docs/bucket-layout.md, "The index").

    <prefix>/.reconciler/index/<service>/<schedule>.json

Format 2, per folder: ``state`` (the sidecar's state, or ``unmanaged`` when the folder has no
sidecar this reconciler reads), ``manifest`` (ClickHouse's ``.backup`` was there), the sidecar's
ETag and its content, the ``files`` and ``bytes`` ClickHouse reported storing there, and on a
bucket with Object Lock ``locked_until``: when the lock of its manifest and sidecar ends.

The bucket stays the truth. A fast refresh takes a folder from the index only when the index
knows it as **settled** (a complete backup with its manifest, a failed one with its final
sidecar, an unmanaged folder with a manifest) and the folder is still in the listing; any other
folder costs one listing of its top level and, unless the index holds its sidecar at the ETag
that listing shows, a read of the sidecar. A full refresh lists every object and takes a
sidecar from the index only at the ETag the listing shows. So a stale, missing or tampered
index costs reads, never a wrong plan of what a refresh can see. Each apply writes the index
afresh for the schedules it touched (and for those whose index was missing or stale).

Format 1 (sidecar ETag and content only) is still read: its folders are then not known as
settled, and cost a top-level listing each (the sidecar itself from the index) until the next
apply writes format 2.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

INDEX_FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)

#: ``state`` of a folder without a sidecar this reconciler reads
UNMANAGED = "unmanaged"
STATES = ("in_progress", "complete", "failed", "pruning", UNMANAGED)


@dataclass(slots=True)
class IndexEntry:
    sidecar_etag: str | None
    sidecar: dict[str, Any] | None  # the sidecar's JSON; None when it did not parse, or there is none
    sidecar_problem: str | None = None
    #: None: not known (an index of format 1)
    manifest: bool | None = None
    state: str | None = None
    files: int | None = None
    bytes: int | None = None
    #: on a bucket with Object Lock: when the lock of the folder's manifest and sidecar ends (the
    #: later retain-until of the two, ISO 8601), read once after the apply that wrote them, so
    #: that a plan does not ask for it again (None: not known; the plan then asks the bucket)
    locked_until: str | None = None

    @property
    def settled(self) -> bool:
        """Nothing but a change behind the reconciler's back moves this folder on: a complete
        backup, a failed one with its final record, or an unmanaged folder that has its manifest."""
        if self.manifest is None or self.state is None:
            return False
        if self.state == "complete":
            return self.manifest and self.sidecar is not None
        if self.state == "failed":
            return self.sidecar is not None
        return self.state == UNMANAGED and self.manifest and self.sidecar_etag is None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "state": self.state,
            "manifest": self.manifest,
            "sidecar_etag": self.sidecar_etag,
            "files": self.files,
            "bytes": self.bytes,
            "sidecar": self.sidecar,
        }
        if self.sidecar_problem:
            out["sidecar_problem"] = self.sidecar_problem
        if self.locked_until:
            out["locked_until"] = self.locked_until
        return out

    @classmethod
    def from_json(cls, d: Any, version: int = INDEX_FORMAT_VERSION) -> IndexEntry:
        if not isinstance(d, dict):
            raise ValueError("index entry is not an object")
        etag, sidecar, problem = d.get("sidecar_etag"), d.get("sidecar"), d.get("sidecar_problem")
        if not isinstance(etag, str) and not (version >= 2 and etag is None):
            raise ValueError("index entry has no sidecar_etag")
        if sidecar is not None and not isinstance(sidecar, dict):
            raise ValueError("index entry sidecar is not an object")
        if problem is not None and not isinstance(problem, str):
            raise ValueError("index entry sidecar_problem is not a string")
        if version < 2:
            return cls(etag, sidecar, problem)
        manifest, state = d.get("manifest"), d.get("state")
        if not isinstance(manifest, bool):
            raise ValueError("index entry manifest is not true or false")
        if state not in STATES:
            raise ValueError("index entry has an unknown state")
        files, size = d.get("files"), d.get("bytes")
        for v in (files, size):
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise ValueError("index entry files/bytes is not a count")
        locked = d.get("locked_until")
        if locked is not None and not isinstance(locked, str):
            raise ValueError("index entry locked_until is not a string")
        return cls(etag, sidecar, problem, manifest, state, files, size, locked)


@dataclass
class ScheduleIndex:
    service: str
    schedule: str
    entries: dict[str, IndexEntry] = field(default_factory=dict)
    version: int = INDEX_FORMAT_VERSION

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
        version = doc.get("format_version") if isinstance(doc, dict) else None
        if version not in READABLE_VERSIONS or isinstance(version, bool):
            raise ValueError("index has an unknown format_version")
        if (doc.get("service"), doc.get("schedule")) != (service, schedule):
            raise ValueError("index names another schedule")
        backups = doc.get("backups")
        if not isinstance(backups, dict):
            raise ValueError("index backups is not an object")
        entries = {str(k): IndexEntry.from_json(v, version) for k, v in backups.items()}
        return cls(service, schedule, entries, version)
