"""What each command does, as functions of a config, the connections, options, a console and a
confirm callback, returning values (docs/architecture.md). The CLI parses flags, calls these,
renders what they return and picks the exit code; these never print.

- ``plan_run``/``drift_run``: observe and plan;
- ``apply_run``: the whole apply workflow (locks, stale check, confirmation, execution);
- ``status_run``: the inventory with the last runs;
- ``read_saved_plan``: a plan file, checked.
"""

from __future__ import annotations

from .apply import ApplyOptions, ApplyRun, apply_run, lease_from_env
from .planning import Planned, drift_run, plan_run, write_metrics_file
from .saved import read_saved_plan
from .session import load, parse_now
from .status import status_run, unlock_run

__all__ = [
    "ApplyOptions",
    "ApplyRun",
    "Planned",
    "apply_run",
    "drift_run",
    "lease_from_env",
    "load",
    "parse_now",
    "plan_run",
    "read_saved_plan",
    "status_run",
    "unlock_run",
    "write_metrics_file",
]
