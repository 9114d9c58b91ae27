"""A plan (docs/plan.md): an immutable value of typed actions with reasons, plus the drift and
warnings seen on the way. Built by plan/ (pure), carried out by apply/, described by render/."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from .actions import ACTION_ORDER, Action
from .time import iso, parse_iso


class DriftType(str, Enum):
    RPO_VIOLATION = "rpo_violation"
    FAILED_BACKUP = "failed_backup"
    BROKEN_BACKUP = "broken_backup"
    UNVALIDATED_BACKUP = "unvalidated_backup"
    UNMANAGED_BACKUP = "unmanaged_backup"
    CONFIG_DRIFT = "config_drift"
    MISSING_BUCKET = "missing_bucket"
    UNREACHABLE_SERVICE = "unreachable_service"
    MISSING_COPY = "missing_copy"
    DELETED_BACKUP = "deleted_backup"
    MISSING_PRIVILEGE = "missing_privilege"


@dataclass(frozen=True)
class Drift:
    type: DriftType
    detail: str
    schedule: str | None = None
    service: str | None = None
    bucket: str | None = None
    backup: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type.value}
        for k in ("service", "schedule", "bucket", "backup"):
            v = getattr(self, k)
            if v is not None:
                out[k] = v
        out["detail"] = self.detail
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Drift:
        return cls(
            DriftType(d["type"]), d["detail"], d.get("schedule"), d.get("service"), d.get("bucket"), d.get("backup")
        )


@dataclass(frozen=True)
class Held:
    """A backup retention would prune, kept by its bucket's object lock until ``until``."""

    bucket: str
    backup: str
    until: datetime
    reason: str
    schedule: str | None = None
    snapshot: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.schedule is not None:
            out["schedule"] = self.schedule
        if self.snapshot is not None:
            out["snapshot"] = self.snapshot
        out.update({"bucket": self.bucket, "backup": self.backup, "until": iso(self.until), "reason": self.reason})
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Held:
        return cls(
            bucket=d["bucket"],
            backup=d["backup"],
            until=parse_iso(d["until"]),
            reason=d["reason"],
            schedule=d.get("schedule"),
            snapshot=d.get("snapshot"),
        )


@dataclass(frozen=True)
class StorageEstimate:
    """The bytes of the backups the reconciler knows in one bucket (by its config name), now and
    after the plan, and their monthly cost when the bucket declares ``price_per_gib_month``."""

    bucket: str
    bytes_now: int
    bytes_after: int
    monthly_cost_now: float | None = None
    monthly_cost_after: float | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"bucket": self.bucket, "bytes_now": self.bytes_now, "bytes_after": self.bytes_after}
        if self.monthly_cost_now is not None:
            out["monthly_cost_now"] = self.monthly_cost_now
        if self.monthly_cost_after is not None:
            out["monthly_cost_after"] = self.monthly_cost_after
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> StorageEstimate:
        return cls(
            bucket=d["bucket"],
            bytes_now=int(d["bytes_now"]),
            bytes_after=int(d["bytes_after"]),
            monthly_cost_now=d.get("monthly_cost_now"),
            monthly_cost_after=d.get("monthly_cost_after"),
        )


PLAN_FORMAT_VERSION = "1"


@dataclass(frozen=True)
class Plan:
    now: datetime
    config_digest: str
    state_digest: str
    actions: tuple[Action, ...]
    drift: tuple[Drift, ...] = ()
    warnings: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    held: tuple[Held, ...] = ()
    storage: tuple[StorageEstimate, ...] = ()
    #: the refresh the plan was observed with: "fast" or "full" (an apply of the saved plan
    #: observes the same way, so that its stale check compares like with like)
    refresh: str = "fast"

    def summary(self) -> dict[str, int]:
        return {t.value: sum(1 for a in self.actions if a.type == t) for t in ACTION_ORDER}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format_version": PLAN_FORMAT_VERSION,
            "now": iso(self.now),
            "config_digest": self.config_digest,
            "state_digest": self.state_digest,
            "actions": [a.to_json() for a in self.actions],
            "drift": [d.to_json() for d in self.drift],
            "warnings": list(self.warnings),
            "held": [h.to_json() for h in self.held],
            "storage": [e.to_json() for e in self.storage],
            "summary": self.summary(),
        }
        if self.targets:
            out["targets"] = list(self.targets)
        if self.refresh != "fast":
            out["refresh"] = self.refresh
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Plan:
        return cls(
            now=parse_iso(d["now"]),
            config_digest=d["config_digest"],
            state_digest=d["state_digest"],
            actions=tuple(Action.from_json(a) for a in d["actions"]),
            drift=tuple(Drift.from_json(x) for x in d.get("drift", ())),
            warnings=tuple(d.get("warnings", ())),
            targets=tuple(d.get("targets", ())),
            held=tuple(Held.from_json(x) for x in d.get("held", ())),
            storage=tuple(StorageEstimate.from_json(x) for x in d.get("storage", ())),
            refresh=str(d.get("refresh", "fast")),
        )
