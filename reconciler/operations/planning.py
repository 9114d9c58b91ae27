"""``plan`` and ``drift``: observe (reads only), then plan (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..connections import Connections
from ..errors import ReconcilerError
from ..model import Config, Observed, ObserveOptions, Plan, Refresh
from ..observe import observe
from ..plan import build_plan
from ..render.metrics import render_metrics, write_metrics


@dataclass(frozen=True)
class Planned:
    """A plan and the observation it was made from (the metrics file is computed from both)."""

    observed: Observed
    plan: Plan


def plan_run(
    config: Config,
    conns: Connections,
    now: datetime,
    targets: Sequence[str] = (),
    refresh: Refresh = Refresh.FAST,
) -> Planned:
    """Observe the real state (judged by the real clock) and plan as of ``now``."""
    observed = observe(config, conns, conns.clock(), targets, ObserveOptions(refresh))
    return Planned(observed, build_plan(config, observed, now, targets))


def drift_run(
    config: Config,
    conns: Connections,
    now: datetime,
    targets: Sequence[str] = (),
    refresh: Refresh = Refresh.FULL,
) -> Planned:
    """What deviates: the same observation (a full refresh unless told) and plan; the caller
    reports the plan's drift only."""
    return plan_run(config, conns, now, targets, refresh)


def write_metrics_file(path: Path | None, config: Config, planned: Planned | None, ok: bool | None = None) -> None:
    """Prometheus text for a textfile collector (``--metrics-file``), from a plan and its observation."""
    if path is None or planned is None:
        return
    try:
        write_metrics(str(path), render_metrics(config, planned.observed, planned.plan, ok))
    except OSError as e:
        raise ReconcilerError(f"cannot write the metrics file: {e.strerror}", where=str(path)) from None
