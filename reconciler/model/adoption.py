"""What the manifest of an unmanaged folder says, for ``adopt_unmanaged`` (docs/retention.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .desired import Scope


@dataclass(frozen=True)
class ManifestFacts:
    """Read from ClickHouse's ``.backup`` of a folder without a sidecar."""

    timestamp: datetime | None = None  # the manifest's <timestamp> (UTC)
    kind: str = "full"  # incremental when it names a base backup
    base: str | None = None  # the base's folder name, when it is a folder beside this one
    base_elsewhere: bool = False  # it names a base that is not a folder of the same schedule
    databases: tuple[str, ...] = ()  # every database whose definition it holds
    tables: tuple[str, ...] = ()  # every table, as `database.table`
    problem: str | None = None  # the manifest cannot be read: nothing else is known

    @property
    def scope(self) -> Scope:
        """The scope the sidecar records: the databases it holds."""
        return Scope(databases=self.databases) if self.databases else Scope(tables=self.tables)
