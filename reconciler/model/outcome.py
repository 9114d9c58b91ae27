"""What apply returns: one outcome per action, and the run's result."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any


class OutcomeStatus(str, Enum):
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # a dependency failed
    HELD = "held"  # an object lock refused a deletion: neither done nor failed, pruned once it ends


@dataclass(frozen=True)
class Outcome:
    action_id: str
    status: OutcomeStatus
    detail: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ApplyResult:
    run_id: str
    outcomes: tuple[Outcome, ...]
    #: the run record written to the bucket(s) at the end, as JSON (what ``notify`` sends)
    record: Mapping[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return all(o.status in (OutcomeStatus.DONE, OutcomeStatus.HELD) for o in self.outcomes)

    def freed(self) -> tuple[int, int]:
        """(backups, bytes) deleted by prune actions."""
        pruned = [o for o in self.outcomes if o.status == OutcomeStatus.DONE and "freed_bytes" in o.facts]
        return len(pruned), sum(int(o.facts["freed_bytes"]) for o in pruned)

    def counts(self) -> dict[str, int]:
        return {s.value: sum(1 for o in self.outcomes if o.status == s) for s in OutcomeStatus}
