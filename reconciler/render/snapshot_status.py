"""``status`` of snapshots: each declared snapshot's folder and record, and the snapshot folders
no declared snapshot names any more. Pure: a JSON-ready list (text.py formats it)."""

from __future__ import annotations

from typing import Any

from ..bucket import layout
from ..model import Config, Observed, iso


def snapshot_status(config: Config, observed: Observed) -> list[dict[str, Any]]:
    out = []
    for o in observed.snapshots:
        declared = config.snapshots.get(o.name) if o.declared else None
        bucket = config.buckets[o.bucket]
        f = o.folder
        state = f.state.value if f else ("pruned" if o.record and o.record.state.value == "pruned" else "absent")
        last = f.last_validation() if f else None
        out.append(
            {
                "snapshot": o.name,
                "service": o.service,
                "bucket": o.bucket,
                "declared": o.declared,
                "location": bucket.url(layout.snapshot_prefix(bucket, o.service, o.name)),
                "state": state,
                "made_at": iso(f.slot) if f and f.slot else (iso(o.record.made_at) if o.record else None),
                "keep_until": declared.keep_until.isoformat() if declared and declared.keep_until else None,
                "size": f.total_size if f else 0,
                "validation": last.to_json() if last else None,
                "record": o.record.state.value if o.record else None,
            }
        )
    return out
