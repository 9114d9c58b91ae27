"""Before a schedule's first prune runs, the backups the retention decision keeps are re-checked in
the bucket: each one's manifest must still be there, whatever the refresh the plan was made with
saw (a fast refresh trusts the index for settled folders). A difference stops the prunes of that
schedule, each with a line that says why; the next plan (or ``drift``) sees what changed.

One top-level listing per kept backup (the kept set is bounded by the retention rules), made once
per schedule per apply, 16 at a time."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from ..bucket import layout
from .context import ApplyContext

PARALLELISM = 16


class KeptCheck:
    def __init__(self, kept: Mapping[str, Sequence[str]]) -> None:
        self.kept = {k: tuple(v) for k, v in kept.items()}
        self._results: dict[str, str | None] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def problem(self, ctx: ApplyContext, schedule: str) -> str | None:
        """Why the prunes of ``schedule`` must not run (None: they may). Checked once; the prunes
        of the schedule that ask meanwhile wait for the answer."""
        with self._guard:
            lock = self._locks.setdefault(schedule, threading.Lock())
        with lock:
            if schedule not in self._results:
                self._results[schedule] = self._check(ctx, schedule)
                if self._results[schedule]:
                    ctx.console.warn(self._results[schedule] or "")
            return self._results[schedule]

    def _check(self, ctx: ApplyContext, schedule: str) -> str | None:
        names = self.kept.get(schedule, ())
        if not names:
            return None
        s = ctx.config.schedules[schedule]
        bucket = ctx.config.buckets[s.bucket]
        store = ctx.conns.store(s.bucket)

        def gone(name: str) -> bool:
            folder = layout.backup_prefix(bucket, s.service, schedule, name)
            objects, _ = store.list_top(folder)
            return not any(o.key == folder + layout.MANIFEST for o in objects)

        with ThreadPoolExecutor(min(PARALLELISM, len(names))) as pool:
            missing = [n for n, g in zip(names, pool.map(gone, names), strict=True) if g]
        if not missing:
            return None
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        return (
            f"prunes of schedule {schedule} stopped: the manifest .backup of {shown}, which retention keeps, "
            "is gone from the bucket (deleted outside the reconciler?); nothing of the schedule is pruned "
            "until a plan sees the bucket as it is (run drift, or apply --refresh full)"
        )
