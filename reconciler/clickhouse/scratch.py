"""Names of the scratch databases restore drills create, shared by observe (to find leftovers of
drills that did not finish) and apply (to create and drop them)."""

from __future__ import annotations

import hashlib

from ..model import Config

SCRATCH = "reconciler_drill_"


def _h(text: str, n: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def scratch_prefix(config: Config, schedule: str, run_id: str | None = None) -> str:
    """``reconciler_drill_<schedule hash>_`` and, for one run, ``<run hash>_`` after it."""
    s = config.schedules[schedule]
    head = f"{SCRATCH}{_h(s.service + '/' + schedule, 8)}_"
    return head + (f"{_h(run_id, 6)}_" if run_id else "")
