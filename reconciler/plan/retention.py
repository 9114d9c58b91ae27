"""Retention with restic's semantics, plus the floors that make losing a needed backup
impossible (DESIGN §2, §4). Pure.

Rules look at complete backups, newest first, by slot time (UTC):
- ``keep_last N``: the N newest;
- ``keep_hourly/daily/weekly/monthly/yearly N``: the newest backup of each of the N newest
  hours/days/ISO weeks/months/years that have a backup;
- ``keep_within D``: every backup within D of the *newest* backup (not of now: a schedule that
  stopped does not age its last backups away).
A backup kept by any rule is kept. No rule at all keeps everything. Floors, whatever the rules:
the newest ``max(min_valid, 1)`` validated backups; every base, transitively, of a kept
incremental; anything running.
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


@dataclass(frozen=True)
class Candidate:
    name: str
    time: datetime
    kind: str = "full"
    base: str | None = None
    validated: bool = False  # a successful validation, and not broken since


def kept_by_rules(policy: Retention, candidates: Sequence[Candidate]) -> dict[str, list[str]]:
    """name -> the rules that keep it (names not in the result are not kept by any rule)."""
    newest_first = sorted(candidates, key=lambda c: (c.time, c.name), reverse=True)
    kept: dict[str, list[str]] = {}
    if policy.is_empty:
        return {c.name: ["no retention rule (keep everything)"] for c in newest_first}
    if policy.keep_last:
        for c in newest_first[: policy.keep_last]:
            kept.setdefault(c.name, []).append(f"keep_last={policy.keep_last}")
    for rule, bucket_of in BUCKETS:
        n = getattr(policy, rule)
        if not n:
            continue
        last: object = None
        count = 0
        for c in newest_first:
            b = bucket_of(c.time)
            if b != last:
                last = b
                if count < n:
                    kept.setdefault(c.name, []).append(f"{rule}={n}")
                    count += 1
    if policy.keep_within is not None and newest_first:
        horizon = newest_first[0].time - policy.keep_within
        for c in newest_first:
            if c.time >= horizon:
                kept.setdefault(c.name, []).append(f"keep_within={_dur(policy.keep_within)}")
    return kept


def retain(policy: Retention, candidates: Sequence[Candidate]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """(kept: name -> reasons, pruned: name -> reason) over complete backups."""
    kept = kept_by_rules(policy, candidates)
    newest_first = sorted(candidates, key=lambda c: (c.time, c.name), reverse=True)
    floor = max(policy.min_valid, 1)
    for c in [c for c in newest_first if c.validated][:floor]:
        kept.setdefault(c.name, []).append(f"min_valid={policy.min_valid}" if policy.min_valid else "newest validated")
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
    parts = []
    if policy.keep_last:
        parts.append(f"keep_last={policy.keep_last}")
    for rule, _ in BUCKETS:
        n = getattr(policy, rule)
        if n:
            parts.append(f"{rule}={n}")
    if policy.keep_within is not None:
        parts.append(f"keep_within={_dur(policy.keep_within)}")
    return ", ".join(parts)


def _dur(td: timedelta) -> str:
    s = int(td.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if s % size == 0 and s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"
