"""``status`` and ``force-unlock``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..apply import force_unlock
from ..bucket import layout
from ..bucket.records import RunStatus
from ..connections import Connections
from ..errors import ReconcilerError
from ..model import Config, LockInfo, Observed, ObserveOptions, Refresh
from ..observe import observe
from ..observe.inventory import read_runs
from ..render.status import status_report


def status_run(
    config: Config,
    conns: Connections,
    now: datetime,
    targets: Sequence[str] = (),
    refresh: Refresh = Refresh.FAST,
) -> dict[str, Any]:
    """The inventory per schedule as a JSON-ready document, with each bucket's last runs (sizes
    from the sidecars: what ClickHouse reported)."""
    observed = observe(config, conns, conns.clock(), targets, ObserveOptions(refresh))
    doc = status_report(config, observed, now)
    doc["runs"] = _last_runs(config, conns, observed)
    return doc


def _last_runs(config: Config, conns: Connections, observed: Observed) -> dict[str, list[dict[str, object]]]:
    out: dict[str, list[dict[str, object]]] = {}
    real_now = conns.clock()
    for name, state in observed.buckets.items():
        if not state.reachable:
            continue
        runs = read_runs(conns.store(name), layout.runs_prefix(config.buckets[name]))
        lock = state.lock
        for r in runs:
            # a run that never recorded its end, and no longer holds a live lock, was interrupted
            alive = lock is not None and lock.lock_id == r.get("run_id") and lock.lease_expires_at > real_now
            if r.get("status") == RunStatus.RUNNING.value and not alive:
                r["status"] = RunStatus.INTERRUPTED.value
        out[name] = runs
    return out


def unlock_run(config: Config, conns: Connections, bucket: str, lock_id: str) -> LockInfo:
    """Remove the apply lock of ``bucket`` if ``lock_id`` holds it; returns the lock removed."""
    if bucket not in config.buckets:
        raise ReconcilerError(f"--bucket {bucket} is not a bucket of the config", where=config.path)
    return force_unlock(conns.store(bucket), config.buckets[bucket], lock_id)
