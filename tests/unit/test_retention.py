"""Retention cannot lose what the policy keeps or what a kept backup needs.

Property-based: random histories (gaps, failures, chains, running exports) x random policies,
through the real planner. The rules are checked against an independent, deliberately naive
oracle of restic's ``forget`` (0.16 and later): group, take the newest per group, take the N
newest groups, and the oldest backup too when there are fewer than N groups; a count of 0 is no
rule; ``keep_within`` keeps what is strictly less than D older than the newest.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.model import (
    UTC,
    ActionType,
    BackupState,
    Bucket,
    BucketState,
    Config,
    ExportAction,
    Observed,
    ObservedBackup,
    Provider,
    Retention,
    Schedule,
    ScheduleInventory,
    Service,
    ServiceState,
    Validation,
    ValidationLevel,
    ValidationResult,
)
from reconciler.model.slots import slot_name
from reconciler.plan import build_plan
from reconciler.plan.retention import Candidate, kept_by_rules, retain

pytestmark = pytest.mark.clock  # also run at shifted dates (scripts/test-shifted-dates.sh)

START = datetime(2025, 1, 1, 3, tzinfo=UTC)

policies = st.builds(
    Retention,
    keep_last=st.none() | st.integers(0, 10),
    keep_hourly=st.none() | st.integers(0, 30),
    keep_daily=st.none() | st.integers(0, 14),
    keep_weekly=st.none() | st.integers(0, 8),
    keep_monthly=st.none() | st.integers(0, 12),
    keep_yearly=st.none() | st.integers(0, 3),
    keep_within=st.none() | st.integers(0, 20 * 24).map(lambda h: timedelta(hours=h)),
    min_valid=st.integers(0, 4),
)


@st.composite
def histories(draw: st.DrawFn) -> list[ObservedBackup]:
    """A schedule's folders: increasing slots with random gaps, chains of incrementals,
    failures, abandoned and running attempts, unmanaged folders, broken validations."""
    n = draw(st.integers(0, 40))
    validating = draw(st.booleans())  # False: nothing is ever validated (validate.after_export: none)
    t = START
    out: list[ObservedBackup] = []
    chain_len = 0
    for _ in range(n):
        t += timedelta(hours=draw(st.sampled_from([1, 3, 6, 24, 24, 24, 72, 24 * 9, 24 * 40])))
        state = draw(
            st.sampled_from(
                [BackupState.COMPLETE] * 6 + [BackupState.FAILED, BackupState.ABANDONED, BackupState.UNMANAGED]
            )
        )
        name = slot_name(t)
        if state != BackupState.COMPLETE:
            out.append(
                ObservedBackup(
                    name=name,
                    state=state,
                    slot=t,
                    kind=None if state == BackupState.UNMANAGED else "full",
                    started_at=t,
                )
            )
            continue
        prev = next((b for b in reversed(out) if b.state == BackupState.COMPLETE), None)
        incremental = prev is not None and chain_len < 6 and draw(st.booleans())
        chain_len = chain_len + 1 if incremental else 0
        result = draw(st.sampled_from([ValidationResult.OK] * 4 + [ValidationResult.FAILED, None]))
        vals = () if result is None or not validating else (Validation(ValidationLevel.MANIFEST, t, result),)
        out.append(
            ObservedBackup(
                name=name,
                state=state,
                slot=t,
                kind="incremental" if incremental else "full",
                base=prev.name if incremental and prev else None,
                has_manifest=True,
                validations=vals,
            )
        )
    if out and draw(st.booleans()):  # an export running right now
        t += timedelta(hours=1)
        out.append(ObservedBackup(name=slot_name(t), state=BackupState.RUNNING, slot=t, kind="full"))
    return out


def oracle_rules(policy: Retention, cands: list[Candidate]) -> set[str]:
    counts = {
        "last": policy.keep_last or 0,
        "%Y%m%d%H": policy.keep_hourly or 0,
        "%Y%m%d": policy.keep_daily or 0,
        "week": policy.keep_weekly or 0,
        "%Y%m": policy.keep_monthly or 0,
        "%Y": policy.keep_yearly or 0,
    }
    within = policy.keep_within or None  # 0 is no rule, like a count of 0
    if not any(counts.values()) and within is None:
        return {c.name for c in cands}
    newest_first = sorted(cands, key=lambda c: (c.time, c.name), reverse=True)
    keep: set[str] = set()
    for fmt, n in counts.items():
        if not n:
            continue
        groups: dict[str, Candidate] = {}
        for i, c in enumerate(newest_first):
            if fmt == "last":
                key = str(i)
            elif fmt == "week":
                key = f"{c.time.isocalendar()[0]}-{c.time.isocalendar()[1]:02d}"
            else:
                key = c.time.strftime(fmt)
            groups.setdefault(key, c)  # the first seen is the newest of its group
        newest_groups = sorted(groups.values(), key=lambda c: (c.time, c.name), reverse=True)
        keep |= {c.name for c in newest_groups[:n]}
        if 0 < len(groups) < n:  # the count is not used up: the oldest backup too
            keep.add(newest_first[-1].name)
    if within is not None and newest_first:
        keep |= {c.name for c in newest_first if c.time > newest_first[0].time - within}
    return keep


def oracle_floor(policy: Retention, cands: list[Candidate]) -> set[str]:
    """The newest max(min_valid, 1) validated, or the newest complete when none is validated (the
    export this plan makes is not complete yet, so it is no floor)."""
    newest_first = sorted(cands, key=lambda c: (c.time, c.name), reverse=True)
    pool = [c for c in newest_first if c.validated] or [c for c in newest_first if c.complete]
    return {c.name for c in pool[: max(policy.min_valid, 1)]}


def setup(
    history: list[ObservedBackup], policy: Retention, prune_unmanaged: bool, reachable: bool
) -> tuple[Config, Observed, Schedule]:
    schedule = Schedule(
        name="s",
        service="svc",
        bucket="b",
        every=timedelta(hours=1),
        retention=policy,
        prune_unmanaged=prune_unmanaged,
        full_every=7,
    )
    config = Config(
        "c.yaml",
        {"svc": Service("svc", "chdb:///x")},
        {"b": Bucket("b", Provider.S3, "bkt")},
        {"s": schedule},
        {},
        "sha256:" + "0" * 64,
    )
    observed = Observed(
        {"b": BucketState("b", True)},
        {"svc": ServiceState("svc", reachable)},
        {"s": ScheduleInventory("s", "svc/s/", tuple(history))},
        {},
        "sha256:" + "1" * 64,
    )
    return config, observed, schedule


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    history=histories(),
    policy=policies,
    prune_unmanaged=st.booleans(),
    reachable=st.booleans(),
    hours_later=st.integers(0, 24 * 60),
)
def test_planned_prunes_keep_everything_the_policy_and_the_floors_need(
    history: list[ObservedBackup], policy: Retention, prune_unmanaged: bool, reachable: bool, hours_later: int
) -> None:
    config, observed, _ = setup(history, policy, prune_unmanaged, reachable)
    last = history[-1].slot if history else START
    assert last is not None
    now = last + timedelta(hours=hours_later)
    plan = build_plan(config, observed, now)
    pruned = {a.backup: a for a in plan.actions if a.type == ActionType.PRUNE}
    exports = [a for a in plan.actions if isinstance(a, ExportAction)]
    by_name = {b.name: b for b in history}

    complete = [b for b in history if b.state == BackupState.COMPLETE]

    def whole(b: ObservedBackup) -> bool:  # every base down to the full complete and unbroken
        seen: set[str] = set()
        while b.kind == "incremental" and b.base and b.name not in seen:
            seen.add(b.name)
            base = by_name.get(b.base)
            if base is None or base.state != BackupState.COMPLETE or base.kind is None or base.broken:
                return False
            b = base
        return b.name not in seen

    # an incremental on a broken chain cannot be restored: it is not validated for the floors
    cands = [Candidate(b.name, b.slot, b.kind or "full", b.base, b.validated and whole(b)) for b in complete if b.slot]
    for e in exports:
        cands.append(Candidate(e.backup or "", now, e.kind, e.base, False, complete=False))
    by_rules = oracle_rules(policy, cands)

    # 1. nothing kept by a rule is pruned
    assert not (by_rules & set(pruned)), "a backup kept by a rule was pruned"
    # 2. the newest max(min_valid, 1) validated backups are never pruned (the newest complete
    # ones when nothing is validated)
    floor = oracle_floor(policy, cands)
    for name in floor:
        assert name not in pruned, f"floor {name} pruned"
    # 3. no base of a surviving incremental is pruned (surviving = not pruned, or exported now)
    survivors = [b for b in complete if b.name not in pruned]
    for b in survivors:
        cur = b
        while cur.kind == "incremental" and cur.base:
            assert cur.base not in pruned, f"base {cur.base} of kept {b.name} pruned"
            cur = by_name[cur.base]
    for e in exports:
        assert e.base not in pruned
    # 4. running exports and what this plan exports are never pruned; unmanaged only when asked
    for name, a in pruned.items():
        b = by_name.get(name)
        assert b is not None, "pruned something that does not exist"
        assert b.state != BackupState.RUNNING
        if b.state == BackupState.UNMANAGED:
            assert prune_unmanaged
        if b.state in (BackupState.FAILED, BackupState.ABANDONED):
            assert now - (b.slot or b.started_at or now) >= config.schedules["s"].cleanup_after  # age: now - slot
        # 5. every prune waits for the schedule's export in the same plan
        assert set(a.depends_on) == {e.id for e in exports}
    # 6. completeness: every complete backup not kept by a rule or a floor is pruned
    needed = by_rules | floor
    stack = list(needed)
    while stack:
        cur_b = by_name.get(stack.pop())
        if cur_b and cur_b.kind == "incremental" and cur_b.base and cur_b.base not in needed:
            needed.add(cur_b.base)
            stack.append(cur_b.base)
    for e in exports:
        for base in e.chain or ([e.base] if e.base else []):
            needed.add(base)
    expected = {b.name for b in complete} - needed
    assert {n for n in pruned if by_name[n].state == BackupState.COMPLETE} == expected


@settings(max_examples=500, deadline=None)
@given(policy=policies, times=st.lists(st.integers(0, 24 * 400), min_size=0, max_size=60, unique=True))
def test_rules_match_the_oracle(policy: Retention, times: list[int]) -> None:
    cands = [Candidate(f"b{h}", START + timedelta(hours=h)) for h in times]
    assert set(kept_by_rules(policy, cands)) == oracle_rules(policy, cands)


def test_worked_example_from_the_readme() -> None:
    """Daily backups at 03:00 from 2026-10-01 to 2026-11-25, keep_daily=7, keep_weekly=4; then
    with keep_monthly=12 added."""
    days = [datetime(2026, 10, 1, 3, tzinfo=UTC) + timedelta(days=i) for i in range(56)]
    cands = [Candidate(slot_name(t), t, validated=True) for t in days]
    kept, pruned = retain(Retention(keep_daily=7, keep_weekly=4), cands)
    # ISO weeks end on Sunday: the newest backup of weeks 45, 46 and 47 is that Sunday's; week 48
    # (Mon 23 to Sun 29 November) is still running and its newest is the 25th. Both counts are
    # used up (56 days, 9 ISO weeks), so the oldest backup (1 October) is not kept.
    assert sorted(kept) == [
        "20261108T030000Z",  # Sunday, ISO week 45: keep_weekly
        "20261115T030000Z",  # Sunday, ISO week 46: keep_weekly
        "20261119T030000Z",
        "20261120T030000Z",
        "20261121T030000Z",  # keep_daily
        "20261122T030000Z",  # keep_daily, and Sunday of week 47: keep_weekly
        "20261123T030000Z",
        "20261124T030000Z",  # keep_daily
        "20261125T030000Z",  # keep_daily, week 48: keep_weekly, and the newest validated
    ]
    assert "keep_weekly=4" in kept["20261122T030000Z"] and "keep_daily=7" in kept["20261122T030000Z"]
    assert pruned["20261101T030000Z"] == "not kept: outside keep_daily=7, keep_weekly=4; no kept backup depends on it"
    assert "20261001T030000Z" in pruned

    # keep_monthly=12 finds only 2 months: the newest of October (31st) is kept, and, as the count
    # is not used up, the oldest backup (1 October) too
    kept, pruned = retain(Retention(keep_daily=7, keep_weekly=4, keep_monthly=12), cands)
    assert sorted(kept) == ["20261001T030000Z", "20261031T030000Z", "20261108T030000Z", "20261115T030000Z"] + [
        f"202611{d}T030000Z" for d in range(19, 26)
    ]
    assert kept["20261001T030000Z"] == ["oldest keep_monthly=12"]
    assert kept["20261031T030000Z"] == ["keep_monthly=12"]
    assert pruned["20261002T030000Z"] == (
        "not kept: outside keep_daily=7, keep_weekly=4, keep_monthly=12; no kept backup depends on it"
    )


def test_empty_policy_keeps_everything_and_min_valid_zero_still_keeps_the_newest_validated() -> None:
    t = [START + timedelta(days=i) for i in range(5)]
    cands = [Candidate(slot_name(x), x, validated=i == 1) for i, x in enumerate(t)]
    assert retain(Retention(), cands)[1] == {}
    kept, pruned = retain(Retention(keep_last=1, min_valid=0), cands)
    assert set(kept) == {slot_name(t[4]), slot_name(t[1])}


def _daily(n: int, validated: bool = True) -> list[Candidate]:
    return [
        Candidate(slot_name(START + timedelta(days=i)), START + timedelta(days=i), validated=validated)
        for i in range(n)
    ]


def test_a_count_of_zero_is_no_rule() -> None:
    cands = _daily(10)
    # only zeros (and no keep_within): no rule at all, everything is kept
    zeros = Retention(keep_last=0, keep_hourly=0, keep_daily=0, keep_weekly=0, keep_monthly=0, keep_yearly=0)
    kept, pruned = retain(zeros, cands)
    assert pruned == {} and set(kept) == {c.name for c in cands}
    assert retain(Retention(keep_daily=0, keep_within=timedelta(0)), cands)[1] == {}
    # a zero beside a real rule keeps nothing and is not named in the reason
    kept, pruned = retain(Retention(keep_daily=0, keep_last=2), cands)
    assert set(kept) == {cands[-1].name, cands[-2].name}
    assert all(r == "not kept: outside keep_last=2; no kept backup depends on it" for r in pruned.values())
    assert len(pruned) == 8


def test_a_count_not_used_up_also_keeps_the_oldest() -> None:
    # 10 days, Thursday 2 January 2025 to Saturday 11 January: ISO weeks 1 and 2 only
    cands = [
        Candidate(slot_name(t), t) for t in (datetime(2025, 1, 2, 3, tzinfo=UTC) + timedelta(days=i) for i in range(10))
    ]
    kept = kept_by_rules(Retention(keep_weekly=4), cands)
    assert kept == {
        "20250111T030000Z": ["keep_weekly=4"],  # week 2 (Saturday, the newest)
        "20250105T030000Z": ["keep_weekly=4"],  # week 1 (its Sunday)
        "20250102T030000Z": ["oldest keep_weekly=4"],  # week 1 again: only because it is the oldest
    }
    # used up exactly (2 weeks, keep_weekly=2): the oldest is not kept
    assert set(kept_by_rules(Retention(keep_weekly=2), cands)) == {"20250111T030000Z", "20250105T030000Z"}
    # the oldest alone in its period is kept by the plain rule, without "oldest"
    kept = kept_by_rules(Retention(keep_daily=12), cands)
    assert set(kept) == {c.name for c in cands} and all(r == ["keep_daily=12"] for r in kept.values())
    # keep_last: more asked than there are keeps all, plainly
    kept = kept_by_rules(Retention(keep_last=20), cands)
    assert set(kept) == {c.name for c in cands} and all(r == ["keep_last=20"] for r in kept.values())
    # every count rule does it, each with its own reason; the oldest of all, not of a period
    kept = kept_by_rules(Retention(keep_monthly=3, keep_yearly=2, keep_hourly=50), cands)
    assert kept["20250102T030000Z"] == ["keep_hourly=50", "oldest keep_monthly=3", "oldest keep_yearly=2"]
    assert kept["20250111T030000Z"] == ["keep_hourly=50", "keep_monthly=3", "keep_yearly=2"]


def test_keep_within_is_from_the_newest_strictly_and_keeps_no_oldest() -> None:
    cands = _daily(10)
    newest = cands[-1].time
    kept = kept_by_rules(Retention(keep_within=timedelta(days=3)), cands)
    # exactly 3 days older than the newest is outside, as restic's Time.After(latest - within)
    assert set(kept) == {c.name for c in cands if c.time > newest - timedelta(days=3)} and len(kept) == 3
    # far more than the history: everything, but nothing extra (and the oldest is inside anyway)
    assert len(kept_by_rules(Retention(keep_within=timedelta(days=30)), cands)) == 10
    # combined with an unused-up count the oldest comes from the count rule only
    kept = kept_by_rules(Retention(keep_within=timedelta(days=1), keep_monthly=5), cands)
    assert kept[cands[0].name] == ["oldest keep_monthly=5"] and kept[cands[-1].name] == [
        "keep_monthly=5",
        "keep_within=1d",
    ]


def test_the_floor_falls_back_to_the_newest_complete_when_nothing_is_validated() -> None:
    cands = _daily(6, validated=False)
    kept, pruned = retain(Retention(keep_within=timedelta(hours=1)), cands)  # the rule keeps the newest only
    assert set(kept) == {cands[-1].name}
    assert kept[cands[-1].name] == ["keep_within=1h", "min_valid=1 (nothing validated)"]
    kept, pruned = retain(Retention(keep_within=timedelta(hours=1), min_valid=0), cands)
    assert set(kept) == {cands[-1].name} and kept[cands[-1].name] == ["keep_within=1h", "newest (nothing validated)"]
    kept, pruned = retain(Retention(keep_within=timedelta(hours=1), min_valid=3), cands)
    assert set(kept) == {c.name for c in cands[-3:]}
    assert kept[cands[-3].name] == ["min_valid=3 (nothing validated)"]
    # one validated backup: the floor is the validated ones only, no fallback
    cands[1] = Candidate(cands[1].name, cands[1].time, validated=True)
    kept, pruned = retain(Retention(keep_within=timedelta(hours=1), min_valid=3), cands)
    assert set(kept) == {cands[-1].name, cands[1].name}
    assert kept[cands[1].name] == ["min_valid=3"]


def test_bases_of_kept_incrementals_are_kept_whatever_keeps_them() -> None:
    t = [START + timedelta(days=i) for i in range(5)]
    names = [slot_name(x) for x in t]
    cands = [Candidate(names[0], t[0], validated=True)] + [
        Candidate(names[i], t[i], "incremental", names[i - 1], True) for i in range(1, 5)
    ]
    kept, pruned = retain(Retention(keep_last=1), cands)
    assert pruned == {} and kept[names[0]] == [f"base of kept {names[1]}"]
    # two chains, full A <- B and full C <- D: keep_last keeps D (and C, its base); the unused-up
    # keep_weekly keeps the oldest, A, a full; B is needed by nothing
    a, b, c, d = names[:4]
    cands = [
        Candidate(a, t[0]),
        Candidate(b, t[1], "incremental", a),
        Candidate(c, t[2]),
        Candidate(d, t[3], "incremental", c),
    ]
    kept, pruned = retain(Retention(keep_last=1, keep_weekly=9), cands)
    assert kept[a] == ["oldest keep_weekly=9"] and kept[c] == [f"base of kept {d}"] and set(pruned) == {b}


def test_count_not_used_up_example_from_the_docs() -> None:
    """docs/retention.md: every 6h from 23 November 2026 00:00 to 25 November 18:00, keep_daily=7."""
    slots = [datetime(2026, 11, 23, tzinfo=UTC) + timedelta(hours=6 * i) for i in range(12)]
    kept, pruned = retain(Retention(keep_daily=7), [Candidate(slot_name(t), t, validated=True) for t in slots])
    assert kept == {
        "20261125T180000Z": ["keep_daily=7", "min_valid=1"],
        "20261124T180000Z": ["keep_daily=7"],
        "20261123T180000Z": ["keep_daily=7"],
        "20261123T000000Z": ["oldest keep_daily=7"],
    }
    assert len(pruned) == 8
