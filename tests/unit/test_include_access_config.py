"""``include_access`` in the config: on whole-service schedules and snapshots only."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.config import load_config
from reconciler.errors import ConfigError

BASE = """version: 1
services: {analytics: {dsn: "chdb:///tmp/x"}}
buckets: {primary: {provider: s3, bucket: acme-ch-backups}}
schedules:
  entire: {service: analytics, bucket: primary, cron: "0 3 * * *", include_access: true}
snapshots:
  pre-upgrade: {service: analytics, bucket: primary, include_access: true}
"""


def test_whole_service_schedules_and_snapshots_carry_access_in_their_scope(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(BASE)
    config = load_config(str(p), env={})
    assert config.schedules["entire"].scope.access and config.schedules["entire"].scope.whole_service
    assert config.snapshots["pre-upgrade"].scope.access


def test_a_narrowed_snapshot_with_include_access_is_refused_at_the_key(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(BASE.replace("include_access: true}\n", "include_access: true, tables: [shop.orders]}\n", 2)[:])
    with pytest.raises(ConfigError) as e:
        load_config(str(p), env={})
    lines = e.value.lines()
    assert any(
        "but snapshot `pre-upgrade` lists `tables`" in line and "at snapshots.pre-upgrade.include_access" in line
        for line in lines
    ), lines
    assert any("but schedule `entire` lists `tables`" in line for line in lines), lines
