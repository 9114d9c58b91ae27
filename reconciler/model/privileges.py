"""What the declared exports and restores need of the service's ClickHouse user, and (pure) the
decision whether ``system.grants`` rows give it (docs/plan.md, ``missing_privilege``).

The needs follow ClickHouse's own checks (src/Backups: ``getRequiredAccessToBackup`` and
``RestorerFromBackup::checkAccessForObjectsFoundInBackup``, ``AccessRestorerFromBackup``):

- BACKUP of a table, a database or ``ALL``: ``BACKUP`` on it (``*.*`` for the whole service,
  which also covers the access tables of ``include_access``);
- RESTORE: per database ``CREATE DATABASE`` (its default ``create_database`` mode creates one if
  absent), per table ``CREATE TABLE`` and ``INSERT``; access entities: ``CREATE USER``,
  ``CREATE ROLE``, ``ROLE ADMIN``, ``CREATE SETTINGS PROFILE``, ``CREATE ROW POLICY``,
  ``CREATE QUOTA``; functions: ``CREATE FUNCTION``.

Observation asks the server ``CHECK GRANT <privilege> ON <target>`` for each need (exact: the
server's own check, through roles and partial revokes; no ``SHOW USERS`` needed). Where the
server has no ``CHECK GRANT``, it reads ``system.grants`` (needs ``SHOW USERS, SHOW ROLES``) and
``system.privileges`` and decides with ``grants_cover`` below.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .desired import Scope

ACCESS_PRIVILEGES = (
    "CREATE USER",
    "CREATE ROLE",
    "ROLE ADMIN",
    "CREATE SETTINGS PROFILE",
    "CREATE ROW POLICY",
    "CREATE QUOTA",
    "CREATE FUNCTION",
)

_SIMPLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _ident(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def user_ident(name: str) -> str:
    """A user name as GRANT takes it: bare when it is a plain identifier."""
    return name if _SIMPLE.fullmatch(name) else _ident(name)


@dataclass(frozen=True, order=True)
class Need:
    """One privilege on one object: ``database`` None is ``*.*``, ``table`` None is ``db.*``."""

    privilege: str
    database: str | None = None
    table: str | None = None

    @property
    def on(self) -> str:
        if self.database is None:
            return "*.*"
        return f"{_ident(self.database)}." + (_ident(self.table) if self.table else "*")

    @property
    def key(self) -> str:
        return f"{self.privilege} ON {self.on}"

    def grant(self, user: str) -> str:
        return f"GRANT {self.privilege} ON {self.on} TO {user_ident(user)}"


def export_needs(scope: Scope) -> tuple[Need, ...]:
    if scope.databases:
        return tuple(Need("BACKUP", d) for d in scope.databases)
    if scope.tables:
        return tuple(Need("BACKUP", *t.split(".", 1)) for t in scope.tables)
    return (Need("BACKUP"),)


def restore_needs(scope: Scope, renames: Mapping[str, str]) -> tuple[Need, ...]:
    """What a RESTORE of a backup of ``scope`` (renamed as ``renames``) needs on the target."""
    out: list[Need] = []
    if scope.tables:
        for t in scope.tables:
            db, _, table = t.partition(".")
            if renames and db not in renames:
                continue
            target = renames.get(db, db)
            out += [Need("CREATE DATABASE", target), Need("CREATE TABLE", target, table), Need("INSERT", target, table)]
    elif scope.databases or renames:
        for db in scope.databases or tuple(renames):
            if renames and db not in renames:
                continue
            target = renames.get(db, db)
            out += [Need("CREATE DATABASE", target), Need("CREATE TABLE", target), Need("INSERT", target)]
    else:
        out += [Need("CREATE DATABASE"), Need("CREATE TABLE"), Need("INSERT")]
        if scope.access:
            out += [Need(p) for p in ACCESS_PRIVILEGES]
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class GrantRow:
    """A row of ``system.grants`` (the columns the decision reads)."""

    access_type: str
    database: str | None = None
    table: str | None = None
    column: str | None = None
    is_partial_revoke: bool = False
    is_wildcard: bool = False
    user_name: str | None = None
    role_name: str | None = None

    @classmethod
    def from_json(cls, d: Mapping[str, object]) -> GrantRow:
        def opt(k: str) -> str | None:
            v = d.get(k)
            return None if v is None else str(v)

        return cls(
            str(d["access_type"]),
            opt("database"),
            opt("table"),
            opt("column"),
            bool(d.get("is_partial_revoke")),
            bool(d.get("is_wildcard")),
            opt("user_name"),
            opt("role_name"),
        )


def _ancestors(privilege: str, parents: Mapping[str, str | None]) -> set[str]:
    out, p = {privilege}, parents.get(privilege)
    while p and p not in out:
        out.add(p)
        p = parents.get(p)
    out.add("ALL")
    return out


def _match(pattern: str | None, name: str | None, wildcard: bool) -> bool | None:
    """Does a row's ``database``/``table`` (None: all) take in the need's (None: all)? None when
    the row is narrower than the need (it names one object of many)."""
    if pattern is None:
        return True
    if name is None:
        return None
    return name.startswith(pattern) if wildcard else name == pattern


def _level(row: GrantRow) -> int:
    return 0 if row.database is None else 1 if row.table is None else 2


def grants_cover(need: Need, rows: Iterable[GrantRow], parents: Mapping[str, str | None]) -> bool:
    """Whether the rows of one grantee give ``need``: a grant of the privilege (or of a group that
    holds it, by ``system.privileges.parent_group``) on the object or a wider one, and no partial
    revoke of it on the object or inside it that is at least as specific as that grant."""
    family = _ancestors(need.privilege, parents)
    grants, revokes = [], []
    for r in rows:
        if r.access_type not in family:
            continue
        db = _match(r.database, need.database, r.is_wildcard and r.table is None)
        tb = _match(r.table, need.table, r.is_wildcard and r.table is not None) if db is not False else False
        if r.is_partial_revoke:
            if db is not False and tb is not False:  # on the object, or inside it
                revokes.append(r)
        elif db is True and tb is True and r.column is None:
            grants.append(r)
    if not grants:
        return False
    best = max(_level(g) for g in grants)
    return not any(_level(r) >= best for r in revokes)


def rows_cover(need: Need, rows: Iterable[GrantRow], parents: Mapping[str, str | None]) -> bool:
    """Over the rows of a user and its enabled roles: any grantee that gives the need gives it."""
    by: dict[tuple[str | None, str | None], list[GrantRow]] = {}
    for r in rows:
        by.setdefault((r.user_name, r.role_name), []).append(r)
    return any(grants_cover(need, group, parents) for group in by.values())


@dataclass(frozen=True)
class PrivilegeState:
    """What observation learnt of a service's user: per need key, granted or not."""

    service: str
    user: str | None = None
    granted: Mapping[str, bool] = field(default_factory=dict)
    source: str = ""  # "CHECK GRANT" | "system.grants"
    error: str | None = None  # why the grants could not be read
