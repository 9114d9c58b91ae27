"""Object Lock in the plan (docs/compliance.md). Pure.

- ``config_drift`` for every bucket a selected schedule or copy uses that declares ``immutability``
  while its lock is absent or weaker: no Object Lock or no default retention, ``governance``
  where ``compliance`` is declared, or fewer days;
- a prune of a backup whose lock has not ended at ``now`` — a schedule's backup, a copy in a copy
  bucket, or a snapshot past ``keep_until`` — is taken out of the plan and listed as held until that
  date (the apply asks the store again: a refusal there is held too).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ..model import Action, Config, Drift, DriftType, Held, LockMode, Observed, PruneAction
from ..model.snapshots import ObservedSnapshot
from ..model.targets import Selection


def lock_drift(config: Config, observed: Observed, sel: Selection) -> list[Drift]:
    used = set(sel.buckets)
    for name in sel.schedules:
        s = config.schedules[name]
        used.add(s.bucket)
        used.update(c.bucket for c in s.copies)
    out: list[Drift] = []
    for name in sorted(used):
        bucket = config.buckets.get(name)
        state = observed.buckets.get(name)
        if bucket is None or bucket.immutability is None or state is None or state.object_lock is None:
            continue
        want, got = bucket.immutability, state.object_lock
        declared = f"{want.mode.value}, {want.days} days"
        problem = None
        if got.error:
            problem = f"its object lock configuration cannot be read ({got.error})"
        elif not got.lock_enabled:
            problem = "Object Lock is not enabled on the bucket"
        elif got.mode is None or not got.days:
            problem = "the bucket has Object Lock but no default retention"
        elif want.mode == LockMode.COMPLIANCE and got.mode != LockMode.COMPLIANCE.value:
            problem = f"the bucket's default retention is {got.mode}, {got.days} days (governance can be bypassed)"
        elif got.days < want.days:
            problem = f"the bucket's default retention is {got.mode}, {got.days} days: fewer days"
        if problem:
            out.append(
                Drift(
                    DriftType.CONFIG_DRIFT,
                    f"{bucket.url()}: immutability declares {declared}, but {problem}",
                    bucket=name,
                )
            )
    return out


def hold_locked(
    config: Config, observed: Observed, actions: Iterable[Action], now: datetime
) -> tuple[list[Action], list[Held]]:
    """The actions without the prunes of backups still locked at ``now``, and those as held."""
    kept: list[Action] = []
    held: list[Held] = []
    snapshots: dict[tuple[str, str], ObservedSnapshot] = {}
    for x in observed.snapshots:  # looked up per prune: a scan each time would be quadratic
        snapshots.setdefault((x.name, x.bucket), x)
    for a in actions:
        until = _locked_until(config, observed, snapshots, a) if isinstance(a, PruneAction) else None
        if until is None or until <= now:
            kept.append(a)
            continue
        assert a.bucket is not None and a.backup is not None
        state = observed.buckets.get(a.bucket)
        mode = state.object_lock.mode if state and state.object_lock and state.object_lock.mode else None
        declared = config.buckets[a.bucket].immutability
        mode = mode or (declared.mode.value if declared else "object lock")
        where = {"snapshot": a.snapshot} if a.snapshot is not None else {"schedule": a.schedule}
        held.append(Held(a.bucket, a.backup, until, f"object lock ({mode})", **where))
    return kept, held


def _locked_until(
    config: Config, observed: Observed, snapshots: dict[tuple[str, str], ObservedSnapshot], a: PruneAction
) -> datetime | None:
    """When the lock of the backup ``a`` prunes ends, as observed: a schedule's backup in its own
    bucket, a copy in a copy bucket, or a snapshot's folder (None: not locked, or not known)."""
    if a.snapshot is not None:
        snap = snapshots.get((a.snapshot, a.bucket)) if a.bucket is not None else None
        return snap.folder.locked_until if snap is not None and snap.folder is not None else None
    if a.schedule is None or a.schedule not in config.schedules or a.bucket is None:
        return None
    if config.schedules[a.schedule].bucket == a.bucket:
        inv = observed.schedules.get(a.schedule)
    else:
        inv = observed.copies.get(a.schedule, {}).get(a.bucket)
    found = inv.find(a.backup) if inv is not None else None
    return found.locked_until if found is not None else None
