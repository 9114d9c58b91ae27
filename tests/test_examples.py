"""Every config in examples/ is valid (with its ${VAR}s set), and the CI examples parse."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from reconciler.config import load_config

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CONFIGS = sorted(p for p in EXAMPLES.glob("*.yaml"))
CI = sorted(p for p in (EXAMPLES / "ci").rglob("*.yml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_example_config_is_valid(path: Path) -> None:
    names = set(re.findall(r"\$\{([A-Z0-9_]+)\}", path.read_text()))
    env = {n: f"value-of-{n.lower()}" for n in names}
    for n in names:
        if "DSN" in n:
            env[n] = "chdb:///tmp/example"
        if "ENDPOINT" in n:
            env[n] = "http://127.0.0.1:9000"
        if n == "BACKUP_ROLE_ARN":
            env[n] = "arn:aws:iam::123456789012:role/clickhouse-backups"
    config = load_config(str(path), env=env)
    assert config.schedules


def test_there_are_examples_for_every_provider() -> None:
    providers = {b.provider.value for p in CONFIGS for b in load_config(str(p), env=_any_env(p)).buckets.values()}
    assert providers == {"s3", "gcs", "azure"}


def _any_env(path: Path) -> dict[str, str]:
    names = set(re.findall(r"\$\{([A-Z0-9_]+)\}", path.read_text()))
    return {
        n: "chdb:///tmp/x"
        if "DSN" in n
        else ("http://127.0.0.1:1" if "ENDPOINT" in n else "arn:aws:iam::1:role/r" if "ARN" in n else "v")
        for n in names
    }


@pytest.mark.parametrize("path", CI, ids=[str(p.relative_to(EXAMPLES)) for p in CI])
def test_ci_example_parses_and_runs_the_reconciler(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict)
    assert "reconciler " in path.read_text()
