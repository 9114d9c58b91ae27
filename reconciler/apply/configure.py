"""``configure``: PATCH/POST/DELETE a Cloud service's backup settings through the Cloud API."""

from __future__ import annotations

from ..model import Action, Outcome, OutcomeStatus
from .context import ApplyContext


def run_configure(ctx: ApplyContext, action: Action) -> Outcome:
    now = ctx.clock()
    return Outcome(action.id, OutcomeStatus.FAILED, "configure actions are not supported by this version", now, now)
