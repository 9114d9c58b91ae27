"""The plan's storage estimate (docs/compliance.md#storage-and-cost). Pure.

Per bucket (its config name): the bytes of the managed backups seen there now (each folder's
files as observed, its sidecar left out), and after the plan — exports estimated from the
schedule's previous complete backup of the same kind (0 when there is none), copies counted in
the bucket they go to (the source's bytes), recovered backups added back (their sidecar's bytes),
prunes taken away exactly. Noncurrent object versions
are not counted. With ``price_per_gib_month`` the monthly cost is bytes / 2^30 × price.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..model import (
    Action,
    BackupState,
    Config,
    CopyAction,
    ExportAction,
    Observed,
    PruneAction,
    RecoverAction,
    StorageEstimate,
)
from ..model.targets import Selection

GIB = 2**30

#: (bucket, schedule or "_snapshots/<name>", backup)
Key = tuple[str, str, str]


def _counted(state: BackupState) -> bool:
    # ours (it has a sidecar), and not hidden by delete markers (a deleted backup's bytes are
    # noncurrent versions until it is recovered)
    return state not in (BackupState.UNMANAGED, BackupState.DELETED)


def _where(a: Action) -> tuple[str, str] | None:
    group = a.schedule if a.schedule is not None else (f"_snapshots/{a.snapshot}" if a.snapshot else None)
    if a.bucket is None or group is None or a.backup is None:
        return None
    return a.bucket, group


def estimate_storage(
    config: Config, observed: Observed, actions: Iterable[Action], sel: Selection
) -> tuple[StorageEstimate, ...]:
    sizes: dict[Key, int] = {}
    for name, inv in observed.schedules.items():
        bucket = config.schedules[name].bucket if name in config.schedules else None
        if bucket is None:
            continue
        for b in inv.backups:
            if _counted(b.state):
                sizes[(bucket, name, b.name)] = b.total_size
    for name, by_bucket in observed.copies.items():
        for bucket, inv in by_bucket.items():
            for b in inv.backups:
                if _counted(b.state):
                    sizes[(bucket, name, b.name)] = b.total_size
    for snap in observed.snapshots:
        if snap.folder is not None and _counted(snap.folder.state):
            sizes[(snap.bucket, f"_snapshots/{snap.name}", snap.folder.name)] = snap.folder.total_size

    after = dict(sizes)
    exported: dict[tuple[str, str], int] = {}  # (group, backup) -> this plan's estimate of an export
    for a in actions:
        where = _where(a)
        if where is None:
            continue
        key = (*where, a.backup or "")
        if isinstance(a, PruneAction):
            after.pop(key, None)
        elif isinstance(a, ExportAction):
            after[key] = exported[(where[1], a.backup or "")] = _previous_of_kind(observed, sizes, where, a.kind)
        elif isinstance(a, RecoverAction):
            after[key] = a.size
        elif isinstance(a, CopyAction):
            # the copy of an export of this same plan has no size yet: it is as large as the export
            after[key] = a.size or exported.get((where[1], a.backup or ""), 0)
    # one pass per total, not one per bucket over every backup
    totals_now: dict[str, int] = {}
    for k, v in sizes.items():
        totals_now[k[0]] = totals_now.get(k[0], 0) + v
    totals_after: dict[str, int] = {}
    for k, v in after.items():
        totals_after[k[0]] = totals_after.get(k[0], 0) + v
    buckets = sorted(set(sel.buckets) | totals_now.keys() | totals_after.keys())
    out = []
    for bucket in buckets:
        if bucket not in config.buckets:
            continue
        now_bytes = totals_now.get(bucket, 0)
        after_bytes = totals_after.get(bucket, 0)
        price = config.buckets[bucket].price_per_gib_month
        out.append(
            StorageEstimate(
                bucket=bucket,
                bytes_now=now_bytes,
                bytes_after=after_bytes,
                monthly_cost_now=None if price is None else cost(now_bytes, price),
                monthly_cost_after=None if price is None else cost(after_bytes, price),
            )
        )
    return tuple(out)


def cost(size: int, price: float) -> float:
    """bytes / 2^30 × price, rounded to a millionth (a currency's small unit and then some)."""
    return round(size / GIB * price, 6)


def _previous_of_kind(observed: Observed, sizes: dict[Key, int], where: tuple[str, str], kind: str) -> int:
    """The bytes of the schedule's newest complete backup of ``kind`` (0 when there is none)."""
    inv = observed.schedules.get(where[1])
    if inv is None:
        return 0
    same = [b for b in inv.backups if b.state == BackupState.COMPLETE and b.kind == kind]
    return same[-1].total_size if same else 0
