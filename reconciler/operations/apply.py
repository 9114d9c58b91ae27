"""``apply``: the workflow around carrying out a plan, as Terraform keeps it in its backend and
not in the command. Under the locks of every bucket the run touches: observe; drop the scratch
databases of drills that crashed; take the saved plan (refused as stale when the state changed)
or make a fresh one; ask; execute (the prunes of a schedule after its kept backups are re-checked);
and refresh the indexes when there was nothing to do."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

from ..apply import DEFAULT_LEASE, ApplyContext, execute, hold_locks, new_run_id, refresh
from ..apply.drill import drop_leftovers
from ..apply.kept_check import KeptCheck
from ..config import parse_duration
from ..connections import Connections
from ..console import Console
from ..errors import ReconcilerError
from ..model import ApplyResult, Config, Observed, ObserveOptions, Plan, Refresh
from ..model.targets import select
from ..observe import observe
from ..plan import build_plan
from ..plan.kept import kept_backups
from .planning import Planned
from .saved import check_state


@dataclass(frozen=True)
class ApplyOptions:
    now: datetime  # what a fresh plan is made as of (a saved plan keeps its own unless given)
    saved: Plan | None = None
    saved_path: Path | None = None
    targets: Sequence[str] = ()
    parallelism: int = 4
    lease: timedelta = DEFAULT_LEASE
    #: observe again after the run, and plan, for the metrics file
    observe_after: bool = False
    #: how the apply observes: None is the saved plan's refresh, else fast
    refresh: Refresh | None = None

    def refresh_mode(self) -> Refresh:
        if self.refresh is not None:
            return self.refresh
        return Refresh(self.saved.refresh) if self.saved is not None else Refresh.FAST


@dataclass(frozen=True)
class ApplyRun:
    plan: Plan
    result: ApplyResult | None  # None: nothing to do
    after: Planned | None = None
    dropped: dict[str, list[str]] = field(default_factory=dict)  # scratch databases dropped, per service

    @property
    def ok(self) -> bool:
        return self.result is None or self.result.ok


def lease_from_env(text: str | None) -> timedelta:
    """The apply lock's lease: ``RECONCILER_LOCK_LEASE`` (a duration), else 10 minutes."""
    if not text:
        return DEFAULT_LEASE
    try:
        lease = parse_duration(text)
    except ValueError as e:
        raise ReconcilerError(f"RECONCILER_LOCK_LEASE: {e}") from None
    if lease.total_seconds() <= 0:
        raise ReconcilerError(f"RECONCILER_LOCK_LEASE={text!r} must be longer than 0s")
    return lease


#: shown a fresh plan before anything runs (the CLI prints it)
ShowPlan = Callable[[Plan], object]
#: asked before a fresh plan's actions run; raises to stop the apply (the CLI asks on a terminal)
Confirm = Callable[[Plan], None]


def apply_run(
    config: Config,
    conns: Connections,
    options: ApplyOptions,
    console: Console,
    show: ShowPlan,
    confirm: Confirm,
) -> ApplyRun:
    saved = options.saved
    targets = list(saved.targets) if saved is not None else list(options.targets)
    plan_now = options.now
    ctx = ApplyContext(config, conns, console, new_run_id(conns.clock()), conns.clock)
    sel = select(config, targets)
    mode = options.refresh_mode()
    with hold_locks(ctx, sel.buckets, lease=options.lease) as locks:
        observed = observe(config, conns, conns.clock(), targets, ObserveOptions(mode))
        dropped = _drop_drill_leftovers(conns, console, observed)
        if saved is not None:
            check_state(saved, observed.digest, options.saved_path)
            the_plan = saved
        else:
            the_plan = build_plan(config, observed, plan_now, targets)
            show(the_plan)
        stale = {n for n, inv in observed.schedules.items() if not inv.index_current}
        stale_snapshots = observed.stale_snapshot_indexes
        if not the_plan.actions:
            # warm the index of each schedule (and of snapshots) for later plans
            refresh(ctx, stale, mode=mode, snapshots=stale_snapshots)
            return ApplyRun(the_plan, None, _after(config, conns, options, plan_now, targets), dropped)
        if saved is None:
            confirm(the_plan)
        ctx = replace(ctx, kept_check=KeptCheck(kept_backups(the_plan, observed, config)))
        result = execute(the_plan, ctx, options.parallelism, locks, stale, mode, stale_snapshots)
    return ApplyRun(the_plan, result, _after(config, conns, options, plan_now, targets), dropped)


def _drop_drill_leftovers(conns: Connections, console: Console, observed: Observed) -> dict[str, list[str]]:
    dropped: dict[str, list[str]] = {}
    for service, dbs in observed.drill_leftovers.items():
        dropped[service] = drop_leftovers(conns.clickhouse(service), dbs)
        console.info(
            f"dropped scratch databases of drills that did not finish on {service}: {', '.join(dropped[service])}"
        )
    return dropped


def _after(
    config: Config, conns: Connections, options: ApplyOptions, now: datetime, targets: Sequence[str]
) -> Planned | None:
    if not options.observe_after:
        return None
    observed = observe(config, conns, conns.clock(), targets, ObserveOptions(options.refresh_mode()))
    return Planned(observed, build_plan(config, observed, now, targets))
