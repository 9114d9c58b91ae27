"""``missing_privilege`` end to end, with a ClickHouse user that really lacks grants.

The embedded engine reads ``config.xml`` from its working directory, and that file's
``users_config`` gives the ``default`` user the grants of its ``users.xml`` (checked on chdb 4.4 /
ClickHouse 26.9: ``CHECK GRANT BACKUP ON *.*`` then answers 0 and ``BACKUP`` fails with
ACCESS_DENIED, "it's necessary to have the grant BACKUP ON shop.*"). So the CLI runs here as a
subprocess in such a directory, with its own engine, the way ClickHouse Cloud's ``default_role``
(which has no ``BACKUP``) would meet it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from reconciler.model import Bucket
from tests.support.e2e import s3_bucket_doc, write_config
from tests.support.processes import ROOT, cli

NOW = "2026-11-25T06:00:00Z"

USERS = """<clickhouse>
  <users>
    <default><password></password><networks><ip>::/0</ip></networks><profile>default</profile><quota>default</quota>
      <grants>{grants}</grants>
    </default>
  </users>
  <profiles><default/></profiles>
  <quotas><default/></quotas>
</clickhouse>
"""


def engine_dir(tmp_path: Path, name: str, *grants: str) -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "users.xml").write_text(USERS.format(grants="".join(f"<query>{g}</query>" for g in grants)))
    (d / "config.xml").write_text(f"<clickhouse><users_config>{d / 'users.xml'}</users_config></clickhouse>\n")
    return d


def plan(cwd: Path, cfg: Path, env: dict[str, str], *more: str) -> subprocess.CompletedProcess[str]:
    return cli(env, *more, "-f", str(cfg), "--now", NOW, "--format", "json", ok=(), timeout=300, cwd=cwd)


def test_missing_grants_are_drift_with_the_grant_that_fixes_them_and_hold_back_what_needs_them(
    tmp_path: Path, s3_server: Any, s3_bucket: Bucket
) -> None:
    cfg = write_config(
        tmp_path / "c.yaml",
        {
            "services": {"analytics": {"dsn": f"chdb://{tmp_path / 'chdb'}"}},
            "buckets": {"primary": s3_bucket_doc(s3_bucket)},
            "schedules": {
                "daily": {"service": "analytics", "bucket": "primary", "databases": ["shop"], "cron": "0 3 * * *"}
            },
            "restores": {
                "copy": {"from": {"schedule": "daily"}, "to": {"service": "analytics", "databases": {"shop": "shop_r"}}}
            },
        },
    )
    env = {
        **os.environ,
        "TEST_S3_KEY": s3_server.access_key,
        "TEST_S3_SECRET": s3_server.secret_key,
        "PYTHONPATH": str(ROOT),
    }

    # like ClickHouse Cloud's default_role: everything a schema owner does, but no BACKUP
    no_backup = engine_dir(tmp_path, "no-backup", "GRANT SHOW, SELECT, INSERT, ALTER, CREATE, DROP, S3 ON *.*")
    p = plan(no_backup, cfg, env, "plan")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["actions"] == []  # the export is not planned, nor what depends on it
    (missing,) = [d for d in doc["drift"] if d["type"] == "missing_privilege"]
    assert missing == {
        "type": "missing_privilege",
        "service": "analytics",
        "schedule": "daily",
        "detail": "user default of service analytics lacks BACKUP ON `shop`.*, which export "
        "export/analytics/daily/20261125T030000Z needs, so it is not planned; "
        "fix: GRANT BACKUP ON `shop`.* TO default",
    }
    assert any("restore/copy is not planned: it depends on export/analytics/daily/" in w for w in doc["warnings"])
    d = plan(no_backup, cfg, env, "drift")
    assert d.returncode == 2 and "missing_privilege" in d.stdout

    # BACKUP given on shop, INSERT only there: the export is planned, the restore into shop_r is not
    backup_only = engine_dir(
        tmp_path, "backup-only", "GRANT SHOW, SELECT, CREATE, S3 ON *.*", "GRANT BACKUP, INSERT ON shop.*"
    )
    p = plan(backup_only, cfg, env, "plan")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert sorted(a["type"] for a in doc["actions"]) == ["export", "validate"]
    (missing,) = [d for d in doc["drift"] if d["type"] == "missing_privilege"]
    assert missing["detail"] == (
        "user default of service analytics lacks INSERT ON `shop_r`.*, which restore restore/copy needs, so it is "
        "not planned; fix: GRANT INSERT ON `shop_r`.* TO default"
    )
