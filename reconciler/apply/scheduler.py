"""The action scheduler: a plan's actions in dependency order, independent ones in parallel
(``parallelism`` at a time), at most one export per service at a time, and at most one drill per
schedule at a time (a drill of the source and of each copy share the schedule's scratch names and
drop the leftovers of drills that are not running). An action whose
dependency failed is skipped, and says which; a failed action does not stop unrelated ones;
once the apply lock is lost (taken over, or its lease ran out while renewals failed) nothing new
starts, and the apply says so once. Every action ends in an ``Outcome``: executors
return them, and an executor that raises is a failed outcome, never a crashed apply."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from ..errors import ReconcilerError
from ..model import (
    Action,
    ActionType,
    CloudRestoreAction,
    ConfigureAction,
    CopyAction,
    ExportAction,
    Outcome,
    OutcomeStatus,
    PruneAction,
    RecoverAction,
    RestoreAction,
    ValidateAction,
)
from ..redact import redact
from .cloud_restore import run_cloud_restore
from .configure import run_configure
from .context import ApplyContext
from .copy import run_copy
from .export import run_export
from .prune import run_prune
from .recover import run_recover
from .restore import run_restore
from .validate import run_validate

#: the executor of each kind of action (each takes its own action class)
EXECUTORS: dict[type[Action], Callable[[ApplyContext, Any], Outcome]] = {
    ConfigureAction: run_configure,
    ExportAction: run_export,
    CopyAction: run_copy,
    ValidateAction: run_validate,
    RestoreAction: run_restore,
    CloudRestoreAction: run_cloud_restore,
    RecoverAction: run_recover,
    PruneAction: run_prune,
}


def _run_one(ctx: ApplyContext, action: Action) -> Outcome:
    started = ctx.clock()
    executor = EXECUTORS.get(type(action))
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


def run_actions(
    actions: list[Action], ctx: ApplyContext, parallelism: int, lock_lost: Callable[[], str | None]
) -> list[Outcome]:
    """``lock_lost`` says why the apply may no longer start work (None while it holds its locks)."""
    status: dict[str, OutcomeStatus] = {}
    outcomes: list[Outcome] = []
    ids = {a.id for a in actions}
    pending = list(actions)
    running: dict[Future[Outcome], Action] = {}
    exporting: set[str] = set()
    drilling: set[str] = set()  # schedules with a drill running
    said_lost = False

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
                drill = _drill_of(action)
                if drill is not None and drill in drilling:
                    continue
                if len(running) >= parallelism:
                    break
                pending.remove(action)
                why_lost = lock_lost()
                if why_lost:
                    if not said_lost:
                        ctx.console.warn(
                            f"{why_lost}: no new action starts; what runs goes on, and the next apply adopts what "
                            "this one started"
                        )
                        said_lost = True
                    now = ctx.clock()
                    finish(action, Outcome(action.id, OutcomeStatus.SKIPPED, f"not started: {why_lost}", now, now))
                    continue
                if action.type == ActionType.EXPORT and action.service:
                    exporting.add(action.service)
                if drill is not None:
                    drilling.add(drill)
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
                drilling.discard(_drill_of(action) or "")
                finish(action, fut.result())
    return outcomes


def _drill_of(action: Action) -> str | None:
    """The schedule of a drill (a validate action at level drill), else None."""
    if isinstance(action, ValidateAction) and action.drill_service is not None:
        return action.schedule or action.snapshot or ""
    return None
