"""The snapshot record ``<prefix>/.reconciler/snapshots/<name>.json`` (docs/bucket-layout.md):
written when a declared snapshot's export starts, so that a snapshot is made once, and updated
when it is pruned after ``keep_until`` (or when a failed attempt is cleared away)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..model import Scope, iso, parse_iso
from ..model.snapshots import SnapshotRecordInfo, SnapshotRecordState
from .sidecar import shown

SNAPSHOT_RECORD_VERSION = 1


@dataclass(frozen=True)
class SnapshotRecord:
    snapshot: str
    service: str
    location: str
    scope: Scope
    made_at: datetime
    run_id: str
    state: SnapshotRecordState = SnapshotRecordState.MADE
    pruned_at: datetime | None = None

    def info(self) -> SnapshotRecordInfo:
        return SnapshotRecordInfo(self.state, self.made_at, self.run_id, self.pruned_at)

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": SNAPSHOT_RECORD_VERSION,
            "snapshot": self.snapshot,
            "service": self.service,
            "location": self.location,
            "scope": self.scope.to_json(),
            "state": self.state.value,
            "made_at": iso(self.made_at),
            "run_id": self.run_id,
            "pruned_at": iso(self.pruned_at) if self.pruned_at else None,
        }

    def encode(self) -> bytes:
        return json.dumps(self.to_json(), indent=2).encode()

    @classmethod
    def decode(cls, data: bytes) -> SnapshotRecord:
        """ValueError for anything that is not a record this version wrote."""
        try:
            d = json.loads(data)
        except (ValueError, RecursionError) as e:
            raise ValueError(f"not JSON ({shown(str(e), 120)})") from None
        if not isinstance(d, dict) or d.get("format_version") != SNAPSHOT_RECORD_VERSION:
            raise ValueError("not a snapshot record of format_version 1")
        try:
            scope = d.get("scope") or {}
            if not isinstance(scope, dict):
                raise TypeError("scope is not an object")
            return cls(
                snapshot=_str(d["snapshot"]),
                service=_str(d["service"]),
                location=_str(d.get("location", "")),
                scope=Scope.from_json(scope),
                made_at=parse_iso(_str(d["made_at"])),
                run_id=_str(d["run_id"]),
                state=SnapshotRecordState(d["state"]),
                pruned_at=parse_iso(_str(d["pruned_at"])) if d.get("pruned_at") else None,
            )
        except KeyError as e:
            raise ValueError(f"the key {shown(str(e), 60)} is missing") from None
        except (ValueError, TypeError) as e:
            raise ValueError(shown(str(e), 200)) from None


def _str(v: Any) -> str:
    if not isinstance(v, str) or len(v) > 2048:
        raise TypeError(f"expected a short string, got {type(v).__name__}")
    return v
