"""Objects hidden by delete markers on a versioned bucket (docs/compliance.md, "Deleted backups"):
what ``drift`` reports as a deleted backup whose versions survive, and what ``recover`` undoes.

A plain delete on a versioned bucket (every Object Lock bucket is one) does not remove an object:
it puts a delete marker over it, and the object's versions stay. A key is hidden when its newest
entry is a delete marker; it can be brought back when a version holding data is under it. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..stores.base import ObjectVersion


@dataclass(frozen=True)
class Hidden:
    """One key whose newest entry is a delete marker."""

    key: str
    #: the version ids of every delete marker of the key: removing them all makes the newest
    #: version holding data current again (a marker holds no data, so nothing is lost)
    markers: tuple[str, ...]
    #: the newest version that holds data (None: only markers are left of the key)
    version: str | None
    size: int = 0


def hidden_keys(versions: Iterable[ObjectVersion]) -> dict[str, Hidden]:
    """Per key hidden by a delete marker, its markers and the version under them."""
    by_key: dict[str, list[ObjectVersion]] = {}
    for v in versions:
        by_key.setdefault(v.key, []).append(v)
    out: dict[str, Hidden] = {}
    for key, entries in by_key.items():
        latest = next((v for v in entries if v.is_latest), None)
        if latest is None or not latest.delete_marker:
            continue
        data = [v for v in entries if not v.delete_marker]
        newest = max(data, key=lambda v: v.last_modified) if data else None
        out[key] = Hidden(
            key,
            tuple(v.version_id for v in entries if v.delete_marker),
            newest.version_id if newest else None,
            newest.size if newest else 0,
        )
    return out
