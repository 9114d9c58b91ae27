"""The sidecar ``reconciler.json``: the reconciler's record of one backup (DESIGN §3).

Written before ``BACKUP`` starts (state ``in_progress``) and rewritten when it ends and after
each validation. A folder without one is unmanaged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from .model import Scope, Validation, iso, parse_iso

SIDECAR_FORMAT_VERSION = 1


class SidecarState:
    IN_PROGRESS = "in_progress"
    COMPLETE = "complete"
    FAILED = "failed"
    PRUNING = "pruning"  # set before the first object is deleted: the sidecar goes last
    ALL = (IN_PROGRESS, COMPLETE, FAILED, PRUNING)


@dataclass(frozen=True)
class Sidecar:
    service: str
    schedule: str
    backup: str
    slot: datetime
    kind: str  # full | incremental
    base: str | None
    scope: Scope
    location: str
    operation_id: str
    state: str = SidecarState.IN_PROGRESS
    operation_status: str | None = None  # ClickHouse's status, e.g. BACKUP_CREATED
    error: str | None = None
    num_files: int | None = None
    total_size: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    run_id: str | None = None
    validations: tuple[Validation, ...] = field(default_factory=tuple)
    chain: tuple[str, ...] = ()  # the bases an incremental needs, nearest first

    def with_validation(self, v: Validation) -> Sidecar:
        return replace(self, validations=(*self.validations, v))

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": SIDECAR_FORMAT_VERSION,
            "service": self.service,
            "schedule": self.schedule,
            "backup": self.backup,
            "slot": iso(self.slot),
            "kind": self.kind,
            "base": self.base,
            "chain": list(self.chain),
            "scope": self.scope.to_json(),
            "location": self.location,
            "state": self.state,
            "operation": {"id": self.operation_id, "status": self.operation_status, "error": self.error},
            "sizes": {"num_files": self.num_files, "total_size": self.total_size},
            "timings": {
                "started_at": iso(self.started_at) if self.started_at else None,
                "finished_at": iso(self.finished_at) if self.finished_at else None,
                "duration_seconds": (self.finished_at - self.started_at).total_seconds()
                if self.started_at and self.finished_at
                else None,
            },
            "run_id": self.run_id,
            "validations": [v.to_json() for v in self.validations],
        }

    def encode(self) -> bytes:
        return json.dumps(self.to_json(), indent=2, sort_keys=False).encode()

    @classmethod
    def decode(cls, data: bytes) -> Sidecar:
        """Parse a sidecar; ``ValueError`` for anything malformed (a tampered object must not
        crash a plan: the caller reports it)."""
        try:
            d = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"malformed sidecar: {e.__class__.__name__}: {e}") from None
        return cls.from_json(d)

    @classmethod
    def from_json(cls, d: Any) -> Sidecar:
        try:
            if not isinstance(d, dict):
                raise ValueError("malformed sidecar: not a JSON object")
            if d.get("format_version") != SIDECAR_FORMAT_VERSION:
                raise ValueError(f"unknown sidecar format_version {d.get('format_version')!r}")
            op = d.get("operation") or {}
            sizes = d.get("sizes") or {}
            timings = d.get("timings") or {}
            return cls(
                service=_str(d["service"]),
                schedule=_str(d["schedule"]),
                backup=_str(d["backup"]),
                slot=parse_iso(_str(d["slot"])),
                kind=_choice(d["kind"], ("full", "incremental")),
                base=_opt_str(d.get("base")),
                scope=Scope.from_json(d.get("scope") or {}),
                location=_str(d.get("location", "")),
                operation_id=_str(op.get("id", "")),
                state=_choice(d["state"], SidecarState.ALL),
                operation_status=_opt_str(op.get("status")),
                error=_opt_str(op.get("error")),
                num_files=_opt_int(sizes.get("num_files")),
                total_size=_opt_int(sizes.get("total_size")),
                started_at=parse_iso(timings["started_at"]) if timings.get("started_at") else None,
                finished_at=parse_iso(timings["finished_at"]) if timings.get("finished_at") else None,
                run_id=_opt_str(d.get("run_id")),
                validations=tuple(Validation.from_json(v) for v in d.get("validations") or ()),
                chain=tuple(_str(x) for x in d.get("chain") or ()),
            )
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as e:
            raise ValueError(f"malformed sidecar: {e.__class__.__name__}: {e}") from None


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError(f"expected a string, got {type(v).__name__}")
    return v


def _opt_str(v: Any) -> str | None:
    return None if v is None else _str(v)


def _opt_int(v: Any) -> int | None:
    if v is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool):
        raise TypeError(f"expected an integer, got {type(v).__name__}")
    return v


def _choice(v: Any, allowed: tuple[str, ...]) -> str:
    if v not in allowed:
        raise ValueError(f"{v!r} is not one of {', '.join(allowed)}")
    return str(v)
