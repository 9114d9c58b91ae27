"""The actions of a plan (docs/plan.md): one frozen dataclass per kind of change, with the fields
its executor needs and a reviewer reads. The planner makes them, the executors carry them out,
the renderers describe them; ``to_json``/``from_json`` are the plan file's form.

Every action has the common fields (``id``, ``reason``, ``depends_on`` and its targets); each
type adds its own, in the order the JSON shows them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar

from .desired import Scope, ValidationLevel


class ActionType(str, Enum):
    CONFIGURE = "configure"
    EXPORT = "export"
    COPY = "copy"
    VALIDATE = "validate"
    RESTORE = "restore"
    RECOVER = "recover"
    PRUNE = "prune"


#: the order in which action types are applied, and summarised (within it, ``depends_on`` rules:
#: a copy waits for its export's validation)
ACTION_ORDER = (
    ActionType.CONFIGURE,
    ActionType.EXPORT,
    ActionType.COPY,
    ActionType.VALIDATE,
    ActionType.RESTORE,
    ActionType.RECOVER,
    ActionType.PRUNE,
)

#: a snapshot's actions carry ``snapshot`` (its name) in place of ``schedule``
_TARGETS = ("service", "schedule", "snapshot", "bucket", "backup")


class PlanFormatError(ValueError):
    """A plan file's action lacks a field its type needs, or holds one of the wrong type."""


@dataclass(frozen=True, kw_only=True)
class Action:
    """What every action has. Subclasses set ``TYPE`` and add their fields."""

    TYPE: ClassVar[ActionType]

    id: str
    reason: str
    depends_on: tuple[str, ...] = ()
    service: str | None = None
    schedule: str | None = None
    bucket: str | None = None
    backup: str | None = None
    snapshot: str | None = None

    @property
    def type(self) -> ActionType:
        return self.TYPE

    def fields_json(self) -> dict[str, Any]:
        """The type's own fields, as the JSON form shows them."""
        return {}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "type": self.TYPE.value}
        for k in _TARGETS:
            v = getattr(self, k)
            if v is not None:
                out[k] = v
        out.update(self.fields_json())
        out["reason"] = self.reason
        out["depends_on"] = list(self.depends_on)
        return out

    @classmethod
    def fields_from_json(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        return {}

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> Action:
        """The action of a plan file's entry; ``PlanFormatError`` when it is not one."""
        kind = _action_class(d)
        common = {k: d.get(k) for k in _TARGETS}
        return kind(
            id=_text(d, "id"),
            reason=_text(d, "reason"),
            depends_on=tuple(str(x) for x in d.get("depends_on") or ()),
            **common,
            **kind.fields_from_json(d),
        )


@dataclass(frozen=True, kw_only=True)
class ExportAction(Action):
    """BACKUP the schedule's scope into the slot's folder."""

    TYPE: ClassVar[ActionType] = ActionType.EXPORT
    kind: str  # full | incremental
    base: str | None
    location: str
    scope: Scope = field(default_factory=Scope)
    chain: tuple[str, ...] = ()  # the bases an incremental needs, nearest first

    def fields_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "base": self.base,
            "location": self.location,
            "scope": self.scope.to_json(),
        }
        if self.base:
            out["chain"] = list(self.chain)
        return out

    @classmethod
    def fields_from_json(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "kind": _choice(d, "kind", ("full", "incremental")),
            "base": _opt_text(d, "base"),
            "location": _text(d, "location"),
            "scope": Scope.from_json(_map(d, "scope")),
            "chain": tuple(str(x) for x in d.get("chain") or ()),
        }


@dataclass(frozen=True, kw_only=True)
class ValidateAction(Action):
    """Prove a backup restorable at ``level`` (a drill restores on ``drill_service``)."""

    TYPE: ClassVar[ActionType] = ActionType.VALIDATE
    level: ValidationLevel
    location: str
    drill_service: str | None = None
    #: adoption of an unmanaged folder: the sidecar written when the manifest validates
    #: (``kind``, ``base``, ``slot``, ``scope``, read from the manifest when planned)
    adopt: Mapping[str, Any] | None = None

    def fields_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"level": self.level.value, "location": self.location}
        if self.drill_service is not None:
            out["drill_service"] = self.drill_service
        if self.adopt is not None:
            out["adopt"] = dict(self.adopt)
        return out

    @classmethod
    def fields_from_json(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        level = _choice(d, "level", tuple(v.value for v in ValidationLevel))
        drill = _opt_text(d, "drill_service")
        if level == ValidationLevel.DRILL.value and drill is None:
            raise PlanFormatError(f"action {d.get('id')}: a drill names no drill_service")
        adopt = d.get("adopt")
        if adopt is not None and not isinstance(adopt, Mapping):
            raise PlanFormatError(f"action {d.get('id')}: adopt must be an object")
        return {
            "level": ValidationLevel(level),
            "location": str(d.get("location") or ""),
            "drill_service": drill,
            "adopt": dict(adopt) if adopt is not None else None,
        }


@dataclass(frozen=True, kw_only=True)
class CopyAction(Action):
    """Copy a complete backup of ``source_bucket`` into the copy bucket ``bucket`` (same relative
    path), verified at ``level`` as it is written; an incremental's bases are copied first (their
    own actions) and its copied manifest names the copy of its base."""

    TYPE: ClassVar[ActionType] = ActionType.COPY
    source_bucket: str
    source_location: str
    location: str
    kind: str  # full | incremental
    base: str | None
    chain: tuple[str, ...] = ()  # the bases an incremental needs, nearest first
    level: ValidationLevel = ValidationLevel.MANIFEST  # manifest | checksums
    method: str = "streamed"  # server-side | streamed
    state: str = "missing"  # what the copy bucket holds when planned: missing, abandoned, failed, broken
    size: int = 0  # the source's bytes (its sidecar)

    def fields_json(self) -> dict[str, Any]:
        return {
            "source_bucket": self.source_bucket,
            "source_location": self.source_location,
            "location": self.location,
            "kind": self.kind,
            "base": self.base,
            "chain": list(self.chain),
            "level": self.level.value,
            "method": self.method,
            "state": self.state,
            "size": self.size,
        }

    @classmethod
    def fields_from_json(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        size = d.get("size") or 0
        return {
            "source_bucket": _text(d, "source_bucket"),
            "source_location": _text(d, "source_location"),
            "location": _text(d, "location"),
            "kind": _choice(d, "kind", ("full", "incremental")),
            "base": _opt_text(d, "base"),
            "chain": tuple(str(x) for x in d.get("chain") or ()),
            "level": ValidationLevel(
                _choice(d, "level", (ValidationLevel.MANIFEST.value, ValidationLevel.CHECKSUMS.value))
            ),
            "method": _choice(d, "method", ("server-side", "streamed")),
            "state": str(d.get("state") or "missing"),
            "size": size if isinstance(size, int) else 0,
        }


@dataclass(frozen=True, kw_only=True)
class PruneAction(Action):
    """Delete a backup folder that retention no longer keeps (or an attempt, or unmanaged)."""

    TYPE: ClassVar[ActionType] = ActionType.PRUNE
    location: str
    state: str  # the folder's state when planned: complete, failed, abandoned, pruning, unmanaged
    size: int = 0

    def fields_json(self) -> dict[str, Any]:
        return {"location": self.location, "state": self.state, "size": self.size}

    @classmethod
    def fields_from_json(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        size = d.get("size") or 0
        return {
            "location": str(d.get("location") or ""),
            "state": str(d.get("state") or ""),
            "size": size if isinstance(size, int) else 0,
        }


@dataclass(frozen=True, kw_only=True)
class RecoverAction(Action):
    """Bring back a backup hidden by delete markers outside an apply: remove the delete markers
    over the files its manifest lists (read from the manifest's surviving version), over the
    manifest and over the sidecar, and nothing else. Its validation is its own action, after it."""

    TYPE: ClassVar[ActionType] = ActionType.RECOVER
    location: str
    size: int = 0  # the backup's bytes as its sidecar recorded them (what the bucket holds again)

    def fields_json(self) -> dict[str, Any]:
        return {"location": self.location, "size": self.size}

    @classmethod
    def fields_from_json(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        size = d.get("size") or 0
        return {"location": _text(d, "location"), "size": size if isinstance(size, int) else 0}


@dataclass(frozen=True, kw_only=True)
class RestoreAction(Action):
    """RESTORE a schedule's backup into a service (``service`` is the target)."""

    TYPE: ClassVar[ActionType] = ActionType.RESTORE
    restore: str
    from_service: str
    kind: str | None
    base: str | None
    chain: tuple[str, ...] = ()
    databases: Mapping[str, str] = field(default_factory=dict)  # source -> target name
    allow_non_empty_tables: bool = False
    location: str = ""
    spec_digest: str = ""

    def fields_json(self) -> dict[str, Any]:
        return {
            "restore": self.restore,
            "from_service": self.from_service,
            "kind": self.kind,
            "base": self.base,
            "chain": list(self.chain),
            "databases": dict(self.databases),
            "allow_non_empty_tables": self.allow_non_empty_tables,
            "location": self.location,
            "spec_digest": self.spec_digest,
        }

    @classmethod
    def fields_from_json(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "restore": _text(d, "restore"),
            "from_service": _text(d, "from_service"),
            "kind": _opt_text(d, "kind"),
            "base": _opt_text(d, "base"),
            "chain": tuple(str(x) for x in d.get("chain") or ()),
            "databases": {str(k): str(v) for k, v in _map(d, "databases").items()},
            "allow_non_empty_tables": bool(d.get("allow_non_empty_tables")),
            "location": str(d.get("location") or ""),
            "spec_digest": str(d.get("spec_digest") or ""),
        }


@dataclass(frozen=True, kw_only=True)
class CloudRestoreAction(Action):
    """Create a ClickHouse Cloud service from a Cloud backup (``service`` is the source)."""

    TYPE: ClassVar[ActionType] = ActionType.RESTORE
    restore: str
    from_service: str
    source_service_id: str
    backup_name: str | None
    backup_started_at: str | None
    new_service: Mapping[str, Any]
    existing_service_id: str | None = None
    record_bucket: str | None = None
    spec_digest: str = ""

    def fields_json(self) -> dict[str, Any]:
        return {
            "restore": self.restore,
            "from_service": self.from_service,
            "source_service_id": self.source_service_id,
            "backup_name": self.backup_name,
            "backup_started_at": self.backup_started_at,
            "new_service": dict(self.new_service),
            "existing_service_id": self.existing_service_id,
            "record_bucket": self.record_bucket,
            "spec_digest": self.spec_digest,
        }

    @classmethod
    def fields_from_json(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "restore": _text(d, "restore"),
            "from_service": _text(d, "from_service"),
            "source_service_id": str(d.get("source_service_id") or ""),
            "backup_name": _opt_text(d, "backup_name"),
            "backup_started_at": _opt_text(d, "backup_started_at"),
            "new_service": _map(d, "new_service"),
            "existing_service_id": _opt_text(d, "existing_service_id"),
            "record_bucket": _opt_text(d, "record_bucket"),
            "spec_digest": str(d.get("spec_digest") or ""),
        }


@dataclass(frozen=True, kw_only=True)
class ConfigureAction(Action):
    """PATCH/POST a ClickHouse Cloud service's backup setting (``setting``) through the API."""

    TYPE: ClassVar[ActionType] = ActionType.CONFIGURE
    setting: str  # backupConfiguration | backupBucket
    method: str  # PATCH | POST
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    changes: Mapping[str, Any] = field(default_factory=dict)

    def fields_json(self) -> dict[str, Any]:
        return {
            "setting": self.setting,
            "method": self.method,
            "before": None if self.before is None else dict(self.before),
            "after": None if self.after is None else dict(self.after),
            "changes": dict(self.changes),
        }

    @classmethod
    def fields_from_json(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        before, after = d.get("before"), d.get("after")
        return {
            "setting": _text(d, "setting"),
            "method": _text(d, "method"),
            "before": dict(before) if isinstance(before, Mapping) else None,
            "after": dict(after) if isinstance(after, Mapping) else None,
            "changes": _map(d, "changes"),
        }


def _action_class(d: Mapping[str, Any]) -> type[Action]:
    kind = d.get("type")
    if kind == ActionType.RESTORE.value:
        return CloudRestoreAction if d.get("new_service") else RestoreAction
    for cls in (ExportAction, CopyAction, ValidateAction, RecoverAction, PruneAction, ConfigureAction):
        if kind == cls.TYPE.value:
            return cls
    raise PlanFormatError(f"action {d.get('id')}: unknown type {kind!r}")


def _text(d: Mapping[str, Any], key: str) -> str:
    v = d.get(key)
    if not isinstance(v, str) or not v:
        raise PlanFormatError(f"action {d.get('id')}: {key} must be a non-empty string")
    return v


def _opt_text(d: Mapping[str, Any], key: str) -> str | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise PlanFormatError(f"action {d.get('id')}: {key} must be a string or null")
    return v


def _choice(d: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    v = d.get(key)
    if v not in allowed:
        raise PlanFormatError(f"action {d.get('id')}: {key} must be one of {', '.join(allowed)}")
    return str(v)


def _map(d: Mapping[str, Any], key: str) -> dict[str, Any]:
    v = d.get(key)
    if v is None:
        return {}
    if not isinstance(v, Mapping):
        raise PlanFormatError(f"action {d.get('id')}: {key} must be an object")
    return dict(v)
