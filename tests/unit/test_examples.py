"""Every config in examples/ is valid (with its ${VAR}s set), and the CI examples parse."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from reconciler.config import load_config

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"
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
        if n.endswith("WEBHOOK_URL"):
            env[n] = "https://hooks.example.com/services/T0/B0/token"
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
        else ("http://127.0.0.1:1" if "ENDPOINT" in n or "URL" in n else "arn:aws:iam::1:role/r" if "ARN" in n else "v")
        for n in names
    }


@pytest.mark.parametrize("path", CI, ids=[str(p.relative_to(EXAMPLES)) for p in CI])
def test_ci_example_parses_and_runs_the_reconciler(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict)
    assert "reconciler " in path.read_text()


def _validate_steps() -> list[tuple[str, str, dict[str, object]]]:
    """(workflow, command, the step's or job's env) of every `reconciler validate` in examples/ci."""
    found: list[tuple[str, str, dict[str, object]]] = []
    for path in CI:
        doc = yaml.safe_load(path.read_text())
        name = str(path.relative_to(EXAMPLES / "ci"))
        jobs = doc["jobs"] if isinstance(doc.get("jobs"), dict) else doc  # GitHub nests them
        for job_name, job in jobs.items():
            if not isinstance(job, dict):
                continue
            for step in job.get("steps") or []:  # GitHub Actions
                run = step.get("run") or ""
                for line in run.splitlines():
                    if line.strip().startswith("reconciler validate"):
                        found.append(
                            (f"{name}:{job_name}", line.strip(), {**(job.get("env") or {}), **(step.get("env") or {})})
                        )
            for line in job.get("script") or []:  # GitLab CI
                if isinstance(line, str) and line.strip().startswith("reconciler validate"):
                    found.append((f"{name}:{job_name}", line.strip(), dict(job.get("variables") or {})))
    return found


def test_the_ci_validate_steps_run_without_any_secret() -> None:
    """The CI examples validate in a step that has no secrets (a pull request from a fork has
    none), and that exact command passes on the example config with no environment at all."""
    import os
    import shlex
    import subprocess
    import sys

    steps = _validate_steps()
    assert {s[0].split(":")[0] for s in steps} == {"github/plan-on-pull-request.yml", "gitlab/.gitlab-ci.yml"}
    root = EXAMPLES.parent
    for where, command, env in steps:
        assert not env, f"{where}: the validate step must not get secrets ({sorted(env)})"
        argv = shlex.split(command)
        p = subprocess.run(
            [sys.executable, "-m", "reconciler", *argv[1:]],
            cwd=EXAMPLES / "ci",
            env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(root)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert p.returncode == 0, (where, p.stdout, p.stderr)
        assert "valid (1 service," in p.stdout and "ANALYTICS_DSN" in p.stdout, p.stdout
        assert "error" not in p.stderr, p.stderr


def test_the_kubernetes_example_runs_drift_per_service_and_writes_metrics() -> None:
    docs = list(yaml.safe_load_all((EXAMPLES / "kubernetes" / "drift-cronjob.yml").read_text()))
    [job] = [d for d in docs if d["kind"] == "CronJob"]
    [container] = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    command = " ".join(container["args"])
    assert "reconciler drift -f /config/reconciler.yaml --target analytics" in command
    assert "--metrics-file /metrics/" in command
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    # every secret comes from a Secret, none is written in the manifest
    assert all("valueFrom" in e for e in container["env"])
