"""Restore a ClickHouse Cloud backup into a new service through the Cloud API."""

from __future__ import annotations

from ..model import Action, Outcome, OutcomeStatus
from .context import ApplyContext


def run_cloud_restore(ctx: ApplyContext, action: Action) -> Outcome:
    now = ctx.clock()
    return Outcome(action.id, OutcomeStatus.FAILED, "restores into a new Cloud service are not supported yet", now, now)
