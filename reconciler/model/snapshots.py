"""What the buckets show of snapshots (docs/bucket-layout.md, ``_snapshots``): the folder of each
declared snapshot, classified like a schedule's backup, its record, and the snapshot folders
that no declared snapshot names any more."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from .observed import ObservedBackup


class SnapshotRecordState(str, Enum):
    MADE = "made"  # its export started (the name is used: never made again once its folder is gone)
    PRUNING = "pruning"  # keep_until passed and its prune started
    PRUNED = "pruned"  # pruned after keep_until
    CLEARED = "cleared"  # a failed attempt was removed: it may be made again


@dataclass(frozen=True)
class SnapshotRecordInfo:
    state: SnapshotRecordState
    made_at: datetime
    run_id: str
    pruned_at: datetime | None = None


@dataclass(frozen=True)
class ObservedSnapshot:
    name: str
    service: str
    bucket: str  # the config's bucket name
    declared: bool
    folder: ObservedBackup | None  # None: no folder under `<service>/_snapshots/<name>/`
    record: SnapshotRecordInfo | None = None
    record_problem: str | None = None  # the record exists and cannot be read
