"""What every action executor gets: the config, the connections, where to report, the run."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..connections import Connections, wall_clock
from ..console import Console
from ..model import Config

__all__ = ["ApplyContext", "operation_id", "wall_clock"]


@dataclass(frozen=True)
class ApplyContext:
    config: Config
    conns: Connections
    console: Console
    run_id: str
    clock: Callable[[], datetime] = wall_clock
    #: the re-check of the backups each schedule keeps, before its prunes (kept_check.KeptCheck)
    kept_check: Any = None


def operation_id(kind: str, location: str, name: str, salt: str = "") -> str:
    """Deterministic ``SETTINGS id`` for a BACKUP/RESTORE: the same folder always gets the same
    id, so that a crashed apply's operation can be found again in ``system.backups``."""
    h = hashlib.sha256((location + "\0" + salt).encode()).hexdigest()[:12]
    return f"reconciler-{kind}-{name}-{h}"
