"""``--target NAME``: which services, schedules and restores a run is limited to."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import ReconcilerError
from .desired import Config


@dataclass(frozen=True)
class Selection:
    services: frozenset[str]
    schedules: frozenset[str]  # planned for
    restores: frozenset[str]
    buckets: frozenset[str]
    observed_schedules: frozenset[str]  # read: the planned ones and the sources of the restores
    snapshots: frozenset[str] = frozenset()  # planned for (made, validated, pruned)
    observed_snapshots: frozenset[str] = frozenset()  # read: the planned ones and the sources of the restores


def select(config: Config, targets: Iterable[str] = ()) -> Selection:
    """Everything when no target is named. A service selects its schedules and the restores
    into or out of it; a schedule selects itself and restores from it; a restore itself."""
    targets = list(targets)
    snapshots: set[str] = set()
    if not targets:
        schedules = set(config.schedules)
        restores = set(config.restores)
        snapshots = set(config.snapshots)
    else:
        known = set(config.services) | set(config.schedules) | set(config.restores) | set(config.snapshots)
        unknown = [t for t in targets if t not in known]
        if unknown:
            raise ReconcilerError(
                f"--target {unknown[0]} names no service, schedule, snapshot or restore in the config",
                where=config.path,
            )
        schedules, restores = set(), set()
        for t in targets:
            if t in config.snapshots:
                snapshots.add(t)
                restores |= {n for n, r in config.restores.items() if r.source.snapshot == t}
            if t in config.services:
                snapshots |= {n for n, s in config.snapshots.items() if s.service == t}
                restores |= {
                    n
                    for n, r in config.restores.items()
                    if r.source.snapshot and config.snapshots[r.source.snapshot].service == t
                }
            if t in config.schedules:
                schedules.add(t)
                restores |= {n for n, r in config.restores.items() if r.source.schedule == t}
            if t in config.restores:
                restores.add(t)
            if t in config.services:
                schedules |= {n for n, s in config.schedules.items() if s.service == t}
                restores |= {
                    n
                    for n, r in config.restores.items()
                    if r.target.service == t
                    or r.source.service == t
                    or (r.source.schedule and config.schedules[r.source.schedule].service == t)
                }
    services: set[str] = set()
    buckets: set[str] = set()
    observed = set(schedules)
    # a ClickHouse Cloud service with `cloud.api` is managed by itself (its backup settings)
    cloud = {n for n, s in config.services.items() if s.cloud and s.cloud.api}
    services |= cloud if not targets else cloud & set(targets)
    for n in schedules:
        s = config.schedules[n]
        services.add(s.service)
        buckets.add(s.bucket)
        buckets.update(c.bucket for c in s.copies)  # observed, and locked by apply: a copy writes there
        if s.validate.drill:
            services.add(s.validate.drill.service)
    observed_snapshots = set(snapshots)
    for n in snapshots:
        services.add(config.snapshots[n].service)
        buckets.add(config.snapshots[n].bucket)
    for n in restores:
        r = config.restores[n]
        if r.source.snapshot:
            sn = config.snapshots[r.source.snapshot]
            observed_snapshots.add(sn.name)
            services.add(sn.service)
            buckets.add(sn.bucket)
        if r.source.schedule:
            src = config.schedules[r.source.schedule]
            observed.add(r.source.schedule)
            services.add(src.service)
            buckets.add(src.bucket)
            if r.source.bucket:
                buckets.add(r.source.bucket)
        if r.source.service:
            services.add(r.source.service)
        if r.target.service:
            services.add(r.target.service)
    return Selection(
        frozenset(services),
        frozenset(schedules),
        frozenset(restores),
        frozenset(buckets),
        frozenset(observed),
        snapshots=frozenset(snapshots),
        observed_snapshots=frozenset(observed_snapshots),
    )
