"""The grants of each service's ClickHouse user, for what the declared exports and restores need
(model/privileges.py). Read only; what cannot be read is recorded, not raised.

First ``CHECK GRANT <privilege> ON <target>`` per need: the server's own check (roles, partial
revokes, wildcards), which needs no privilege of its own (checked on ClickHouse 26.9 through
chdb). A server without ``CHECK GRANT`` (a syntax error) is asked for ``system.grants`` of the
user and its enabled roles and ``system.privileges`` (needs ``SHOW USERS, SHOW ROLES``), decided
by ``rows_cover``. When neither can be read the state says why and the plan checks nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..clickhouse import ClickHouse
from ..connections import Connections
from ..errors import ClickHouseError, ReconcilerError
from ..model import Config, Scope, ServiceState
from ..model.privileges import GrantRow, Need, PrivilegeState, export_needs, restore_needs, rows_cover
from ..model.targets import Selection
from ..redact import redact

SYNTAX_ERROR = 62

GRANTS_SQL = (
    "SELECT user_name, role_name, toString(access_type), database, table, column, is_partial_revoke, is_wildcard "
    "FROM system.grants WHERE user_name = currentUser() OR role_name IN (SELECT role_name FROM system.enabled_roles)"
)
PRIVILEGES_SQL = "SELECT toString(privilege), toString(parent_group) FROM system.privileges"


def declared_needs(config: Config, sel: Selection) -> dict[str, list[Need]]:
    """Per service: what the selected schedules' and snapshots' exports and the selected SQL
    restores (on their target) need."""
    out: dict[str, list[Need]] = {}
    for name in sorted(sel.schedules):
        s = config.schedules[name]
        out.setdefault(s.service, []).extend(export_needs(s.scope))
    for name in sorted(sel.snapshots):
        snap = config.snapshots[name]
        out.setdefault(snap.service, []).extend(export_needs(snap.scope))
    for name in sorted(sel.restores):
        r = config.restores[name]
        scope = source_scope(config, name)
        if scope is None or r.target.service is None:
            continue
        out.setdefault(r.target.service, []).extend(restore_needs(scope, r.target.databases))
    # ``*.*`` (database None) first: a whole-service schedule and a scoped one on the same service
    # need both, and None does not compare with a name
    return {svc: sorted(set(needs), key=_need_order) for svc, needs in out.items()}


def _need_order(n: Need) -> tuple[str, bool, str, bool, str]:
    return (n.privilege, n.database is not None, n.database or "", n.table is not None, n.table or "")


def source_scope(config: Config, restore: str) -> Scope | None:
    """The scope of what a SQL restore reads (a schedule's or a snapshot's), None for the Cloud path."""
    src = config.restores[restore].source
    if src.schedule is not None:
        return config.schedules[src.schedule].scope
    if src.snapshot is not None:
        return config.snapshots[src.snapshot].scope
    return None


def observe_privileges(
    config: Config, conns: Connections, services: Mapping[str, ServiceState], sel: Selection
) -> dict[str, PrivilegeState]:
    out: dict[str, PrivilegeState] = {}
    for service, needs in declared_needs(config, sel).items():
        state = services.get(service)
        if state is None or not state.reachable or not needs:
            continue
        try:
            out[service] = _read(service, conns.clickhouse(service), needs)
        except ReconcilerError as e:
            out[service] = PrivilegeState(service, error=redact(e.message))
    return out


def _read(service: str, ch: ClickHouse, needs: Iterable[Need]) -> PrivilegeState:
    user = str(ch.query("SELECT currentUser()")[0][0])
    needs = list(needs)
    try:
        granted = {n.key: bool(int(ch.query(f"CHECK GRANT {n.privilege} ON {n.on}")[0][0])) for n in needs}
        return PrivilegeState(service, user, granted, "CHECK GRANT")
    except ClickHouseError as e:
        if e.code != SYNTAX_ERROR:
            raise
    rows = [
        GrantRow(str(r[2]), _opt(r[3]), _opt(r[4]), _opt(r[5]), bool(r[6]), bool(r[7]), _opt(r[0]), _opt(r[1]))
        for r in ch.query(GRANTS_SQL)
    ]
    parents = {str(p): _opt(g) for p, g in ch.query(PRIVILEGES_SQL)}
    return PrivilegeState(service, user, {n.key: rows_cover(n, rows, parents) for n in needs}, "system.grants")


def _opt(v: object) -> str | None:
    return None if v is None or v == "" or v == "\\N" else str(v)
