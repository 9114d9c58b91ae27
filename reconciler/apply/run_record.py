"""The run record ``<prefix>/.reconciler/runs/<run-id>.json`` of every locked bucket: written when
the run starts (``running``) and again at its end, with every outcome (docs/bucket-layout.md)."""

from __future__ import annotations

import json
import socket
from datetime import datetime
from typing import Any

from ..bucket import layout
from ..bucket.records import ActionRecord, RunRecord, RunStatus
from ..errors import ReconcilerError
from ..model import Outcome, OutcomeStatus, Plan, iso
from ..redact import redact
from .context import ApplyContext
from .lock import BucketLock


def write_run_records(
    ctx: ApplyContext,
    locks: list[BucketLock],
    plan: Plan,
    started: datetime,
    finished: datetime | None,
    outcomes: list[Outcome],
) -> dict[str, Any]:
    by_id = {a.id: a for a in plan.actions}
    if finished is None:
        status = RunStatus.RUNNING
    else:
        ok = all(o.status in (OutcomeStatus.DONE, OutcomeStatus.HELD) for o in outcomes)
        status = RunStatus.OK if ok else RunStatus.FAILED
    record = RunRecord(
        run_id=ctx.run_id,
        host=socket.gethostname(),
        status=status,
        started_at=started,
        finished_at=finished,
        plan={"now": iso(plan.now), "config_digest": plan.config_digest, "state_digest": plan.state_digest},
        summary={s.value: sum(1 for o in outcomes if o.status == s) for s in OutcomeStatus},
        actions=[
            ActionRecord(
                id=o.action_id,
                type=by_id[o.action_id].type.value if o.action_id in by_id else None,
                status=o.status.value,
                detail=redact(o.detail),
                started_at=o.started_at,
                finished_at=o.finished_at,
                facts=dict(o.facts),
            )
            for o in outcomes
        ],
    )
    data = redact(record.encode().decode()).encode()
    for lock in locks:
        try:
            lock.store.write(layout.run_key(lock.bucket, ctx.run_id), data)
        except ReconcilerError as e:
            ctx.console.warn(f"could not write the run record to bucket {lock.bucket.name}: {redact(e.message)}")
    out: dict[str, Any] = json.loads(data)
    return out
