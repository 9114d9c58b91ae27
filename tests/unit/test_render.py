"""Golden renders of a plan with every action type, every drift type and a warning.
Regenerate with UPDATE_GOLDEN=1 after a deliberate change, and review the diff."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from reconciler.model import (
    UTC,
    Action,
    ConfigureAction,
    Drift,
    DriftType,
    ExportAction,
    Plan,
    PruneAction,
    RestoreAction,
    ValidateAction,
    ValidationLevel,
)
from reconciler.render import plan_markdown, plan_text
from reconciler.render.markdown import COMMENT_LIMIT
from reconciler.schemas import validate_plan

GOLDEN = Path(__file__).parent.parent / "golden"


def full_plan() -> Plan:
    loc = "s3://acme-ch-backups/clickhouse/analytics/daily/"
    actions = (
        ConfigureAction(
            id="configure/analytics/backupConfiguration",
            reason="backupPeriodInHours 24 → 12",
            service="analytics",
            setting="backupConfiguration",
            method="PATCH",
            before={"backupPeriodInHours": 24},
            after={"backupPeriodInHours": 12},
            changes={"backupPeriodInHours": {"before": 24, "after": 12}},
        ),
        ExportAction(
            id="export/analytics/daily/20261125T030000Z",
            reason="slot 20261125T030000Z of cron '0 3 * * *' has no complete backup; the newest is 20261124T030000Z (1d3h ago)",  # noqa: E501 (an exact expected string)
            service="analytics",
            schedule="daily",
            bucket="primary",
            backup="20261125T030000Z",
            kind="incremental",
            base="20261124T030000Z",
            location=loc + "20261125T030000Z/",
            chain=("20261124T030000Z",),
        ),
        ValidateAction(
            id="validate/analytics/daily/20261125T030000Z",
            reason="validate the new backup after export: manifest level",
            depends_on=("export/analytics/daily/20261125T030000Z",),
            service="analytics",
            schedule="daily",
            bucket="primary",
            backup="20261125T030000Z",
            level=ValidationLevel.MANIFEST,
            location=loc + "20261125T030000Z/",
        ),
        RestoreAction(
            id="restore/shop-into-staging",
            reason="declared restore not done yet: 20261124T030000Z of daily into service staging (shop → shop_restored)",  # noqa: E501
            service="staging",
            schedule="daily",
            bucket="primary",
            backup="20261124T030000Z",
            restore="shop-into-staging",
            from_service="analytics",
            kind="full",
            base=None,
            databases={"shop": "shop_restored"},
            location=loc + "20261124T030000Z/",
        ),
        PruneAction(
            id="prune/analytics/daily/20261101T030000Z",
            reason="not kept: outside keep_daily=7, keep_weekly=4; no kept backup depends on it",
            depends_on=("export/analytics/daily/20261125T030000Z",),
            service="analytics",
            schedule="daily",
            bucket="primary",
            backup="20261101T030000Z",
            location=loc + "20261101T030000Z/",
            state="complete",
            size=1234,
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
        PruneAction(
            id=f"prune/analytics/daily/{i:06d}",
            reason="not kept: " + "x" * 200,
            service="analytics",
            schedule="daily",
            bucket="primary",
            backup=f"{i:06d}",
            location=f"s3://acme-ch-backups/clickhouse/analytics/daily/{i:06d}/",
            state="complete",
        )
        for i in range(2000)
    )
    big = Plan(p.now, p.config_digest, p.state_digest, many, p.drift, p.warnings)
    md = plan_markdown(big)
    assert len(md) <= COMMENT_LIMIT
    assert "cut to stay under GitHub's" in md
    assert md.count("| prune |") < 2000 and "2000 prune" in md


def test_every_action_survives_its_json_form() -> None:
    """to_json/from_json are inverse for every kind of action (a saved plan is applied as read)."""
    for a in full_plan().actions:
        back = Action.from_json(a.to_json())
        assert type(back) is type(a) and back == a, a.id
    assert Plan.from_json(full_plan().to_json()) == full_plan()


def test_validate_counts_say_one_schedule_and_two_schedules() -> None:
    from reconciler.render.text import validate_text

    one = {"services": 1, "buckets": 2, "schedules": 1, "restores": 0, "snapshots": 1}
    assert (
        validate_text("c.yaml", one, ()) == "c.yaml: valid (1 service, 2 buckets, 1 schedule, 0 restores, 1 snapshot)\n"
    )
    two = {"services": 2, "buckets": 1, "schedules": 2, "restores": 1}
    assert validate_text("c.yaml", two, ()) == "c.yaml: valid (2 services, 1 bucket, 2 schedules, 1 restore)\n"
