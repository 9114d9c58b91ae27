"""``missing_privilege``, pure: the needs of exports and restores, the decision on recorded
``system.grants`` rows (cross-checked against the server's own ``CHECK GRANT`` answers for the
same user), and the plan that withholds what lacks a grant."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from reconciler.model import DriftType, Scope
from reconciler.model.privileges import (
    GrantRow,
    Need,
    PrivilegeState,
    export_needs,
    grants_cover,
    restore_needs,
    rows_cover,
)
from reconciler.plan import build_plan
from tests.unit.test_plan_unit import NOW, backup, make, restore_decl

RECORDED = json.loads((Path(__file__).parent / "data" / "grants-chdb-26.9.json").read_text())
ROWS = [GrantRow.from_json(r) for r in RECORDED["grants"]]
PARENTS = RECORDED["parents"]


def test_the_decision_on_recorded_rows_agrees_with_the_servers_check_grant() -> None:
    """18 needs, each asked of ClickHouse 26.9 (CHECK GRANT) for the user whose system.grants rows
    were recorded with them: a database grant, a table-level partial revoke, a group (CREATE)."""
    assert len(RECORDED["check_grant"]) == 18
    for privilege, database, table, answer in RECORDED["check_grant"]:
        assert rows_cover(Need(privilege, database, table), ROWS, PARENTS) is bool(answer), (privilege, database, table)


# what ClickHouse Cloud's default user has through default_role (its grants as SHOW GRANTS lists
# them, in the shape of system.grants rows): no BACKUP, and no access management of its own
CLOUD_DEFAULT_ROLE = [
    GrantRow(t, role_name="default_role")
    for t in ("SHOW", "SELECT", "INSERT", "ALTER", "CREATE", "DROP", "TRUNCATE", "OPTIMIZE", "S3", "dictGet")
]


def test_default_role_like_grants_lack_backup_and_a_partial_revoke_inside_the_object_denies() -> None:
    assert not rows_cover(Need("BACKUP"), CLOUD_DEFAULT_ROLE, PARENTS)
    assert rows_cover(Need("CREATE TABLE", "shop_r"), CLOUD_DEFAULT_ROLE, PARENTS)  # CREATE holds CREATE TABLE
    assert not rows_cover(Need("CREATE USER"), CLOUD_DEFAULT_ROLE, PARENTS)
    everything = [GrantRow("ALL", user_name="admin")]
    assert grants_cover(Need("BACKUP", "shop", "orders"), everything, PARENTS)
    revoked = [*everything, GrantRow("BACKUP", "shop", "secret", is_partial_revoke=True, user_name="admin")]
    assert grants_cover(Need("BACKUP", "shop", "orders"), revoked, PARENTS)
    assert not grants_cover(Need("BACKUP", "shop"), revoked, PARENTS)  # the database holds a revoked table
    assert grants_cover(Need("BACKUP", "shop_2"), [GrantRow("BACKUP", "shop", is_wildcard=True)], PARENTS)
    assert not grants_cover(Need("INSERT", "shop", "t"), [GrantRow("INSERT", "shop", "t", column="id")], PARENTS)


def test_needs_follow_clickhouses_own_checks() -> None:
    assert export_needs(Scope(databases=("shop",))) == (Need("BACKUP", "shop"),)
    assert export_needs(Scope(tables=("shop.orders",))) == (Need("BACKUP", "shop", "orders"),)
    assert [n.key for n in export_needs(Scope(access=True))] == ["BACKUP ON *.*"]
    assert [n.key for n in restore_needs(Scope(databases=("shop", "crm")), {"shop": "shop_r"})] == [
        "CREATE DATABASE ON `shop_r`.*",
        "CREATE TABLE ON `shop_r`.*",
        "INSERT ON `shop_r`.*",
    ]
    whole = [n.key for n in restore_needs(Scope(access=True), {})]
    assert whole[:3] == ["CREATE DATABASE ON *.*", "CREATE TABLE ON *.*", "INSERT ON *.*"]
    assert "CREATE USER ON *.*" in whole and "ROLE ADMIN ON *.*" in whole and "CREATE FUNCTION ON *.*" in whole
    assert len(restore_needs(Scope(), {})) == 3  # no access entities without include_access
    assert Need("BACKUP", "shop").grant("backup-bot") == "GRANT BACKUP ON `shop`.* TO `backup-bot`"


def _with(observed, service: str, granted: dict[str, bool], error: str | None = None):  # type: ignore[no-untyped-def]
    return replace(observed, privileges={service: PrivilegeState(service, "default", granted, "CHECK GRANT", error)})


def test_the_plan_withholds_the_export_and_what_waits_on_it() -> None:
    config, observed = make([], restores=restore_decl())
    plan = build_plan(config, _with(observed, "analytics", {"BACKUP ON `shop`.*": False}), NOW)
    assert plan.actions == ()
    (d,) = [d for d in plan.drift if d.type == DriftType.MISSING_PRIVILEGE]
    assert d.schedule == "daily" and d.detail.endswith("fix: GRANT BACKUP ON `shop`.* TO default")
    assert any("restore/into-staging is not planned: it depends on export/" in w for w in plan.warnings)
    # granted: planned as without the check
    granted = build_plan(config, _with(observed, "analytics", {"BACKUP ON `shop`.*": True}), NOW)
    assert [a.type.value for a in granted.actions] == ["export", "validate", "restore"]
    assert not [d for d in granted.drift if d.type == DriftType.MISSING_PRIVILEGE]


def test_the_plan_withholds_a_restore_whose_target_user_cannot_insert() -> None:
    config, observed = make([backup("20261125T030000Z")], restores=restore_decl())
    lacking = {
        "CREATE DATABASE ON `shop_restored`.*": True,
        "CREATE TABLE ON `shop_restored`.*": True,
        "INSERT ON `shop_restored`.*": False,
    }
    plan = build_plan(config, _with(observed, "staging", lacking), NOW)
    assert plan.actions == ()
    (d,) = plan.drift
    assert d.type == DriftType.MISSING_PRIVILEGE and d.service == "staging"
    assert "lacks INSERT ON `shop_restored`.*, which restore restore/into-staging needs" in d.detail
    # grants that could not be read: a warning, and nothing withheld
    unread = build_plan(config, _with(observed, "staging", {}, error="Code: 497. ACCESS_DENIED"), NOW)
    assert [a.type.value for a in unread.actions] == ["restore"]
    assert any("could not be read (Code: 497. ACCESS_DENIED)" in w for w in unread.warnings)


def test_a_whole_service_schedule_and_a_scoped_snapshot_on_one_service_need_both() -> None:
    from datetime import date

    from reconciler.model import Snapshot
    from reconciler.model.privileges import Need
    from reconciler.model.targets import select
    from reconciler.observe.privileges import declared_needs

    config, _ = make([])
    whole = replace(config.schedules["daily"], scope=Scope())
    snap = Snapshot("pre-upgrade", "analytics", "primary", Scope(databases=("shop",)), date(2026, 11, 20))
    config = replace(config, schedules={"daily": whole}, snapshots={"pre-upgrade": snap})
    needs = declared_needs(config, select(config, ()))["analytics"]  # once a TypeError: None < "shop"
    assert Need("BACKUP") in needs and Need("BACKUP", "shop") in needs
    assert needs.index(Need("BACKUP")) < needs.index(Need("BACKUP", "shop"))
