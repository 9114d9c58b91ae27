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
            "summary": self.summary(),
        }
        if self.targets:
            out["targets"] = list(self.targets)
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
        )
