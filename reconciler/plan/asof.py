"""``backup: {before: T}``: the newest complete backup whose slot is strictly before T
(docs/plan.md, "As-of restores"). Pure, over any list of candidate backups, so that the same rule
chooses among a schedule's backups in its own bucket or in a copy bucket."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ..model import ObservedBackup
from .chains import usable as _usable


@dataclass(frozen=True)
class AsOf:
    """The backup chosen (None: nothing qualifies), its chain (nearest base first), and the newer
    backups before T that were passed over, each with why."""

    backup: ObservedBackup | None
    chain: tuple[str, ...] = ()
    passed_over: tuple[tuple[str, str], ...] = ()


def resolve_before(backups: Sequence[ObservedBackup], before: datetime) -> AsOf:
    """The newest usable backup (complete, the reconciler's, not failed validation) with
    ``slot < before`` whose whole chain of bases is usable too. A newer one whose chain is not
    whole is passed over (a restore of it would fail), and said so."""
    by_name = {b.name: b for b in backups}
    eligible = sorted(
        (b for b in backups if _usable(b) and b.slot is not None and b.slot < before),
        key=lambda b: (b.slot, b.attempt, b.name),
        reverse=True,
    )
    passed: list[tuple[str, str]] = []
    for b in eligible:
        chain: list[str] = []
        base, problem = b.base if b.kind == "incremental" else None, None
        while base:
            if base in chain:
                problem = f"its chain loops at {base}"
                break
            found = by_name.get(base)
            if found is None or not _usable(found):
                problem = f"its base {base} is " + ("missing" if found is None else "not a usable backup")
                break
            chain.append(base)
            base = found.base if found.kind == "incremental" else None
        if problem is None:
            return AsOf(b, tuple(chain), tuple(passed))
        passed.append((b.name, problem))
    return AsOf(None, (), tuple(passed))
