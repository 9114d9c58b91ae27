"""Build a plan: a pure function of (desired state, observed state, now) (docs/plan.md).

No I/O and no clock here: the same inputs always give the same plan, which is what makes a
saved plan reviewable and ``--now`` trustworthy.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ..model import ACTION_ORDER, Config, Drift, DriftType, Observed, Plan
from ..model.targets import select
from .adopt import decide_adoptions
from .configure import decide_configure
from .copies import decide_copies
from .immutability import hold_locked, lock_drift
from .privileges import withhold_unprivileged
from .restores import decide_restore
from .schedules import ScheduleDecision, decide_schedule
from .snapshots import decide_snapshot_restore, decide_snapshots
from .storage import estimate_storage

__all__ = ["build_plan"]


def build_plan(config: Config, observed: Observed, now: datetime, targets: Iterable[str] = ()) -> Plan:
    targets = tuple(targets)
    sel = select(config, targets)
    drift: list[Drift] = []
    warnings: list[str] = list(config.warnings)

    for name in sorted(sel.buckets):
        b = observed.buckets[name]
        if not b.reachable:
            drift.append(Drift(DriftType.MISSING_BUCKET, b.error or "cannot be reached", bucket=name))
    for name in sorted(sel.services):
        s = observed.services[name]
        if not s.reachable:
            drift.append(Drift(DriftType.UNREACHABLE_SERVICE, s.error or "cannot be reached", service=name))

    decisions: dict[str, ScheduleDecision] = {}
    for name in sorted(sel.schedules):
        schedule = config.schedules[name]
        inv = observed.schedules.get(name)
        if inv is None:
            continue  # its bucket is missing: reported above
        decisions[name] = decide_schedule(
            schedule,
            config.buckets[schedule.bucket],
            inv,
            now,
            observed.services[schedule.service].reachable,
            _reachable(observed, schedule.validate.drill.service) if schedule.validate.drill else True,
        )
        decide_adoptions(
            schedule,
            config.buckets[schedule.bucket],
            inv,
            observed.adoptable.get(name, {}),
            observed.service_databases.get(schedule.service),
            decisions[name],
        )

    for name, dec in decisions.items():
        schedule = config.schedules[name]
        if not schedule.copies:
            continue
        copied = decide_copies(
            schedule,
            dict(config.buckets),
            observed.schedules[name],
            dict(observed.copies.get(name, {})),
            dec,
            now,
            _reachable(observed, schedule.validate.drill.service) if schedule.validate.drill else True,
        )
        dec.actions += copied.actions
        dec.drift += copied.drift
        dec.warnings += copied.warnings

    actions, cloud_drift, cloud_warnings = decide_configure(config, observed, sel)
    drift += cloud_drift
    warnings += cloud_warnings
    for service, leftovers in sorted(observed.drill_leftovers.items()):
        if leftovers:
            warnings.append(
                f"service {service} holds scratch databases of drills that did not finish ({', '.join(leftovers)}); "
                "apply drops them"
            )
    for dec in decisions.values():
        actions += dec.actions
        drift += dec.drift
        warnings += dec.warnings
    snapshots = decide_snapshots(config, observed, sel, now)
    actions += snapshots.actions
    drift += snapshots.drift
    warnings += snapshots.warnings
    for name in sorted(sel.restores):
        restore = config.restores[name]
        if restore.source.snapshot is not None:
            action, warning = decide_snapshot_restore(restore, config, observed, snapshots)
        else:
            action, warning = decide_restore(restore, config, observed, decisions)
        if action:
            actions.append(action)
        if warning:
            warnings.append(warning)

    actions, privilege_drift, privilege_warnings = withhold_unprivileged(config, observed, actions)
    drift += privilege_drift
    warnings += privilege_warnings

    drift += lock_drift(config, observed, sel)
    actions, held = hold_locked(config, observed, actions, now)

    rank = {t: i for i, t in enumerate(ACTION_ORDER)}
    actions.sort(key=lambda a: (rank[a.type], a.id))
    storage = estimate_storage(config, observed, actions, sel)
    return Plan(
        now=now,
        config_digest=config.digest,
        state_digest=observed.digest,
        actions=tuple(actions),
        drift=tuple(drift),
        warnings=tuple(warnings),
        targets=targets,
        held=tuple(held),
        storage=storage,
        refresh=observed.refresh.value,
    )


def _reachable(observed: Observed, service: str) -> bool:
    state = observed.services.get(service)
    return state is not None and state.reachable
