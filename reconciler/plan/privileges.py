"""``missing_privilege``: an export or restore whose service's user lacks a grant it needs is not
planned; the drift names the grant and the GRANT statement that fixes it (docs/plan.md). Pure.

Observation read the user's grants for every need of the declared exports and restores
(observe/privileges.py); here each planned export and SQL restore is held against them. What
depends on a withheld action (its validation, a restore of the backup it would make) is withheld
with it, with a warning that says why. A service whose grants could not be read is a warning,
and nothing is withheld: ClickHouse itself refuses at apply what the user may not do.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..model import Action, Config, Drift, DriftType, ExportAction, Observed, RestoreAction, Scope
from ..model.privileges import Need, PrivilegeState, export_needs, restore_needs


def _restore_scope(config: Config, action: RestoreAction) -> Scope | None:
    src = config.restores[action.restore].source if action.restore in config.restores else None
    if src is None:
        return None
    if src.schedule is not None:
        return config.schedules[src.schedule].scope
    if src.snapshot is not None:
        return config.snapshots[src.snapshot].scope
    return None


def _needs(config: Config, action: Action) -> tuple[Need, ...] | None:
    if isinstance(action, ExportAction):
        return export_needs(action.scope)
    if isinstance(action, RestoreAction):
        scope = _restore_scope(config, action)
        return restore_needs(scope, action.databases) if scope is not None else None
    return None


def withhold_unprivileged(
    config: Config, observed: Observed, actions: Sequence[Action]
) -> tuple[list[Action], list[Drift], list[str]]:
    """(the actions still planned, the missing_privilege drift, warnings)."""
    drift: list[Drift] = []
    warnings: list[str] = []
    withheld: dict[str, str] = {}  # action id -> why
    unread: set[str] = set()
    for a in actions:
        needs = _needs(config, a)
        if needs is None or a.service is None:
            continue
        state = observed.privileges.get(a.service)
        if state is None:
            continue
        if state.error is not None:
            unread.add(a.service)
            continue
        missing = [n for n in needs if state.granted.get(n.key) is False]
        if not missing:
            continue
        drift.append(_drift(a, state, missing))
        withheld[a.id] = f"{a.id} is not planned (missing privilege)"
    for service in sorted(unread):
        error = observed.privileges[service].error
        warnings.append(
            f"the grants of service {service}'s user could not be read ({error}); exports and restores are "
            "planned without checking them"
        )
    if not withheld:
        return list(actions), drift, warnings
    changed = True
    while changed:  # what depends on a withheld action is withheld with it
        changed = False
        for a in actions:
            if a.id in withheld:
                continue
            gone = [d for d in a.depends_on if d in withheld]
            if gone:
                withheld[a.id] = f"{a.id} waits on {gone[0]}"
                warnings.append(f"{a.id} is not planned: it depends on {gone[0]}, which lacks a privilege")
                changed = True
    kept = [a for a in actions if a.id not in withheld]
    return kept, drift, warnings


def _drift(action: Action, state: PrivilegeState, missing: list[Need]) -> Drift:
    user = state.user or "the service's user"
    what = ", ".join(n.key for n in missing)
    fix = "; ".join(n.grant(user) for n in missing)
    kind = "export" if isinstance(action, ExportAction) else "restore"
    detail = (
        f"user {user} of service {action.service} lacks {what}, which {kind} {action.id} needs, so it is not "
        f"planned; fix: {fix}"
    )
    if isinstance(action, RestoreAction):
        return Drift(DriftType.MISSING_PRIVILEGE, detail, service=action.service)
    return Drift(DriftType.MISSING_PRIVILEGE, detail, schedule=action.schedule, service=action.service)
