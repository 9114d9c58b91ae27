"""The metrics file (``--metrics-file``): the plan's storage estimate per bucket, and values
written in full (bytes and Unix seconds as integers)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from reconciler.model import BackupState
from reconciler.plan import build_plan
from reconciler.render.metrics import render_metrics
from tests.unit.test_plan_unit import NOW, backup, make

pytestmark = pytest.mark.clock  # the pure planner, as of NOW

GIB = 2**30


def samples(text: str, name: str) -> dict[str, str]:
    """``{labels: value}`` of one metric."""
    out = {}
    for line in text.splitlines():
        if line.startswith(f"clickhouse_backup_{name}{{"):
            head, _, value = line.rpartition(" ")
            out[head[len(f"clickhouse_backup_{name}") :]] = value
    return out


def test_the_storage_estimate_is_in_the_metrics_file() -> None:
    a = replace(backup("20261123T030000Z"), total_size=3 * GIB)
    b = replace(backup("20261124T030000Z"), total_size=GIB + 5)
    config, observed = make([a, b])
    config = replace(config, buckets={"primary": replace(config.buckets["primary"], price_per_gib_month=0.5)})
    observed = replace(observed, schedules={"daily": replace(observed.schedules["daily"], backups=(a, b))})
    plan = build_plan(config, observed, NOW)
    [estimate] = plan.storage
    assert estimate.bytes_now == 4 * GIB + 5 and estimate.bytes_after == 5 * GIB + 10  # the export as b
    text = render_metrics(config, observed, plan)
    assert "# TYPE clickhouse_backup_storage_bytes gauge" in text
    assert samples(text, "storage_bytes") == {
        '{bucket="primary",when="now"}': str(4 * GIB + 5),
        '{bucket="primary",when="after"}': str(5 * GIB + 10),
    }
    cost = {k: float(v) for k, v in samples(text, "storage_monthly_cost").items()}
    assert cost == {
        '{bucket="primary",when="now"}': estimate.monthly_cost_now,
        '{bucket="primary",when="after"}': estimate.monthly_cost_after,
    }
    assert cost['{bucket="primary",when="after"}'] == round((5 * GIB + 10) / GIB * 0.5, 6) == 2.5
    # exact, not 6 significant digits
    assert samples(text, "observed_timestamp_seconds") == {"{}": str(int(NOW.timestamp()))}
    assert samples(text, "backup_bytes")[
        '{schedule="daily",service="analytics",bucket="primary",state="complete"}'
    ] == str(4 * GIB + 5)
    assert samples(text, "backups")['{schedule="daily",service="analytics",bucket="primary",state="deleted"}'] == "0"


def test_without_a_price_only_the_bytes() -> None:
    config, observed = make([backup("20261124T030000Z", BackupState.COMPLETE)])
    text = render_metrics(config, observed, build_plan(config, observed, NOW))
    assert set(samples(text, "storage_bytes")) == {'{bucket="primary",when="now"}', '{bucket="primary",when="after"}'}
    assert "storage_monthly_cost" not in text
