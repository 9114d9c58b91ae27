"""Retention cannot lose what the policy keeps or what a kept backup needs.

Property-based: random histories (gaps, failures, chains, running exports) x random policies,
through the real planner. The rules are checked against an independent, deliberately naive
oracle (group, take the newest per group, take the N newest groups).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.model import (
    UTC,
    ActionType,
    BackupState,
    Bucket,
    BucketState,
    Config,
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
from reconciler.plan import build_plan
from reconciler.plan.retention import Candidate, kept_by_rules, retain
from reconciler.slots import slot_name

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
        vals = () if result is None else (Validation(ValidationLevel.MANIFEST, t, result),)
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
    if policy.is_empty:
        return {c.name for c in cands}
    newest_first = sorted(cands, key=lambda c: (c.time, c.name), reverse=True)
    keep = {c.name for c in newest_first[: policy.keep_last or 0]}
    for n, key in (
        (policy.keep_hourly, lambda t: t.strftime("%Y%m%d%H")),
        (policy.keep_daily, lambda t: t.strftime("%Y%m%d")),
        (policy.keep_weekly, lambda t: f"{t.isocalendar()[0]}-{t.isocalendar()[1]:02d}"),
        (policy.keep_monthly, lambda t: t.strftime("%Y%m")),
        (policy.keep_yearly, lambda t: t.strftime("%Y")),
    ):
        groups: dict[str, Candidate] = {}
        for c in newest_first:
            groups.setdefault(key(c.time), c)  # the first seen is the newest of its group
        newest_groups = sorted(groups.values(), key=lambda c: (c.time, c.name), reverse=True)
        keep |= {c.name for c in newest_groups[: n or 0]}
    if policy.keep_within is not None and newest_first:
        keep |= {c.name for c in newest_first if c.time >= newest_first[0].time - policy.keep_within}
    return keep


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
    exports = [a for a in plan.actions if a.type == ActionType.EXPORT]
    by_name = {b.name: b for b in history}

    complete = [b for b in history if b.state == BackupState.COMPLETE]
    cands = [Candidate(b.name, b.slot, b.kind or "full", b.base, b.validated) for b in complete if b.slot]
    for e in exports:
        cands.append(Candidate(e.backup or "", now, e.details["kind"], e.details["base"], False))
    by_rules = oracle_rules(policy, cands)

    # 1. nothing kept by a rule is pruned
    assert not (by_rules & set(pruned)), "a backup kept by a rule was pruned"
    # 2. the newest max(min_valid, 1) validated backups are never pruned
    validated = sorted((b for b in complete if b.validated), key=lambda b: b.slot or now, reverse=True)
    for b in validated[: max(policy.min_valid, 1)]:
        assert b.name not in pruned, f"newest validated {b.name} pruned"
    # 3. no base of a surviving incremental is pruned (surviving = not pruned, or exported now)
    survivors = [b for b in complete if b.name not in pruned]
    for b in survivors:
        cur = b
        while cur.kind == "incremental" and cur.base:
            assert cur.base not in pruned, f"base {cur.base} of kept {b.name} pruned"
            cur = by_name[cur.base]
    for e in exports:
        assert e.details["base"] not in pruned
    # 4. running exports and what this plan exports are never pruned; unmanaged only when asked
    for name, a in pruned.items():
        b = by_name.get(name)
        assert b is not None, "pruned something that does not exist"
        assert b.state != BackupState.RUNNING
        if b.state == BackupState.UNMANAGED:
            assert prune_unmanaged
        if b.state in (BackupState.FAILED, BackupState.ABANDONED):
            assert now - (b.started_at or b.slot or now) >= config.schedules["s"].cleanup_after
        # 5. every prune waits for the schedule's export in the same plan
        assert set(a.depends_on) == {e.id for e in exports}
    # 6. completeness: every complete backup not kept by a rule or a floor is pruned
    floor = {b.name for b in validated[: max(policy.min_valid, 1)]}
    needed = by_rules | floor
    stack = list(needed)
    while stack:
        cur_b = by_name.get(stack.pop())
        if cur_b and cur_b.kind == "incremental" and cur_b.base and cur_b.base not in needed:
            needed.add(cur_b.base)
            stack.append(cur_b.base)
    for e in exports:
        for base in e.details.get("chain") or ([e.details["base"]] if e.details["base"] else []):
            needed.add(base)
    expected = {b.name for b in complete} - needed
    assert {n for n in pruned if by_name[n].state == BackupState.COMPLETE} == expected


@settings(max_examples=500, deadline=None)
@given(policy=policies, times=st.lists(st.integers(0, 24 * 400), min_size=0, max_size=60, unique=True))
def test_rules_match_the_oracle(policy: Retention, times: list[int]) -> None:
    cands = [Candidate(f"b{h}", START + timedelta(hours=h)) for h in times]
    assert set(kept_by_rules(policy, cands)) == oracle_rules(policy, cands)


def test_worked_example_from_the_readme() -> None:
    """Daily backups at 03:00 from 2026-10-01 to 2026-11-25, keep_daily=7, keep_weekly=4."""
    days = [datetime(2026, 10, 1, 3, tzinfo=UTC) + timedelta(days=i) for i in range(56)]
    cands = [Candidate(slot_name(t), t, validated=True) for t in days]
    kept, pruned = retain(Retention(keep_daily=7, keep_weekly=4), cands)
    # ISO weeks end on Sunday: the newest backup of weeks 45, 46 and 47 is that Sunday's; week 48
    # (Mon 23 to Sun 29 November) is still running and its newest is the 25th.
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


def test_empty_policy_keeps_everything_and_min_valid_zero_still_keeps_the_newest_validated() -> None:
    t = [START + timedelta(days=i) for i in range(5)]
    cands = [Candidate(slot_name(x), x, validated=i == 1) for i, x in enumerate(t)]
    assert retain(Retention(), cands)[1] == {}
    kept, pruned = retain(Retention(keep_last=1, min_valid=0), cands)
    assert set(kept) == {slot_name(t[4]), slot_name(t[1])}
