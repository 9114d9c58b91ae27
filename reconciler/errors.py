"""Error classes shared by every layer.

Every error a user can cause or meet is a ``ReconcilerError``: the CLI prints it as one line,
``error: <message> (<where>)``, and exits 1. Errors are classified the kopf way: a
``TemporaryError`` may succeed when retried (throttling, 5xx, a reset connection), anything
else is permanent.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where in a config file a value was written: ``file:line:col at path``."""

    file: str
    line: int
    column: int
    path: str = ""

    def __str__(self) -> str:
        at = f" at {self.path}" if self.path else ""
        return f"{self.file}:{self.line}:{self.column}{at}"


class ReconcilerError(Exception):
    """An error meant for the user: one sentence of what, and where."""

    def __init__(self, message: str, where: Location | str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where

    def line(self) -> str:
        where = f" ({self.where})" if self.where else ""
        return f"error: {self.message}{where}"

    def __str__(self) -> str:
        return self.line()[len("error: ") :]


class ConfigError(ReconcilerError):
    """The desired-state file is invalid. May carry several problems, each with its place."""

    def __init__(self, problems: list[ReconcilerError]) -> None:
        first = problems[0]
        super().__init__(first.message, first.where)
        self.problems = problems

    def lines(self) -> list[str]:
        return [p.line() for p in self.problems]


class TemporaryError(ReconcilerError):
    """May succeed if retried: throttling, 5xx, a reset connection, a timeout."""


class StoreError(ReconcilerError):
    """A permanent failure of an object store request."""


class BucketMissing(StoreError):
    """The bucket or container does not exist."""


class PreconditionFailed(StoreError):
    """A conditional write lost: the object exists (create) or changed (replace/delete)."""


class ObjectMissing(StoreError):
    """An object that was asked for (``Store.open``) does not exist."""


class NotSupported(StoreError):
    """The provider (or this reconciler on it) does not support the operation yet."""


class ClickHouseError(ReconcilerError):
    """ClickHouse refused or failed a statement; ``code`` is ClickHouse's error code."""

    def __init__(self, message: str, code: int | None = None, where: str | None = None) -> None:
        super().__init__(message, where)
        self.code = code


class ServiceUnreachable(ReconcilerError):
    """A service could not be connected to."""


class LockHeld(ReconcilerError):
    """Another apply holds the lock of a bucket prefix."""


class StalePlan(ReconcilerError):
    """A saved plan no longer matches the observed state or the config."""
