"""The sidecar ``reconciler.json``: the reconciler's record of one backup (docs/bucket-layout.md).

Written before ``BACKUP`` starts (state ``in_progress``) and rewritten when it ends and after
each validation. A folder without one is unmanaged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from typing import Any

from ..clickhouse.errortext import error_line
from ..model import Scope, Validation, iso, parse_iso
from .copy_record import CopySource

SIDECAR_FORMAT_VERSION = 1


class SidecarState(str, Enum):
    IN_PROGRESS = "in_progress"
    COMPLETE = "complete"
    FAILED = "failed"
    PRUNING = "pruning"  # set before the first object is deleted: the sidecar goes last


@dataclass(frozen=True, slots=True)
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
    state: SidecarState = SidecarState.IN_PROGRESS
    operation_status: str | None = None  # ClickHouse's status, e.g. BACKUP_CREATED
    error: str | None = None
    num_files: int | None = None  # ClickHouse's num_files: the files the backup holds, bases included
    total_size: int | None = None  # ClickHouse's total_size: their bytes
    #: the objects ClickHouse wrote into this folder, the manifest included (its num_entries + 1),
    #: and their bytes (its uncompressed_size): what a full refresh compares the listing with
    stored_files: int | None = None
    stored_bytes: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    run_id: str | None = None
    validations: tuple[Validation, ...] = field(default_factory=tuple)
    chain: tuple[str, ...] = ()  # the bases an incremental needs, nearest first
    copy_of: CopySource | None = None  # set on a copy in a copy bucket (copy_record.py)

    def with_validation(self, v: Validation) -> Sidecar:
        return replace(self, validations=(*self.validations, v))

    def to_json(self) -> dict[str, Any]:
        out = self._to_json()
        if self.copy_of is not None:
            out["copy_of"] = self.copy_of.to_json()
        return out

    def _to_json(self) -> dict[str, Any]:
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
            "state": self.state.value if isinstance(self.state, SidecarState) else str(self.state),
            "operation": {"id": self.operation_id, "status": self.operation_status, "error": self.error},
            "sizes": {
                "num_files": self.num_files,
                "total_size": self.total_size,
                "stored_files": self.stored_files,
                "stored_bytes": self.stored_bytes,
            },
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
        crash a plan: the caller reports it). Names and ids must be short strings, lists must
        be lists; free texts (errors, validation details) are kept with control characters
        escaped, so that a tampered record cannot rewrite the terminal that shows it."""
        try:
            d = json.loads(data)
        except (ValueError, RecursionError) as e:  # not JSON, not UTF-8, nested too deep, huge numbers
            raise ValueError(f"malformed sidecar: not JSON ({shown(str(e), 120)})") from None
        return cls.from_json(d)

    @classmethod
    def from_json(cls, d: Any) -> Sidecar:
        """The sidecar of parsed JSON ``d`` (what ``to_json`` gave); ``ValueError`` as ``decode``."""
        if not isinstance(d, dict):
            raise ValueError(f"malformed sidecar: a JSON {type(d).__name__}, not an object")
        version = d.get("format_version")
        if version != SIDECAR_FORMAT_VERSION or isinstance(version, bool):
            raise ValueError(
                f"sidecar format_version {shown(json.dumps(version), 40)} is not one this reconciler reads "
                f"({SIDECAR_FORMAT_VERSION})"
            )
        try:
            op = _map(d.get("operation"))
            sizes = _map(d.get("sizes"))
            timings = _map(d.get("timings"))
            scope = _map(d.get("scope"))
            sidecar = cls(
                service=_name(d["service"]),
                schedule=_name(d["schedule"]),
                backup=_name(d["backup"]),
                slot=parse_iso(_name(d["slot"])),
                kind=_choice(d["kind"], ("full", "incremental")),
                base=_opt_name(d.get("base")),
                scope=Scope(
                    _names(scope.get("databases")), _names(scope.get("tables")), access=scope.get("access") is True
                ),
                location=_text(d.get("location", "")),
                operation_id=_name(op.get("id", "")),
                state=_STATES[_choice(d["state"], _STATE_NAMES)],
                operation_status=_opt_name(op.get("status")),
                error=None if op.get("error") is None else _text(error_line(_str(op.get("error")))),
                num_files=_opt_int(sizes.get("num_files")),
                total_size=_opt_int(sizes.get("total_size")),
                stored_files=_opt_int(sizes.get("stored_files")),
                stored_bytes=_opt_int(sizes.get("stored_bytes")),
                started_at=parse_iso(_name(timings["started_at"])) if timings.get("started_at") else None,
                finished_at=parse_iso(_name(timings["finished_at"])) if timings.get("finished_at") else None,
                run_id=_opt_name(d.get("run_id")),
                validations=tuple(
                    _clean_validation(Validation.from_json(_map(v))) for v in _list(d.get("validations"))
                ),
                chain=_names(d.get("chain")),
                copy_of=CopySource.from_json(d["copy_of"]) if d.get("copy_of") is not None else None,
            )
        except KeyError as e:
            raise ValueError(f"malformed sidecar: the key {shown(str(e), 60)} is missing") from None
        except (ValueError, TypeError, AttributeError, OverflowError, RecursionError) as e:
            raise ValueError(f"malformed sidecar: {shown(str(e), 200)}") from None
        return sidecar


#: made once: a plan decodes a sidecar per backup, and an Enum's members are slow to walk
_STATES = {v.value: v for v in SidecarState}
_STATE_NAMES = tuple(_STATES)

#: the longest name or id a sidecar may hold (ours are far shorter; a huge one is tampering)
MAX_NAME = 256


def shown(text: str, limit: int = 200) -> str:
    """``text`` for a one-line message: control and invisible characters escaped, cut to ``limit``."""
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _clean_validation(v: Validation) -> Validation:
    return replace(v, detail=shown(v.detail, 2000)) if not v.detail.isprintable() or len(v.detail) > 2000 else v


def _map(v: Any) -> dict[str, Any]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise TypeError(f"expected an object, got {type(v).__name__}")
    return v


def _list(v: Any) -> list[Any]:
    if v is None:
        return []
    if not isinstance(v, list):
        raise TypeError(f"expected a list, got {type(v).__name__}")
    return v


def _name(v: Any) -> str:
    """A name or id: a string, short, one line."""
    if not isinstance(v, str):  # _str, inline: a plan reads about ten names per backup
        raise TypeError(f"expected a string, got {type(v).__name__}")
    if len(v) > MAX_NAME or not v.isprintable():
        raise ValueError(f"{shown(repr(v), 60)} is not a name (too long, or with control characters)")
    return v


def _opt_name(v: Any) -> str | None:
    return None if v is None else _name(v)


def _names(v: Any) -> tuple[str, ...]:
    if v is None or v == []:  # most: a scope's tables, a full's chain
        return ()
    return tuple([_name(x) for x in _list(v)])


def _text(v: Any) -> str:
    """A free text (an error message): kept, with control characters escaped."""
    return shown(_str(v), 4000)


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
    if not isinstance(v, str) or v not in allowed:
        raise ValueError(f"{shown(repr(v), 60)} is not one of {', '.join(allowed)}")
    return v
