"""Prometheus text format for a node-exporter textfile collector (``--metrics-file``). Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from ..model import BackupState, Config, Observed, Plan

PREFIX = "clickhouse_backup"


def _labels(**kv: str) -> str:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in kv.items()) + "}"


def _number(value: float) -> str:
    """A sample's value in full: whole numbers (bytes, Unix seconds) as integers, others as the
    shortest text that reads back the same (``:g`` kept 6 digits: a timestamp off by up to hours)."""
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def render_metrics(config: Config, observed: Observed, plan: Plan, ok: bool | None = None) -> str:
    """Gauges per schedule: newest complete backup time, backup count and bytes by state,
    newest validation time by level; drift count by type; the storage estimate per bucket (bytes
    and, with a price, monthly cost, now and after the plan); actions pending by type."""
    out: list[str] = []

    def metric(name: str, help_: str, samples: Sequence[tuple[dict[str, str], float]]) -> None:
        out.append(f"# HELP {PREFIX}_{name} {help_}")
        out.append(f"# TYPE {PREFIX}_{name} gauge")
        out.extend(f"{PREFIX}_{name}{_labels(**lab)} {_number(val)}" for lab, val in samples)

    newest, counts, sizes, validations = [], [], [], []
    for name in sorted(observed.schedules):
        s = config.schedules[name]
        inv = observed.schedules[name]
        base = {"schedule": name, "service": s.service, "bucket": s.bucket}
        complete = [b for b in inv.backups if b.state == BackupState.COMPLETE and b.kind is not None and b.slot]
        if complete:
            newest.append((base, complete[-1].slot.timestamp()))  # type: ignore[union-attr]
        by_state = Counter(b.state.value for b in inv.backups)
        bytes_by_state: Counter[str] = Counter()
        for b in inv.backups:
            bytes_by_state[b.state.value] += b.total_size
        for state in BackupState:
            counts.append(({**base, "state": state.value}, by_state.get(state.value, 0)))
            sizes.append(({**base, "state": state.value}, bytes_by_state.get(state.value, 0)))
        latest: dict[str, float] = {}
        for b in inv.backups:
            for v in b.validations:
                if v.result.value == "ok":
                    latest[v.level.value] = max(latest.get(v.level.value, 0.0), v.at.timestamp())
        for level, ts in sorted(latest.items()):
            validations.append(({**base, "level": level}, ts))

    copies, copied_newest = [], []
    for name in sorted(observed.copies):
        s = config.schedules[name]
        source = {b.name for b in observed.schedules[name].complete()} if name in observed.schedules else set()
        for bucket, inv in sorted(observed.copies[name].items()):
            lab = {"schedule": name, "service": s.service, "bucket": bucket}
            good = [b for b in inv.backups if b.state == BackupState.COMPLETE and b.validated and b.slot]
            copies.append(({**lab, "of": "source"}, sum(1 for b in good if b.name in source)))
            copies.append(({**lab, "of": "all"}, len(good)))
            if good:
                copied_newest.append((lab, good[-1].slot.timestamp()))  # type: ignore[union-attr]

    metric("newest_complete_timestamp_seconds", "Slot time of the newest complete backup.", newest)
    metric("backups", "Backup folders by state.", counts)
    metric("backup_bytes", "Bytes in the bucket by backup state.", sizes)
    metric("newest_validation_timestamp_seconds", "Time of the newest successful validation by level.", validations)
    if copies:
        metric(
            "valid_copies",
            "Valid copies (complete, last validation passed) in a copy bucket: of the source's complete backups, "
            "and in all.",
            copies,
        )
        metric("newest_copy_timestamp_seconds", "Slot time of the newest valid copy in a copy bucket.", copied_newest)
    drift = Counter((d.type.value, d.schedule or "", d.service or "", d.bucket or "") for d in plan.drift)
    metric(
        "drift",
        "Deviations from the desired state by type.",
        [({"type": t, "schedule": sc, "service": sv, "bucket": bk}, n) for (t, sc, sv, bk), n in sorted(drift.items())],
    )
    storage_bytes, storage_cost = [], []
    for e in plan.storage:
        for when, size, cost in (
            ("now", e.bytes_now, e.monthly_cost_now),
            ("after", e.bytes_after, e.monthly_cost_after),
        ):
            storage_bytes.append(({"bucket": e.bucket, "when": when}, float(size)))
            if cost is not None:
                storage_cost.append(({"bucket": e.bucket, "when": when}, cost))
    if storage_bytes:
        metric(
            "storage_bytes",
            "Bytes of the backups the reconciler knows in a bucket, now and after the plan (noncurrent versions "
            "not counted).",
            storage_bytes,
        )
    if storage_cost:
        metric(
            "storage_monthly_cost",
            "Monthly cost of those bytes at the bucket's price_per_gib_month, now and after the plan.",
            storage_cost,
        )
    summary = plan.summary()
    metric(
        "pending_actions", "Actions the plan would carry out, by type.", [({"type": t}, n) for t, n in summary.items()]
    )
    metric(
        "observed_timestamp_seconds", "When this observation was made (the plan's now).", [({}, plan.now.timestamp())]
    )
    if ok is not None:
        metric("apply_success", "1 if the last apply carried out every action.", [({}, 1.0 if ok else 0.0)])
    return "\n".join(out) + "\n"


def write_metrics(path: str, text: str) -> None:
    """Atomically: the textfile collector must never read half a file."""
    import os
    import tempfile

    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".metrics-", suffix=".prom")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
