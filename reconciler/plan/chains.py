"""Whether a backup can be restored with its chain of bases (docs/plan.md, "Broken chains"). Pure.

An incremental stores only what changed since its base: a restore of it reads every base down to
its full. So an incremental whose base (at any depth) is deleted, failed, missing, broken (its
last validation failed, or a full refresh found its files changed) or otherwise not a complete
backup of the reconciler is not usable either, whatever its own validations say: it counts as
broken (``broken_backup`` drift naming the base, not a base for the next export, not `latest`,
not validated for the retention floors), and its bases are still never pruned while it is kept.
"""

from __future__ import annotations

from ..model import BackupState, ObservedBackup, ScheduleInventory


def usable(b: ObservedBackup) -> bool:
    """Complete, ours, and not known to be broken: something a restore or a chain can use (its
    own state only: ``Chains.usable`` also asks its bases)."""
    return b.state == BackupState.COMPLETE and b.kind is not None and not b.broken


def _why_not(b: ObservedBackup) -> str:
    """Why ``b``, a base, is not usable (it is not: ``usable(b)`` is False)."""
    if b.state == BackupState.DELETED:
        return f"is deleted ({b.error})" if b.error else "was deleted outside an apply (its manifest .backup is gone)"
    if b.state in (BackupState.FAILED, BackupState.ABANDONED):
        return f"is {b.state.value}" + (f" ({b.error})" if b.error else "")
    if (b.state == BackupState.COMPLETE and b.kind is None) or b.state == BackupState.UNMANAGED:
        return "is not a backup of this reconciler"
    if b.state != BackupState.COMPLETE:
        return f"is {b.state.value}, not complete"
    if b.mismatch is not None:
        return f"was changed behind the reconciler's back ({b.mismatch})"
    last = b.last_validation()
    return "failed validation" + (f" ({last.detail})" if last and last.detail else "")


class Chains:
    """The chain of each backup of one inventory, judged once per backup (a plan asks per backup
    several times; a walk per question would be quadratic in a chain's length)."""

    def __init__(self, inventory: ScheduleInventory) -> None:
        self._by_name = inventory.by_name
        #: name -> None (whole), or (the base that breaks it and why, the incrementals between)
        self._known: dict[str, tuple[str, tuple[str, ...]] | None] = {}

    def _judge(self, b: ObservedBackup) -> tuple[str, tuple[str, ...]] | None:
        # walk down (iteratively: a chain may be long) to a full, a bad base, or a known backup
        walk: list[ObservedBackup] = []
        seen: set[str] = set()
        cur: ObservedBackup | None = b
        found: tuple[str, tuple[str, ...]] | None = None
        while cur is not None and cur.kind == "incremental" and cur.base:
            if cur.name in self._known:
                known = self._known[cur.name]
                found = None if known is None else (known[0], (cur.name, *known[1]))
                break
            if cur.name in seen:
                found = (f"its chain loops at {cur.name}", ())
                break
            seen.add(cur.name)
            walk.append(cur)
            base = self._by_name.get(cur.base)
            if base is None:
                found = (f"its base {cur.base} is missing", ())
                break
            if not usable(base):
                found = (f"its base {cur.base} {_why_not(base)}", ())
                break
            cur = base
        # fill in, nearest the bad base first: each one's path is the names between it and the base
        for w in reversed(walk):
            self._known[w.name] = found
            if found is not None:
                found = (found[0], (w.name, *found[1]))
        return self._known.get(b.name)

    def problem(self, b: ObservedBackup) -> str | None:
        """Why a restore of ``b`` would fail for want of a base (None: its chain is whole, or it is
        a full), naming the base, and the incrementals between when it is not ``b``'s own."""
        if b.kind != "incremental" or not b.base:
            return None
        found = self._known[b.name] if b.name in self._known else self._judge(b)
        if found is None:
            return None
        why, between = found
        return why + (f" (through {', '.join(between)})" if between else "")

    def usable(self, b: ObservedBackup) -> bool:
        """Usable itself, and so is every base of its chain."""
        return usable(b) and self.problem(b) is None
