"""What a plan keeps of each schedule it prunes: the complete backups the observation saw that
no prune of the plan removes. ``apply`` re-checks them in the bucket before the first prune of
the schedule (docs/retention.md, "Before a prune"). Pure."""

from __future__ import annotations

from ..model import ActionType, BackupState, Config, Observed, Plan


def kept_backups(plan: Plan, observed: Observed, config: Config) -> dict[str, tuple[str, ...]]:
    """Per schedule with a prune in its own bucket in ``plan``: the names of its complete managed
    backups there that the plan does not prune, oldest first."""
    pruned: dict[str, set[str]] = {}
    for a in plan.actions:
        if a.type != ActionType.PRUNE or not a.schedule or not a.backup or getattr(a, "snapshot", None):
            continue
        s = config.schedules.get(a.schedule)
        if s is not None and a.bucket == s.bucket:
            pruned.setdefault(a.schedule, set()).add(a.backup)
    out: dict[str, tuple[str, ...]] = {}
    for schedule, names in pruned.items():
        inv = observed.schedules.get(schedule)
        if inv is None:
            continue
        out[schedule] = tuple(
            b.name
            for b in inv.backups
            if b.state == BackupState.COMPLETE and b.kind is not None and b.name not in names
        )
    return out
