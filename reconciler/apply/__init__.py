"""Carry out a plan (docs/commands.md): under the bucket locks, actions in dependency order,
independent ones in parallel, at most one export per service at a time. A failed action does
not stop unrelated ones; every outcome is returned and written to a run record."""

from __future__ import annotations

import json
import secrets
import socket
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from .. import layout
from ..errors import ReconcilerError, StalePlan
from ..model import Action, ActionType, Config, Outcome, OutcomeStatus, Plan, iso
from ..redact import redact
from .configure import run_configure
from .context import ApplyContext, wall_clock
from .export import run_export
from .index_update import refresh, touched_schedules
from .lock import BucketLock, LeaseKeeper, force_unlock
from .prune import run_prune
from .restore import run_restore
from .validate import run_validate

__all__ = [
    "check_references",
    "refresh",
    "wall_clock",
    "ApplyContext",
    "ApplyResult",
    "hold_locks",
    "execute",
    "new_run_id",
    "force_unlock",
    "BucketLock",
]

Executor = Callable[[ApplyContext, Action], Outcome]
EXECUTORS: dict[ActionType, Executor] = {
    ActionType.CONFIGURE: run_configure,
    ActionType.EXPORT: run_export,
    ActionType.VALIDATE: run_validate,
    ActionType.RESTORE: run_restore,
    ActionType.PRUNE: run_prune,
}

DEFAULT_LEASE = timedelta(minutes=10)


@dataclass(frozen=True)
class ApplyResult:
    run_id: str
    outcomes: tuple[Outcome, ...]

    @property
    def ok(self) -> bool:
        return all(o.status == OutcomeStatus.DONE for o in self.outcomes)

    def freed(self) -> tuple[int, int]:
        """(backups, bytes) deleted by prune actions."""
        pruned = [o for o in self.outcomes if o.status == OutcomeStatus.DONE and "freed_bytes" in o.facts]
        return len(pruned), sum(int(o.facts["freed_bytes"]) for o in pruned)

    def counts(self) -> dict[str, int]:
        return {s.value: sum(1 for o in self.outcomes if o.status == s) for s in OutcomeStatus}


def check_references(plan: Plan, config: Config) -> None:
    """A saved plan may only name what the config declares (it is data from a file: it may have
    been edited); refuse it whole before anything runs."""
    for a in plan.actions:
        for kind, name, known in (
            ("service", a.service, config.services),
            ("schedule", a.schedule, config.schedules),
            ("bucket", a.bucket, config.buckets),
        ):
            if name is not None and name not in known:
                raise StalePlan(
                    f"the saved plan's action {a.id} names {kind} {name}, which the config does not declare"
                )
        restore = a.details.get("restore")
        if a.type == ActionType.RESTORE and restore not in config.restores:
            raise StalePlan(
                f"the saved plan's action {a.id} names restore {restore}, which the config does not declare"
            )


def new_run_id(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


@contextmanager
def hold_locks(
    ctx: ApplyContext, buckets: Iterable[str], lease: timedelta = DEFAULT_LEASE
) -> Iterator[list[BucketLock]]:
    """Take the lock of every bucket prefix the run touches (in a fixed order, so that two
    applies over overlapping buckets cannot deadlock), renew them while the run lasts, and
    release them at the end, also on error."""
    locks: list[BucketLock] = []
    seen: set[tuple[str, str, str, str]] = set()
    try:
        for name in sorted(buckets):
            bucket = ctx.config.buckets[name]
            if layout.lock_scope(bucket) in seen:
                continue
            seen.add(layout.lock_scope(bucket))
            lock = BucketLock(ctx.conns.store(name), bucket, ctx.run_id, lease, ctx.clock)
            lock.acquire()
            locks.append(lock)
            if lock.taken_over:
                t = lock.taken_over
                ctx.console.warn(
                    f"took over the lock of bucket {name} from run {t.lock_id} on {t.host}, "
                    f"whose lease expired at {iso(t.lease_expires_at)}"
                )
        with LeaseKeeper(locks, every=max(1.0, lease.total_seconds() / 3)):
            yield locks
    finally:
        for lock in reversed(locks):
            lock.release()


def execute(plan: Plan, ctx: ApplyContext, parallelism: int = 4, locks: list[BucketLock] | None = None) -> ApplyResult:
    """Run the plan's actions; write a run record into every locked bucket."""
    locks = locks or []
    started = ctx.clock()
    _write_run_records(ctx, locks, plan, started, None, [])
    outcomes = _run_actions(list(plan.actions), ctx, max(1, parallelism), lambda: any(lk.lost for lk in locks))
    refresh(ctx, touched_schedules(plan))
    _write_run_records(ctx, locks, plan, started, ctx.clock(), outcomes)
    return ApplyResult(ctx.run_id, tuple(outcomes))


def _run_one(ctx: ApplyContext, action: Action) -> Outcome:
    started = ctx.clock()
    executor = EXECUTORS.get(action.type)
    if executor is None:
        return Outcome(
            action.id,
            OutcomeStatus.FAILED,
            f"{action.type.value} actions are not supported by this version",
            started,
            started,
        )
    try:
        return executor(ctx, action)
    except ReconcilerError as e:
        return Outcome(action.id, OutcomeStatus.FAILED, redact(e.line()[len("error: ") :]), started, ctx.clock())
    except Exception as e:  # an executor bug must not take the other actions down with it
        return Outcome(action.id, OutcomeStatus.FAILED, redact(f"{e.__class__.__name__}: {e}"), started, ctx.clock())


def _run_actions(
    actions: list[Action], ctx: ApplyContext, parallelism: int, lock_lost: Callable[[], bool]
) -> list[Outcome]:
    status: dict[str, OutcomeStatus] = {}
    outcomes: list[Outcome] = []
    ids = {a.id for a in actions}
    pending = list(actions)
    running: dict[Future[Outcome], Action] = {}
    exporting: set[str] = set()

    def finish(action: Action, outcome: Outcome) -> None:
        status[action.id] = outcome.status
        outcomes.append(outcome)
        ctx.console.action_finished(action, outcome)

    with ThreadPoolExecutor(parallelism, thread_name_prefix="action") as pool:
        while pending or running:
            for action in list(pending):
                deps = [d for d in action.depends_on]
                missing = [d for d in deps if d not in ids]
                bad = [d for d in deps if status.get(d) in (OutcomeStatus.FAILED, OutcomeStatus.SKIPPED)]
                if missing or bad:
                    pending.remove(action)
                    why = f"depends on {(missing or bad)[0]}, which " + (
                        "is not in the plan" if missing else "did not succeed"
                    )
                    now = ctx.clock()
                    finish(action, Outcome(action.id, OutcomeStatus.SKIPPED, why, now, now))
                    continue
                if any(status.get(d) != OutcomeStatus.DONE for d in deps):
                    continue
                if action.type == ActionType.EXPORT and action.service in exporting:
                    continue
                if len(running) >= parallelism:
                    break
                pending.remove(action)
                if lock_lost():
                    now = ctx.clock()
                    finish(action, Outcome(action.id, OutcomeStatus.SKIPPED, "the apply lock was lost", now, now))
                    continue
                if action.type == ActionType.EXPORT and action.service:
                    exporting.add(action.service)
                ctx.console.action_started(action)
                running[pool.submit(_run_one, ctx, action)] = action
            if not running:
                for action in pending:  # only a dependency cycle can leave work here
                    now = ctx.clock()
                    finish(action, Outcome(action.id, OutcomeStatus.SKIPPED, "dependency cycle", now, now))
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                action = running.pop(fut)
                if action.type == ActionType.EXPORT and action.service:
                    exporting.discard(action.service)
                finish(action, fut.result())
    return outcomes


def _write_run_records(
    ctx: ApplyContext,
    locks: list[BucketLock],
    plan: Plan,
    started: datetime,
    finished: datetime | None,
    outcomes: list[Outcome],
) -> None:
    by_id = {a.id: a for a in plan.actions}
    record = {
        "format_version": 1,
        "run_id": ctx.run_id,
        "host": socket.gethostname(),
        "status": "running"
        if finished is None
        else ("ok" if all(o.status == OutcomeStatus.DONE for o in outcomes) else "failed"),
        "started_at": iso(started),
        "finished_at": iso(finished) if finished else None,
        "plan": {"now": iso(plan.now), "config_digest": plan.config_digest, "state_digest": plan.state_digest},
        "summary": {s.value: sum(1 for o in outcomes if o.status == s) for s in OutcomeStatus},
        "actions": [
            {
                "id": o.action_id,
                "type": by_id[o.action_id].type.value if o.action_id in by_id else None,
                "status": o.status.value,
                "detail": redact(o.detail),
                "started_at": iso(o.started_at) if o.started_at else None,
                "finished_at": iso(o.finished_at) if o.finished_at else None,
                "facts": dict(o.facts),
            }
            for o in outcomes
        ],
    }
    data = redact(json.dumps(record, indent=2)).encode()
    for lock in locks:
        try:
            lock.store.write(layout.run_key(lock.bucket, ctx.run_id), data)
        except ReconcilerError as e:
            ctx.console.warn(f"could not write the run record to bucket {lock.bucket.name}: {redact(e.message)}")
