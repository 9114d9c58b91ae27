"""Golden renders of a plan with every action type, every drift type and a warning.
Regenerate with UPDATE_GOLDEN=1 after a deliberate change, and review the diff."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from reconciler.model import UTC, Action, ActionType, Drift, DriftType, Plan
from reconciler.render import plan_markdown, plan_text
from reconciler.render.markdown import COMMENT_LIMIT
from reconciler.schemas import validate_plan

GOLDEN = Path(__file__).parent / "golden"


def full_plan() -> Plan:
    loc = "s3://acme-ch-backups/clickhouse/analytics/daily/"
    actions = (
        Action(
            "configure/analytics/backupConfiguration",
            ActionType.CONFIGURE,
            "backupPeriodInHours 24 → 12",
            service="analytics",
            details={"setting": "backupConfiguration", "changes": {"backupPeriodInHours": [24, 12]}},
        ),
        Action(
            "export/analytics/daily/20261125T030000Z",
            ActionType.EXPORT,
            "slot 20261125T030000Z of cron '0 3 * * *' has no complete backup; the newest is 20261124T030000Z (1d3h ago)",  # noqa: E501 (an exact expected string)
            service="analytics",
            schedule="daily",
            bucket="primary",
            backup="20261125T030000Z",
            details={"kind": "incremental", "base": "20261124T030000Z", "location": loc + "20261125T030000Z/"},
        ),
        Action(
            "validate/analytics/daily/20261125T030000Z",
            ActionType.VALIDATE,
            "validate the new backup after export: manifest level",
            ("export/analytics/daily/20261125T030000Z",),
            "analytics",
            "daily",
            "primary",
            "20261125T030000Z",
            {"level": "manifest", "location": loc + "20261125T030000Z/"},
        ),
        Action(
            "restore/shop-into-staging",
            ActionType.RESTORE,
            "declared restore not done yet: 20261124T030000Z of daily into service staging (shop → shop_restored)",
            service="staging",
            schedule="daily",
            bucket="primary",
            backup="20261124T030000Z",
            details={"restore": "shop-into-staging", "databases": {"shop": "shop_restored"}},
        ),
        Action(
            "prune/analytics/daily/20261101T030000Z",
            ActionType.PRUNE,
            "not kept: outside keep_daily=7, keep_weekly=4; no kept backup depends on it",
            ("export/analytics/daily/20261125T030000Z",),
            "analytics",
            "daily",
            "primary",
            "20261101T030000Z",
            {"location": loc + "20261101T030000Z/", "state": "complete", "size": 1234},
        ),
    )
    drift = tuple(
        Drift(
            t,
            f"example of {t.value} | with a pipe",
            schedule="daily" if i % 2 else None,
            service=None if i % 2 else "analytics",
        )
        for i, t in enumerate(DriftType)
    )
    return Plan(
        datetime(2026, 11, 25, 6, 0, tzinfo=UTC),
        "sha256:" + "a" * 64,
        "sha256:" + "b" * 64,
        actions,
        drift,
        (
            "schedule daily: bucket primary is in eu-west-1 and service analytics in us-east-1; data transfer is charged",  # noqa: E501 (an exact expected string)
        ),
    )


def check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs from the golden file (UPDATE_GOLDEN=1 to accept)"


def test_text_render_matches_golden() -> None:
    check("plan.txt", plan_text(full_plan()))


def test_markdown_render_matches_golden() -> None:
    check("plan.md", plan_markdown(full_plan()))


def test_full_plan_is_valid_json_plan() -> None:
    assert validate_plan(full_plan().to_json()) is None


def test_markdown_stays_under_githubs_comment_limit() -> None:
    p = full_plan()
    many = tuple(
        Action(
            f"prune/analytics/daily/{i:06d}",
            ActionType.PRUNE,
            "not kept: " + "x" * 200,
            service="analytics",
            schedule="daily",
            bucket="primary",
            backup=f"{i:06d}",
        )
        for i in range(2000)
    )
    big = Plan(p.now, p.config_digest, p.state_digest, many, p.drift, p.warnings)
    md = plan_markdown(big)
    assert len(md) <= COMMENT_LIMIT
    assert "cut to stay under GitHub's" in md
    assert md.count("| prune |") < 2000 and "2000 prune" in md
