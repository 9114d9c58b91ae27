"""chdb is an optional extra: without it the reconciler runs validate and plan against a server's
``http://`` DSN without ever importing chdb, and a ``chdb://`` DSN is one line naming the extra."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

#: run the CLI in a process where chdb cannot be imported (as if it were not installed), and
#: record every attempt to import it
NO_CHDB = """
import sys, importlib.abc
attempts = []
class NoChdb(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "chdb" or name.startswith("chdb."):
            attempts.append(name)
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None
sys.meta_path.insert(0, NoChdb())
import importlib.util
_find = importlib.util.find_spec
def find_spec(name, package=None):
    if name == "chdb":
        attempts.append("find_spec")
        return None
    return _find(name, package)
importlib.util.find_spec = find_spec
from reconciler.cli import main
rc = main(sys.argv[1:])
print("chdb import attempts:", [a for a in attempts if a != "find_spec"], file=sys.stderr)
sys.exit(rc)
"""

CONFIG = """\
version: 1
services:
  analytics: {{dsn: "{dsn}"}}
buckets:
  primary:
    provider: s3
    bucket: acme-ch-backups
    endpoint: http://127.0.0.1:9
    credentials: {{access_key_id: a, secret_access_key: "${{SECRET}}"}}
schedules:
  daily: {{service: analytics, bucket: primary, cron: "0 3 * * *"}}
"""


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SECRET": "s", "AWS_EC2_METADATA_DISABLED": "true"}
    return subprocess.run(
        [sys.executable, "-c", NO_CHDB, *args], env=env, capture_output=True, text=True, timeout=300, cwd=ROOT
    )


def test_http_dsn_never_imports_chdb(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG.format(dsn="http://default:${SECRET}@127.0.0.1:9"))
    for args in (("validate", "-f", str(cfg)), ("plan", "-f", str(cfg), "--now", "2026-11-25T06:00:00Z")):
        p = cli(*args)
        assert p.returncode == 0, p.stderr
        assert "chdb import attempts: []" in p.stderr, p.stderr
    assert "unreachable_service" in p.stdout  # the plan really tried the server


def test_chdb_dsn_without_chdb_is_one_line_naming_the_extra(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG.format(dsn=f"chdb://{tmp_path / 'chdb'}"))
    assert cli("validate", "-f", str(cfg)).returncode == 0  # validate needs no engine
    p = cli("plan", "-f", str(cfg))
    assert p.returncode == 1
    lines = [x for x in p.stderr.splitlines() if not x.startswith("chdb import attempts")]
    assert lines == [
        "error: service analytics uses the embedded ClickHouse engine (a chdb:// DSN), which is not installed; "
        f"install it with: pip install 'clickhouse-backup-reconciler[embedded]' ({cfg})"
    ]
