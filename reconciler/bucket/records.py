"""The reconciler's control records in a bucket and their codecs (docs/bucket-layout.md):

    <prefix>/.reconciler/lock                     the apply lock
    <prefix>/.reconciler/restores/<restore>.json  a declared restore (in progress, or done)
    <prefix>/.reconciler/runs/<run-id>.json       what an apply did

Every record written here is read back by a later run, possibly of another version, possibly
after someone edited the bucket: decoding never trusts a record. A field shown in messages must
be a short printable string; anything else makes the record unreadable, and the caller reports
it (an unreadable lock counts as expired, an unreadable restore record stops that restore).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Protocol

from ..model import LockInfo, RestoreRecord, iso, parse_iso
from .sidecar import MAX_NAME, shown

#: a control object larger than this is not trusted (tampering, not ours)
MAX_SMALL_OBJECT = 4 * 1024 * 1024
#: what a tampered record can raise when parsed
MALFORMED = (ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError)
RECORD_FORMAT_VERSION = 1


class Reader(Protocol):
    """What decoding needs of a store: a read (the Store protocol has it)."""

    def read(self, key: str) -> tuple[bytes, str] | None: ...


def _field(d: Any, key: str) -> str:
    """A short, printable string field of a control object (it is shown in messages)."""
    value = d[key]
    if not isinstance(value, str) or len(value) > MAX_NAME or not value.isprintable():
        raise ValueError(f"{key} is not a short printable string")
    return value


def _names(d: Mapping[str, Any], key: str) -> list[str]:
    value = d.get(key)
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _optional_text(d: Mapping[str, Any], key: str) -> str | None:
    """An optional message, shown in plans: one line of printable characters (a tampered record
    cannot rewrite the terminal); anything but a string reads as absent."""
    value = d.get(key)
    if not isinstance(value, str):
        return None
    return "".join(c if c.isprintable() else " " for c in value[:1000])


# --------------------------------------------------------------------------------------------
# The apply lock
# --------------------------------------------------------------------------------------------

_EPOCH = parse_iso("1970-01-01T00:00:00Z")


def encode_lock(lock: LockInfo) -> bytes:
    return json.dumps(
        {
            "lock_id": lock.lock_id,
            "host": lock.host,
            "pid": lock.pid,
            "started_at": iso(lock.started_at),
            "lease_expires_at": iso(lock.lease_expires_at),
        },
        indent=2,
    ).encode()


def decode_lock(data: bytes, etag: str) -> LockInfo:
    """The lock in ``data``; an exception of ``MALFORMED`` when it is not one."""
    d = json.loads(data[:MAX_SMALL_OBJECT])
    pid = d["pid"]
    if not isinstance(pid, int) or isinstance(pid, bool):
        raise TypeError("pid is not an integer")
    return LockInfo(
        lock_id=_field(d, "lock_id"),
        host=_field(d, "host"),
        pid=pid,
        started_at=parse_iso(_field(d, "started_at")),
        lease_expires_at=parse_iso(_field(d, "lease_expires_at")),
        etag=etag,
    )


def read_lock(store: Reader, key: str) -> LockInfo | None:
    """The lock object; a malformed one is reported as held by an unknown holder with an
    expired lease, so it can be taken over rather than blocking every apply for ever."""
    got = store.read(key)
    if got is None:
        return None
    data, etag = got
    try:
        return decode_lock(data, etag)
    except MALFORMED:
        return LockInfo(
            lock_id="(unreadable lock object)", host="?", pid=0, started_at=_EPOCH, lease_expires_at=_EPOCH, etag=etag
        )


# --------------------------------------------------------------------------------------------
# Restore records
# --------------------------------------------------------------------------------------------


class RestoreRecordState(str, Enum):
    IN_PROGRESS = "in_progress"  # an attempt started; the tables it may write are named
    DONE = "done"  # the restore is done (records written before this field existed have none)


@dataclass(frozen=True)
class RestoreAttempt:
    """What an attempt under way may write without touching anything of the user's: the tables
    absent or empty when it started, and the databases absent then, which the attempt creates
    (RESTORE DATABASE does; before a RESTORE TABLE the reconciler does). If the apply dies, or
    the RESTORE fails (``error``: ClickHouse's one line), the next one removes exactly these
    before restoring again: never a database that existed before the attempt."""

    restore: str
    backup: str
    spec_digest: str
    started_at: datetime
    run_id: str
    absent_tables: Sequence[str] = ()
    empty_tables: Sequence[str] = ()
    absent_databases: Sequence[str] = ()
    error: str | None = None

    def encode(self) -> bytes:
        doc: dict[str, Any] = {
            "restore": self.restore,
            "backup": self.backup,
            "spec_digest": self.spec_digest,
            "state": RestoreRecordState.IN_PROGRESS.value,
            "started_at": iso(self.started_at),
            "run_id": self.run_id,
            "absent_tables": list(self.absent_tables),
            "empty_tables": list(self.empty_tables),
            "absent_databases": list(self.absent_databases),
        }
        if self.error is not None:
            doc["error"] = self.error
        return json.dumps(doc, indent=2).encode()

    @classmethod
    def decode(cls, data: bytes) -> RestoreAttempt | None:
        """The attempt in ``data``, or None when it is no readable in-progress record."""
        try:
            d = json.loads(data[:MAX_SMALL_OBJECT])
            if not isinstance(d, dict) or d.get("state") != RestoreRecordState.IN_PROGRESS.value:
                return None
            return cls(
                restore=_field(d, "restore"),
                backup=_field(d, "backup"),
                spec_digest=_field(d, "spec_digest"),
                started_at=parse_iso(_field(d, "started_at")),
                run_id=_field(d, "run_id"),
                absent_tables=_names(d, "absent_tables"),
                empty_tables=_names(d, "empty_tables"),
                absent_databases=_names(d, "absent_databases"),
                error=_optional_text(d, "error"),
            )
        except MALFORMED:
            return None


@dataclass(frozen=True)
class RestoreDone:
    """A restore that was done: which backup, from where, into what, by which run."""

    restore: str
    backup: str
    spec_digest: str
    done_at: datetime
    run_id: str
    source: Mapping[str, Any] = field(default_factory=dict)  # "from": service, schedule, location...
    target: Mapping[str, Any] = field(default_factory=dict)  # "to": service and databases, or a new service
    operation_id: str | None = None

    def encode(self) -> bytes:
        doc: dict[str, Any] = {
            "restore": self.restore,
            "backup": self.backup,
            "state": RestoreRecordState.DONE.value,
            "from": dict(self.source),
            "to": dict(self.target),
            "spec_digest": self.spec_digest,
        }
        if self.operation_id is not None:
            doc["operation_id"] = self.operation_id
        doc.update({"done_at": iso(self.done_at), "run_id": self.run_id})
        return json.dumps(doc, indent=2).encode()


def decode_restore_record(data: bytes) -> RestoreRecord:
    """What a plan needs of a restore record; ``ValueError`` for anything malformed."""
    try:
        d = json.loads(data[:MAX_SMALL_OBJECT])
        in_progress = isinstance(d, dict) and d.get("state") == RestoreRecordState.IN_PROGRESS.value
        return RestoreRecord(
            restore=_field(d, "restore"),
            backup=_field(d, "backup"),
            spec_digest=_field(d, "spec_digest"),
            done_at=parse_iso(_field(d, "started_at" if in_progress else "done_at")),
            run_id=_field(d, "run_id"),
            in_progress=in_progress,
            error=_optional_text(d, "error") if in_progress else None,
        )
    except MALFORMED as e:
        raise ValueError(f"{e.__class__.__name__}") from None


def read_restore_record(store: Reader, key: str) -> RestoreRecord | None:
    got = store.read(key)
    if got is None:
        return None
    try:
        return decode_restore_record(got[0])
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------
# Run records
# --------------------------------------------------------------------------------------------


class RunStatus(str, Enum):
    RUNNING = "running"  # written when the run starts; a run that never ended keeps it
    OK = "ok"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # shown, never written: running, and its lock is gone
    UNREADABLE = "unreadable"  # shown, never written


@dataclass(frozen=True)
class ActionRecord:
    id: str
    type: str | None
    status: str
    detail: str
    started_at: datetime | None
    finished_at: datetime | None
    facts: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "status": self.status,
            "detail": self.detail,
            "started_at": iso(self.started_at) if self.started_at else None,
            "finished_at": iso(self.finished_at) if self.finished_at else None,
            "facts": dict(self.facts),
        }


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    host: str
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None
    plan: Mapping[str, str]  # now, config_digest, state_digest
    summary: Mapping[str, int]
    actions: Sequence[ActionRecord] = ()

    def encode(self) -> bytes:
        return json.dumps(
            {
                "format_version": RECORD_FORMAT_VERSION,
                "run_id": self.run_id,
                "host": self.host,
                "status": self.status.value,
                "started_at": iso(self.started_at),
                "finished_at": iso(self.finished_at) if self.finished_at else None,
                "plan": dict(self.plan),
                "summary": dict(self.summary),
                "actions": [a.to_json() for a in self.actions],
            },
            indent=2,
        ).encode()


def decode_run_summary(data: bytes) -> dict[str, object]:
    """What ``status`` shows of a run record: id, status, times, summary; an exception of
    ``MALFORMED`` for anything else."""
    d = json.loads(data[:MAX_SMALL_OBJECT])
    summary = d.get("summary") or {}
    if not isinstance(summary, dict) or not all(
        isinstance(k, str) and k.isprintable() and type(v) is int for k, v in summary.items()
    ):
        raise ValueError("summary is not a mapping of counts")
    return {
        "run_id": _field(d, "run_id"),
        "status": _field(d, "status"),
        "started_at": _field(d, "started_at") if d.get("started_at") is not None else None,
        "finished_at": _field(d, "finished_at") if d.get("finished_at") is not None else None,
        "summary": summary,
    }


def unreadable_run(key: str) -> dict[str, object]:
    return {"run_id": shown(key.rsplit("/", 1)[-1][: -len(".json")], 100), "status": RunStatus.UNREADABLE.value}
