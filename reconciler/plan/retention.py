"""Retention with the semantics of restic's ``forget`` (restic 0.16 and later), plus the floors
that make losing a needed backup impossible (docs/config.md, §4). Pure.

Rules look at complete backups, newest first, by slot time (UTC):
- ``keep_last N``: the N newest;
- ``keep_hourly/daily/weekly/monthly/yearly N``: the newest backup of each of the N newest
  hours/days/ISO weeks/months/years that have a backup;
- a count rule that is not used up (fewer periods with a backup than N) also keeps the *oldest*
  backup, with the reason ``oldest keep_daily=N`` (restic 0.16, issue #3624; for keep_last it
  changes nothing, as all backups are already kept);
- ``keep_within D``: every backup less than D older than the *newest* backup (not than now: a
  schedule that stopped does not age its last backups away). It never keeps the oldest extra.
A count of 0 (or a ``keep_within`` of 0) turns its rule off, as in restic, where 0 is the unset
default. A backup kept by any rule is kept. No rule at all keeps everything.

Floors, whatever the rules: the newest ``max(min_valid, 1)`` validated backups, or, when no
candidate is validated (the schedule validates nothing, or nothing yet), the newest
``max(min_valid, 1)`` complete ones; every backup younger than ``min_age`` (its age is
``now - slot``: a compliance floor, whatever the rules); every base, transitively, of a kept
incremental. (Running
exports and the plan's own export are the caller's: ``plan/schedules.py``.)

What restic does (read in restic/restic ``internal/restic/snapshot_policy.go``, ``ApplyPolicy``,
as of v0.16.0; moved to ``internal/data/snapshot_policy.go`` in v0.19): it sorts the snapshots
newest first and walks them once. ``--keep-within`` keeps a snapshot whose time is strictly after
``latest - within``, with no rule about the oldest. Each of keep-last/hourly/daily/weekly/
monthly/yearly with counts left (count > 0, or -1 for "unlimited") keeps the snapshot when its
period differs from the last one kept *or it is the last of the list* (the oldest), then counts
one down; keep-last's "period" is the snapshot's index, so it is always new. The source comment:
"also keep the oldest snapshot if the bucket has some counts left. This maximizes the history
length kept while some counts are left." That oldest clause is commit 182b9796e, "Issue #3624:
Preserve oldest snapshot when keep-* values are not satisfied" (changelog 0.16.0, "Keep oldest
snapshot when there are not enough snapshots"); 8da5a6649 (also v0.16.0) adds it to
``--keep-within-daily`` and the like, which this project does not have. Since v0.18.0
(b69c6408a) a snapshot kept only by that clause (same period as the last kept) has the reason
prefixed with "oldest" ("oldest daily snapshot"); here "oldest keep_daily=7". Counts are 0 when
not given, and 0 means off. An empty policy kept everything in v0.16 ("policy is empty"); since
v0.17 ``forget`` refuses to run with one ("no policy was specified, no snapshots will be
removed"): nothing is removed either way. restic ignores snapshots in the future when it takes
"latest", and measures ``--keep-within`` in calendar years/months/days/hours; here slots are not
in the future and ``keep_within`` is a plain duration.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..model import Retention

BUCKETS: tuple[tuple[str, Callable[[datetime], object]], ...] = (
    ("keep_hourly", lambda t: (t.year, t.month, t.day, t.hour)),
    ("keep_daily", lambda t: (t.year, t.month, t.day)),
    ("keep_weekly", lambda t: t.isocalendar()[:2]),
    ("keep_monthly", lambda t: (t.year, t.month)),
    ("keep_yearly", lambda t: t.year),
)
COUNT_RULES = ("keep_last",) + tuple(rule for rule, _ in BUCKETS)


@dataclass(frozen=True)
class Candidate:
    name: str
    time: datetime
    kind: str = "full"
    base: str | None = None
    validated: bool = False  # a successful validation, and not broken since
    #: False for the export this plan makes: the rules count it, the floor (what already exists
    #: and must survive whatever happens to that export) does not
    complete: bool = True


def _count(policy: Retention, rule: str) -> int:
    """The rule's count, 0 when it is off (absent or 0; negative counts are refused by the schema)."""
    n = getattr(policy, rule)
    return n if n is not None and n > 0 else 0


def _within(policy: Retention) -> timedelta | None:
    w = policy.keep_within
    return w if w is not None and w > timedelta(0) else None


def has_rules(policy: Retention) -> bool:
    """False when every count is absent or 0 and there is no keep_within: keep everything."""
    return any(_count(policy, rule) for rule in COUNT_RULES) or _within(policy) is not None


def _newest_first(candidates: Sequence[Candidate]) -> list[Candidate]:
    return sorted(candidates, key=lambda c: (c.time, c.name), reverse=True)


def kept_by_rules(policy: Retention, candidates: Sequence[Candidate]) -> dict[str, list[str]]:
    """name -> the rules that keep it (names not in the result are not kept by any rule)."""
    newest_first = _newest_first(candidates)
    kept: dict[str, list[str]] = {}
    if not has_rules(policy):
        return {c.name: ["no retention rule (keep everything)"] for c in newest_first}
    oldest = len(newest_first) - 1
    for rule in COUNT_RULES:
        n = _count(policy, rule)
        bucket_of = dict(BUCKETS).get(rule)
        last: object = None
        left = n
        for nr, c in enumerate(newest_first):
            if left == 0:
                break
            b = bucket_of(c.time) if bucket_of else nr  # keep_last: every backup is its own period
            if b != last or nr == oldest:  # a new period, or the oldest while counts are left
                reason = f"{rule}={n}"
                kept.setdefault(c.name, []).append(f"oldest {reason}" if b == last else reason)
                last = b
                left -= 1
    within = _within(policy)
    if within is not None and newest_first:
        horizon = newest_first[0].time - within
        for c in newest_first:
            if c.time > horizon:  # strictly after, as restic's Time.After
                kept.setdefault(c.name, []).append(f"keep_within={_dur(within)}")
    return kept


def retain(
    policy: Retention, candidates: Sequence[Candidate], now: datetime | None = None
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """(kept: name -> reasons, pruned: name -> reason) over complete backups. ``now`` ages the
    backups for ``min_age`` (without it, min_age keeps nothing extra)."""
    kept = kept_by_rules(policy, candidates)
    newest_first = _newest_first(candidates)
    floor = max(policy.min_valid, 1)
    validated = [c for c in newest_first if c.validated]
    if validated:
        label = f"min_valid={policy.min_valid}" if policy.min_valid else "newest validated"
        for c in validated[:floor]:
            kept.setdefault(c.name, []).append(label)
    else:  # nothing is validated (validate.after_export: none, or not yet): the newest complete
        label = f"min_valid={policy.min_valid}" if policy.min_valid else "newest"
        for c in [c for c in newest_first if c.complete][:floor]:
            kept.setdefault(c.name, []).append(f"{label} (nothing validated)")
    if policy.min_age is not None and policy.min_age > timedelta(0) and now is not None:
        for c in candidates:
            if now - c.time < policy.min_age:  # younger than min_age: a compliance floor
                kept.setdefault(c.name, []).append(f"min_age={_dur(policy.min_age)}")
    by_name = {c.name: c for c in candidates}
    # bases of kept incrementals, transitively: walk each kept chain down to its full
    for name in list(kept):
        cur = by_name.get(name)
        seen = {name}
        while cur is not None and cur.kind == "incremental" and cur.base and cur.base not in seen:
            seen.add(cur.base)
            kept.setdefault(cur.base, []).append(f"base of kept {cur.name}")
            cur = by_name.get(cur.base)
    rules = _rules_text(policy)
    pruned = {
        c.name: f"not kept: outside {rules}; no kept backup depends on it" for c in candidates if c.name not in kept
    }
    return kept, pruned


def _rules_text(policy: Retention) -> str:
    """The rules in force, e.g. "keep_daily=7, keep_weekly=4" (rules turned off by 0 left out)."""
    parts = [f"{rule}={_count(policy, rule)}" for rule in COUNT_RULES if _count(policy, rule)]
    within = _within(policy)
    if within is not None:
        parts.append(f"keep_within={_dur(within)}")
    return ", ".join(parts) or "no retention rule"


def _dur(td: timedelta) -> str:
    s = int(td.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if s % size == 0 and s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"
